"""`psa slurm submit | status | collect`: the grid's shards as one Slurm job array (psa.clusters.slurm)."""

import argparse
import re
from pathlib import Path

from psa.cli import options
from psa.store import DEFAULT_STORE


def minutes(text: str) -> int:
    """An argparse type: a time limit as minutes, H:MM or D-H:MM (Slurm's spellings)."""
    found = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d{1,2}))?", text.strip())
    if not found or (found[1] and not found[3]):
        raise argparse.ArgumentTypeError(f"expected minutes, H:MM or D-H:MM, not {text!r}")
    days, first, second = int(found[1] or 0), int(found[2]), found[3]
    total = days * 1440 + (first * 60 + int(second) if second is not None else first)
    if total < 1:
        raise argparse.ArgumentTypeError(f"must be at least a minute, not {text!r}")
    return total


def submit(args) -> None:
    from psa.clusters.slurm import submit
    from psa.engine import costmodel

    measured = costmodel.read_measured(args.cost_model) if args.cost_model else None
    submit(
        options.run_settings(args),
        args.folder,
        args.shards,
        options.machine(args),
        args.time,
        args.partition,
        args.gpus_per_task,
        args.cpus_per_task,
        measured,
    )


def status(args) -> None:
    from psa.clusters.slurm import status

    status(args.folder)


def collect(args) -> None:
    from psa.clusters.slurm import collect

    collect(args.folder, args.store)


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="slurm_command", required=True, metavar="TOOL")
    folder = argparse.ArgumentParser(add_help=False)
    folder.add_argument(
        "--folder",
        type=Path,
        default=Path("slurm"),
        help="folder the nodes share: the plan, logs and the shards' stores (default: slurm/)",
    )
    p = sub.add_parser("submit", parents=[folder], help="the grid's shards as one Slurm job array")
    options.add_run(p, trials=10, meta_loops=100)
    options.add_machine(p, checkpoint_help="seconds between copies of a task's store into the folder (default: 30)")
    p.add_argument("--shards", type=options.whole(1), required=True, help="tasks of the array: N balanced shards")
    p.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's default)")
    p.add_argument("--gpus-per-task", type=options.whole(1), default=None, help="GPUs per task (default: none)")
    p.add_argument("--cpus-per-task", type=options.whole(1), default=None, help="CPUs per task (default: Slurm's)")
    p.add_argument(
        "--time", type=minutes, default=24 * 60, help="time limit per task: minutes, H:MM or D-H:MM (default: 24:00)"
    )
    p.add_argument("--cost-model", type=Path, default=None, help="a `psa bench --estimate-sweep --json` file")
    p.set_defaults(func=submit)
    p = sub.add_parser("status", parents=[folder], help="trials complete in each shard's store")
    p.set_defaults(func=status)
    p = sub.add_parser("collect", parents=[folder], help="merge the shards' complete trials into one store")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"results store to merge into (default: {DEFAULT_STORE})")
    p.set_defaults(func=collect)
