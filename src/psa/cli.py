"""The `psa` command. Each subcommand lives in the module of its concept, which exposes
`configure(parser)` (adds its arguments and sets `func`); only the chosen one is imported, so
`psa --help` stays fast. The TOOLS.md script names are aliases of subcommands."""

import argparse
import importlib
import sys
from pathlib import Path

from rich.console import Console

from psa import PSAError

COMMANDS = {  # name -> (module, one-line help)
    "train": ("psa.engine", "train one PSA trial (Frustration Engine), resuming from its checkpoint"),
    "clean": ("psa.checkpoint", "delete checkpoints"),
    "analyze-dataset": ("psa.analysis", "MNIST class distribution and ZeroR baselines per split"),
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
    for name, (module, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module).configure(sub)
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
