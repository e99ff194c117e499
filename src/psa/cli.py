"""The `psa` command. Each subcommand lives in the module of its concept, which exposes
`configure(parser)` (adds its arguments and sets `func`); only the chosen one is imported, so
`psa --help` stays fast. The TOOLS.md script names are aliases of subcommands."""

import argparse
import importlib
import sys
from pathlib import Path

from rich.console import Console

from psa import PSAError

COMMANDS = {  # name -> ("module:configure function", one-line help)
    "train": ("psa.engine:configure", "train one PSA trial (Frustration Engine), resuming from its checkpoint"),
    "clean": ("psa.checkpoint:configure", "delete checkpoints"),
    "sweep": ("psa.sweep:configure", "run a grid of architectures x modes x trials into the results store"),
    "export": ("psa.store:configure_export", "write the study's markdown tables and a CSV from a results store"),
    "reproduce": ("psa.sweep:configure_reproduce", "the main job: sweep, export and figures in one command"),
    "bench": ("psa.bench:configure", "benchmarks: estimate the full sweep, compare engines"),
    "analyze-dataset": ("psa.analysis:configure", "MNIST class distribution and ZeroR baselines per split"),
    "regimes": ("psa.regimes:configure", "classify architectures into training regimes"),
    "make-architecture-table": ("psa.report:configure_architecture_table", "LaTeX table of parameter counts"),
    "make-trial-accuracy-table": ("psa.report:configure_accuracy_table", "LaTeX table of mean +- std accuracy"),
    "make-design-space-figure": ("psa.figures:configure_design_space", "log-log figure of the design space"),
    "make-figure-heatmaps": ("psa.figures:configure_heatmaps", "the six heat maps of the design space"),
    "make-convergence-plots": ("psa.figures:configure_convergence", "validation accuracy over meta-loops"),
    "compare": ("psa.compare:configure", "compare a reproduction's trials table with a reference"),
    "cloud": ("psa.cloud.cli:configure", "AWS SageMaker: launch, job, results, logs, storage, cost"),
}

SCRIPTS = {  # console-script name -> the psa argv it stands for
    "analyze-dataset": ["analyze-dataset"],
    "make-architecture-table": ["make-architecture-table"],
    "make-trial-accuracy-table": ["make-trial-accuracy-table"],
    "make-design-space-figure": ["make-design-space-figure"],
    "make-figure-heatmaps": ["make-figure-heatmaps"],
    "make-convergence-plots": ["make-convergence-plots"],
    "sagemaker-launch": ["cloud", "launch"],
    "sagemaker-results-parser": ["cloud", "results"],
    "reconstruct-jobs": ["cloud", "reconstruct-jobs"],
    "sagemaker-estimate-storage": ["cloud", "storage"],
    "sagemaker-get-training-logs": ["cloud", "logs"],
    "sagemaker-logs-parser": ["cloud", "parse-logs"],
    "sagemaker-cost-estimator": ["cloud", "cost"],
}

console = Console(stderr=True)


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="psa", description="Persistent Stochastic Ablation toolkit")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (target, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module_name, function = target.split(":")
            getattr(importlib.import_module(module_name), function)(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    if argv is None:
        argv = SCRIPTS.get(Path(sys.argv[0]).name, []) + sys.argv[1:]
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    try:
        args.func(args)
    except PSAError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        sys.exit(0)
