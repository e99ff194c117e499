"""The `psa` command: the one layer that parses arguments. A module per command or group of them
exposes `configure...(parser)`, which adds the arguments and sets `func`, the glue that turns them
into typed values for the packages below; only the chosen command's module is imported, so `psa
--help` stays fast. The study's script names run the subcommand they stand for: a top-level
command's own name (`analyze-dataset`), or a cloud tool's (`sagemaker-launch`, SCRIPTS);
pyproject.toml installs each of them as a command."""

import argparse
import importlib
import shlex
import sys
from pathlib import Path

from rich.markup import escape

from psa import __version__
from psa.engine.memory import openmp_environment
from psa.errors import PSAError, Stopped
from psa.progress import make_console

COMMANDS = {  # name -> ("module:configure function", one-line help)
    "train": (
        "psa.cli.train:configure_train",
        "train one PSA trial (Frustration Engine), resuming from its checkpoint",
    ),
    "clean": ("psa.cli.train:configure_clean", "delete psa checkpoints"),
    "sweep": ("psa.cli.sweep:configure_sweep", "run a grid of architectures x modes x trials into a results store"),
    "merge": ("psa.cli.sweep:configure_merge", "join the complete trials of several results stores (shards) into one"),
    "export": ("psa.cli.study:configure_export", "write the study's markdown tables and a CSV from a results store"),
    "reproduce": ("psa.cli.reproduce:configure", "the main job: sweep, export, tables and figures in one command"),
    "report": (
        "psa.cli.study:configure_report",
        "every table, LaTeX file, figure and regime file from a store or exports",
    ),
    "bench": ("psa.cli.bench:configure", "benchmarks: estimate the full sweep, compare engines"),
    "analyze-dataset": (
        "psa.cli.study:configure_analyze_dataset",
        "MNIST class distribution and ZeroR baselines per split",
    ),
    "regimes": ("psa.cli.study:configure_regimes", "classify architectures into training regimes"),
    "make-architecture-table": ("psa.cli.tools:configure_architecture_table", "LaTeX table of parameter counts"),
    "make-trial-accuracy-table": ("psa.cli.tools:configure_accuracy_table", "LaTeX table of mean +- std accuracy"),
    "make-design-space-figure": ("psa.cli.tools:configure_design_space_figure", "log-log figure of the design space"),
    "make-figure-heatmaps": ("psa.cli.tools:configure_heatmaps", "the six heat maps of the design space"),
    "make-convergence-plots": ("psa.cli.tools:configure_convergence_plots", "validation accuracy over meta-loops"),
    "compare": ("psa.cli.study:configure_compare", "compare two studies, with their sampling noise"),
    "info": (
        "psa.cli.study:configure_info",
        "how a store's results were made (each run's manifest) and how far its grid got",
    ),
    "slurm": ("psa.cli.slurm:configure", "Slurm: the grid's shards as one job array (submitit); status, collect"),
    "cloud": ("psa.cli.cloud:configure", "AWS SageMaker: launch, job, results, logs, storage, cost"),
}
SCRIPTS = {  # the study's SageMaker script name -> the `psa cloud` tool it runs
    "sagemaker-launch": "launch",
    "sagemaker-results-parser": "results",
    "reconstruct-jobs": "reconstruct-jobs",
    "sagemaker-estimate-storage": "storage",
    "sagemaker-get-training-logs": "logs",
    "sagemaker-logs-parser": "parse-logs",
    "sagemaker-cost-estimator": "cost",
}

console = make_console(stderr=True)


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported on one line (no usage block above it)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = Parser(prog="psa", description="Persistent Stochastic Ablation toolkit")
    parser.add_argument("--version", action="version", version=f"psa {__version__}")
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
    if name in SCRIPTS:
        return ["cloud", SCRIPTS[name]]
    return []


def main(argv: list[str] | None = None) -> None:
    openmp_environment()  # before any command imports torch
    if argv is None:
        argv = script_argv(Path(sys.argv[0]).name) + sys.argv[1:]
    execute(build_parser(argv[0] if argv and argv[0] in COMMANDS else None), argv)


def execute(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Parse `argv` and run the command it names: a PSAError is one line and exit status 2."""
    args = parser.parse_args(argv)
    args.command_line = f"{parser.prog} {shlex.join(argv)}"  # as run, for the store's record of its sweeps
    try:
        args.func(args)
    except PSAError as error:
        # Escaped: messages quote architectures ("[4*4, 2*8]") and extras ('.[slurm]'), not markup.
        console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
        sys.exit(2)
    except Stopped as stop:
        console.print(f"[yellow]stopped by {stop}[/]: what was committed is kept; run the same command to go on")
        sys.exit(128 + stop.signum)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        sys.exit(0)
