"""Sweeps: a grid of architectures x modes x trials, trained a whole architecture at a time by the
batched engine and written trial by trial into the results store. Running the same command again
skips what is complete and finishes the rest."""

import time

import torch
from rich.console import Console

from psa import PSAError, options
from psa.architecture import parse_list, read_configurations
from psa.batched import plan, train_stacks
from psa.data import load_mnist
from psa.device import memory_budget, pick_device, set_threads
from psa.modes import parse_modes
from psa.progress import Reporter
from psa.published import CONFIGURATIONS
from psa.store import DEFAULT_STORE, Store
from psa.trial import grid


def pack_limit(device: torch.device, value: int | None) -> int:
    """Stacks trained side by side (psa.batched.plan.pack): a GPU runs them concurrently, a CPU
    would only interleave them."""
    return value if value is not None else 8 if device.type == "cuda" else 1


def run_sweep(store: Store, cells: dict, meta_loops: int, device: torch.device, memory_bytes: int, data=None,
              command: str = "psa sweep", console: Console | None = None, pack: int = 1,
              data_dir=None) -> dict[str, int]:
    """Train every trial of `cells` (a grid) that the store lacks, in stacks that fit
    `memory_bytes`, up to `pack` small stacks side by side, on `data` (default: MNIST from
    `data_dir` or the usual places); returns counts of what was done."""
    console = console or Console(highlight=False)
    todo = {arch: [s for s in specs if not store.is_complete(s, meta_loops)] for arch, specs in cells.items()}
    total = sum(len(specs) for specs in cells.values())
    pending = sum(len(specs) for specs in todo.values())
    console.print(f"{total} trials in the grid, {total - pending} already complete in {store.path}, "
                  f"{pending} to train on {device}")
    if not pending:
        return {"total": total, "trained": 0}
    sweep_id = store.start_sweep(command, {"meta_loops": meta_loops, "device": str(device)})
    data = (data or load_mnist(data_dir)).to(device)
    stacks = [stack for specs in todo.values() if specs for stack in plan.stacks_of(specs, memory_bytes)]
    steps = -(-len(data.x_train) // stacks[0][0].hyper.batch_size)
    with Reporter(console, trials=pending) as reporter:
        for group in plan.pack(stacks, pack):
            trials = [spec for stack in group for spec in stack]
            reporter.group(", ".join(str(stack[0].arch) for stack in group), len(trials), meta_loops, steps)
            store.mark_running(sweep_id, trials, meta_loops, str(device))
            for results in train_stacks(group, data, meta_loops, reporter):
                for result in results:
                    store.record(sweep_id, result, meta_loops)
            reporter.group_done()
    return {"total": total, "trained": pending}


def grid_from_args(args) -> dict:
    if args.arch and args.configs:
        raise PSAError("give either --arch or --configs, not both")
    archs = parse_list(args.arch) if args.arch else read_configurations(args.configs or CONFIGURATIONS)
    return grid(archs, parse_modes(args.modes), args.trials, args.family, args.seed, options.hyper(args))


def settings_of(args) -> str:
    """The command line as run, for the store's record of its sweeps."""
    return "psa sweep " + " ".join(f"{k}={v}" for k, v in sorted(vars(args).items()) if k != "func")


def sweep(args) -> None:
    cells = grid_from_args(args)
    device = pick_device(args.device)
    set_threads(args.threads)
    store = Store(args.store)
    started = time.perf_counter()
    try:
        done = run_sweep(store, cells, args.meta_loops, device, memory_budget(device, args.max_memory),
                         command=settings_of(args), pack=pack_limit(device, args.pack), data_dir=args.data_dir)
    finally:
        store.close()
    Console(highlight=False).print(f"trained {done['trained']} trials in {time.perf_counter() - started:.1f} s; "
                                   f"store: {args.store} (export with `psa export --store {args.store}`)")


def add_grid_arguments(parser, trials: int, meta_loops: int, store: str = DEFAULT_STORE) -> None:
    parser.add_argument("--configs", default=None,
                        help="configurations file, one L*W per line (default: the published study's 98)")
    parser.add_argument("--arch", default=None, help='architectures, e.g. "1*16,2*8" (or "[4*4, 2*8];[1*8]")')
    parser.add_argument("--modes", default="all", help="comma-separated modes (default: all six)")
    parser.add_argument("--trials", type=options.whole(1), default=trials, help=f"trials per cell (default: {trials})")
    parser.add_argument("--meta-loops", type=options.whole(1), default=meta_loops, help=f"default: {meta_loops}")
    options.add_family(parser)
    parser.add_argument("--seed", type=options.whole(0), default=2025, help="base seed; trial seeds derive from it")
    options.add_hyper(parser)
    options.add_device(parser)
    options.add_threads(parser)
    options.add_data_dir(parser)
    parser.add_argument("--store", default=store, help=f"results store (default: {store})")
    parser.add_argument("--max-memory", type=options.POSITIVE, default=None,
                        help="GiB one stack of trials may use (default: 2 on CPU, 60%% of free GPU memory)")
    parser.add_argument("--pack", type=options.whole(1), default=None,
                        help="stacks of small architectures trained side by side (default: 8 on a GPU, 1 elsewhere)")


def configure(parser) -> None:
    add_grid_arguments(parser, trials=10, meta_loops=100)
    parser.set_defaults(func=sweep)
