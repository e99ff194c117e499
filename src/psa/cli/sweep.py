"""`psa sweep` and `psa merge`: a grid (or one shard of it) into a results store, in one process or
a worker per device, through the one run path (psa.sweeps.sweep.run_grid); stores joined."""

import argparse
import re
import sys
from pathlib import Path

from psa.cli import options
from psa.errors import PSAError
from psa.progress import make_console
from psa.store import DEFAULT_STORE

LEFT_TO_OTHERS = 75  # sysexits' EX_TEMPFAIL: --no-wait left trials that other sweeps still train


def shard(text: str) -> tuple[int, int]:
    """An argparse type: K/N, the K-th of N shards (1 <= K <= N)."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N (e.g. 2/4), not {text!r}")
    return int(found[1]), int(found[2])


def sweep(args) -> None:
    from psa.engine import costmodel
    from psa.sweeps import shards, workers
    from psa.sweeps.sweep import run_grid

    run = options.run_settings(args)
    store = args.store
    if args.shard:
        k, n = args.shard
        run = shards.shard_run(run, k, n, costmodel.read_measured(args.cost_model) if args.cost_model else None)
        store = store or shards.store_name(k, n)
        make_console().print(f"shard {k}/{n}: {', '.join(str(arch) for arch in run.archs)}")
    store = Path(store or DEFAULT_STORE)
    if args.devices:
        if args.device:
            raise PSAError("give --device or --devices, not both")
        workers.run(run, store, options.machine(args), workers.devices(args.devices), args.command_line, args.wait)
    elif run_grid(run, store, options.machine(args), command=args.command_line, wait=args.wait)["left"]:
        sys.exit(LEFT_TO_OTHERS)


def configure_sweep(parser) -> None:
    from psa.sweeps.shards import store_name

    options.add_run(parser, trials=10, meta_loops=100)
    options.add_machine(parser)
    parser.add_argument(
        "--store", default=None, help=f"results store (default: {DEFAULT_STORE}; a shard's: {store_name('K', 'N')})"
    )
    parser.add_argument(
        "--shard",
        type=shard,
        default=None,
        metavar="K/N",
        help="train only the K-th of N shards of whole architectures, balanced by estimated cost, into its own "
        "store; `psa merge` joins the shards' stores",
    )
    parser.add_argument(
        "--cost-model",
        type=Path,
        default=None,
        help="with --shard: a `psa bench --estimate-sweep --json` file to balance by (default: psa.engine.costmodel)",
    )
    parser.add_argument(
        "--devices",
        default=None,
        help="one worker process per device on the one store, e.g. cuda:0,cuda:1 or all (every CUDA GPU)",
    )
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help=f"leave trials that other live sweeps on the store are training to them, and end at once with "
        f"status {LEFT_TO_OTHERS} if any is left (default: wait for them, taking over what they abandon; status 0 "
        f"only once the grid is complete)",
    )
    parser.set_defaults(func=sweep)


def merge(args) -> None:
    from psa.sweeps.merge import merge_into

    missing = [path for path in args.stores if not Path(path).is_file()]
    if missing:
        raise PSAError(f"results store {missing[0]} not found")
    added = merge_into(args.into, dict.fromkeys(args.stores))
    make_console().print(
        f"{added} trials added to {args.into} from {len(args.stores)} stores "
        f"(export with `psa export --store {args.into}`)"
    )


def configure_merge(parser) -> None:
    parser.add_argument("stores", nargs="+", help="results stores whose complete trials to merge")
    parser.add_argument("--into", required=True, help="the results store to merge into (created if need be)")
    parser.set_defaults(func=merge)
