"""The `psa` command. Each subcommand lives in the module of its concept, which exposes a
`configure(parser)` that adds its arguments and sets `func`; only the chosen one is imported, so
`psa --help` stays fast. The study's script names run the subcommand they stand for: a top-level
command's own name (`analyze-dataset`), or a cloud tool's (`sagemaker-launch`, see
psa.cloud.SCRIPTS); pyproject.toml installs each of them as a command."""

import argparse
import importlib
import sys
from pathlib import Path

from rich.markup import escape

from psa import PSAError, cloud
from psa.progress import make_console

COMMANDS = {  # name -> ("module:configure function", one-line help)
    "train": ("psa.train:configure", "train one PSA trial (Frustration Engine), resuming from its checkpoint"),
    "clean": ("psa.checkpoint:configure", "delete psa checkpoints"),
    "sweep": ("psa.sweep:configure", "run a grid of architectures x modes x trials into a results store"),
    "merge": ("psa.merge:configure", "join the complete trials of several results stores (shards) into one"),
    "export": ("psa.export:configure", "write the study's markdown tables and a CSV from a results store"),
    "reproduce": ("psa.reproduce:configure", "the main job: sweep, export, tables and figures in one command"),
    "report": ("psa.publish:configure", "every table, LaTeX file, figure and regime file from a store or exports"),
    "bench": ("psa.bench:configure", "benchmarks: estimate the full sweep, compare engines"),
    "analyze-dataset": ("psa.analysis:configure", "MNIST class distribution and ZeroR baselines per split"),
    "regimes": ("psa.regimes:configure", "classify architectures into training regimes"),
    "make-architecture-table": ("psa.report:configure_architecture_table", "LaTeX table of parameter counts"),
    "make-trial-accuracy-table": ("psa.report:configure_accuracy_table", "LaTeX table of mean +- std accuracy"),
    "make-design-space-figure": ("psa.figures.space:configure", "log-log figure of the design space"),
    "make-figure-heatmaps": ("psa.figures.heatmaps:configure", "the six heat maps of the design space"),
    "make-convergence-plots": ("psa.figures.convergence:configure", "validation accuracy over meta-loops"),
    "compare": ("psa.compare:configure", "compare a reproduction's trials table with a reference"),
    "slurm": ("psa.slurm:configure", "Slurm: the grid's shards as one job array (submitit); status, collect"),
    "cloud": ("psa.cloud.cli:configure", "AWS SageMaker: launch, job, results, logs, storage, cost"),
}

console = make_console(stderr=True)


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported on one line (no usage block above it)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = Parser(prog="psa", description="Persistent Stochastic Ablation toolkit")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (target, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module_name, function = target.split(":")
            getattr(importlib.import_module(module_name), function)(sub)
    return parser


def script_argv(name: str) -> list[str]:
    """The psa arguments that the console script `name` stands for ([] for `psa` itself)."""
    if name in COMMANDS:
        return [name]
    if name in cloud.SCRIPTS:
        return ["cloud", cloud.SCRIPTS[name]]
    return []


def main(argv: list[str] | None = None) -> None:
    if argv is None:
        argv = script_argv(Path(sys.argv[0]).name) + sys.argv[1:]
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    try:
        args.func(args)
    except PSAError as error:
        # Escaped: messages quote architectures ("[4*4, 2*8]") and extras ("psa[tensorboard]"), not markup.
        console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        sys.exit(0)
