"""Sweeps: a grid of architectures x modes x trials, trained a whole architecture at a time by the
batched engine into the results store. Progress is committed after meta-loops (at most
`--checkpoint-every` seconds apart), so running the same command again, after a crash or a kill,
goes on from the last commit; several sweeps on one store share the grid out between them."""

import functools
import itertools
import time
from pathlib import Path

import torch
from rich.console import Console

from psa import PSAError, costmodel, files, options, settings, shards, workers
from psa.batched import ENGINE_VERSION, grouping, train_stacks
from psa.data import load_mnist
from psa.device import memory_budget, pick_device, set_threads
from psa.journal import Journal
from psa.progress import Reporter, duration, make_console
from psa.settings import RunSettings
from psa.store import DEFAULT_STORE, Store
from psa.store.claims import LostClaim, claim, holding, owner_id
from psa.tensorboard_log import Curves
from psa.trial import Grid, TrialSpec

CHECKPOINT_EVERY = 30.0  # seconds between two commits of a group's progress (the last loop always commits)


def pack_limit(device: torch.device, value: int | None) -> int:
    """Stacks trained side by side (psa.batched.grouping.pack): a GPU runs them concurrently, a CPU
    would only interleave them."""
    return value if value is not None else 8 if device.type == "cuda" else 1


def plan_groups(grid: Grid, done: dict, memory_bytes: int, pack: int) -> list[list[list[TrialSpec]]]:
    """The groups of stacks that train the trials not yet complete: an architecture's trials
    that have committed the same number of loops form stacks, which pack with their like."""
    buckets = {}
    for spec in grid.specs:
        status, loops = done.get(spec, ("running", 0))
        if status != "complete":
            buckets.setdefault(loops, {}).setdefault(spec.arch, []).append(spec)
    return [
        group
        for loops in sorted(buckets, reverse=True)
        for group in grouping.pack(
            [s for specs in buckets[loops].values() for s in grouping.stacks_of(specs, memory_bytes)], pack
        )
    ]


def run_sweep(
    store: Store,
    run: RunSettings,
    device: torch.device,
    memory_bytes: int,
    data=None,
    command: str = "psa sweep",
    console: Console | None = None,
    pack: int = 1,
    data_dir=None,
    checkpoint_every: float = CHECKPOINT_EVERY,
    snapshot: Path | None = None,
    log=None,
    curves=None,
) -> dict[str, int]:
    """Train every trial of the run that the store lacks and no other live sweep holds, in
    stacks that fit `memory_bytes`, up to `pack` small stacks side by side, on `data` (default:
    MNIST from `data_dir` or the usual places). With `snapshot`, a copy of the store replaces
    that file after every commit; `log(stacks, loop, records)` sees every meta-loop; `curves` (a
    psa.tensorboard_log.Curves) gets every committed loop. Returns counts of what was done."""
    console = console or make_console()
    grid, meta_loops = run.grid(), run.meta_loops
    specs = grid.specs
    known = store.status(specs, meta_loops)
    pending = sum(known.get(spec, ("running",))[0] != "complete" for spec in specs)
    resumed = sum(status != "complete" and loops > 0 for status, loops in known.values())
    console.print(
        f"{len(specs)} trials in the grid ({len(run.archs)} architectures x {len(run.modes)} modes x {run.trials} "
        f"trials, {meta_loops} meta-loops each), {len(specs) - pending} already complete in {store.path}, "
        f"{pending} to train on {device}"
        + (f" ({resumed} resuming from the store)" if resumed else "")
        + f"; about {duration(estimate(specs, known, meta_loops, device))} by the cost model"
    )
    if not pending:
        return {"total": len(specs), "trained": 0, "loops": 0, "left": 0}
    threads = torch.get_num_threads()
    recorded = {"seeding": run.seeding, "base_seed": run.seed, "device": str(device), "threads": threads}
    recorded["engine"] = ENGINE_VERSION
    sweep_id = store.start_sweep(command, {"meta_loops": meta_loops, **recorded})
    data = (data or load_mnist(data_dir)).to(device)
    owner, done = owner_id(), {"trained": 0, "loops": 0}
    new_journal = functools.partial(
        Journal,
        store,
        sweep_id,
        owner,
        meta_loops=meta_loops,
        every=checkpoint_every,
        snapshot=snapshot,
        log=log,
        curves=curves,
    )
    complete_at_start = len(specs) - pending

    def grid_progress() -> int:
        """Trials of the grid completed since this sweep began, by it or by any other on the store."""
        now = store.status(specs, meta_loops)
        return sum(status == "complete" for status, _ in now.values()) - complete_at_start

    with holding(store, owner), Reporter(console, trials=pending) as reporter:
        # A group another sweep holds is skipped; a second pass takes over any whose claim lapsed.
        for attempt in range(2):
            state = known if attempt == 0 else store.status(specs, meta_loops)
            for group in plan_groups(grid, state, memory_bytes, pack):
                trials = [spec for stack in group for spec in stack]
                ids = claim(store, sweep_id, trials, meta_loops, recorded, owner)
                if ids is None:
                    continue
                reporter.sync(grid_progress())
                for name, count in train_group(
                    store, group, ids, data, meta_loops, reporter, new_journal, console
                ).items():
                    done[name] += count
    return {"total": len(specs), **done, "left": pending - grid_progress()}


def estimate(specs: list[TrialSpec], known: dict, meta_loops: int, device: torch.device) -> float:
    """Seconds the trials not yet complete should take on this device, by the cost model."""
    left = {}
    for spec in specs:
        status, loops = known.get(spec, ("running", 0))
        if status != "complete":
            left.setdefault(spec.arch, []).append(meta_loops - loops)
    speed, floor = costmodel.on_device(torch.device(device))
    return sum(costmodel.arch_seconds(arch, len(loops), max(loops), speed, floor=floor) for arch, loops in left.items())


def train_group(
    store: Store, group, ids, data, meta_loops: int, reporter: Reporter, new_journal, console
) -> dict[str, int]:
    """Train one claimed group to the end, committing as it goes through new_journal(ids) (a
    Journal); the trials it completed and the trial-loops it ran. A trial resumes with the thread
    count it was trained with, since float32 sums depend on how the work is split."""
    saved = {spec: progress for spec, trial_id in ids.items() if (progress := store.progress(trial_id)).loops_done}
    # Trials claimed together but committed at different loops (another sweep's leftovers) go on
    # in turns, each turn from one loop.
    turns = itertools.groupby(
        sorted(ids, key=lambda s: -saved[s].loops_done if s in saved else 0),
        key=lambda s: saved[s].loops_done if s in saved else 0,
    )
    done, threads = {"trained": 0, "loops": 0}, torch.get_num_threads()
    for start, members in turns:
        members = set(members)
        stacks = [[spec for spec in stack if spec in members] for stack in group]
        stacks = [stack for stack in stacks if stack]
        names = ", ".join(str(stack[0].arch) for stack in stacks)
        resumed = {store.trained_with(ids[s]) for s in members if s in saved}
        check_engine(names, {engine for _, engine in resumed})
        torch.set_num_threads(next(iter(resumed))[0] or threads if len(resumed) == 1 else threads)
        reporter.group(names, len(members), meta_loops, -(-len(data.x_train) // stacks[0][0].hyper.batch_size), start)
        journal = new_journal({spec: ids[spec] for spec in members})
        try:
            results = train_stacks(
                stacks, data, meta_loops, reporter, journal, {s: saved[s] for s in members if s in saved}
            )
        except LostClaim:
            console.print(f"[yellow]another sweep took over {names}; leaving it to that one[/]")
            continue
        finally:
            done["loops"] += journal.trained
            torch.set_num_threads(threads)
        journal.complete([result for stack_results in results for result in stack_results])
        reporter.group_done()
        done["trained"] += len(members)
    return done


def check_engine(names: str, versions: set) -> None:
    """A trial goes on only under the engine version that began it: another's float32 arithmetic
    would give other results than an unbroken run (stores from before versions count as 1)."""
    other = {version or 1 for version in versions} - {ENGINE_VERSION}
    if other:
        raise PSAError(
            f"{names}: trials in the store were begun by engine version {min(other)}, this psa has version "
            f"{ENGINE_VERSION}; finish them with that psa, or sweep into a new store"
        )


def command_line(args) -> str:
    """The command line as run, for the store's record of its sweeps."""
    return "psa sweep " + " ".join(f"{k}={v}" for k, v in sorted(vars(args).items()) if k != "func")


def sweep(args, run: RunSettings | None = None) -> None:
    """Train `run` (default: the command line's) into the store and on the device of `args`; every
    input is checked before the store is made, so a bad one leaves nothing behind."""
    run = run or settings.from_args(args)
    device = pick_device(args.device)
    set_threads(args.threads)
    memory = memory_budget(device, args.max_memory)
    grouping.check_fits(run.grid().specs, memory)
    path = files.output_file(args.store, "--store")
    data = load_mnist(args.data_dir)
    curves = Curves(args.tensorboard) if args.tensorboard else None
    store = Store(path)
    started = time.perf_counter()
    try:
        done = run_sweep(
            store,
            run,
            device,
            memory,
            data,
            command=command_line(args),
            pack=pack_limit(device, args.pack),
            checkpoint_every=args.checkpoint_every,
            curves=curves,
        )
    finally:
        store.close()
        if curves:
            curves.close()
    make_console().print(
        f"trained {done['trained']} trials ({done['loops']} trial-loops) in {time.perf_counter() - started:.1f} s; "
        + (
            f"{done['left']} trials of the grid are still training in other sweeps on {path}"
            if done["left"]
            else f"the grid is complete in {path} (export with `psa export --store {path}`)"
        )
    )


def add_arguments(parser, trials: int, meta_loops: int, store: str) -> None:
    """A run's settings (psa.settings) and how a sweep runs it."""
    settings.add_arguments(parser, trials, meta_loops)
    options.add_device(parser)
    options.add_threads(parser)
    options.add_data_dir(parser)
    options.add_tensorboard(parser)
    parser.add_argument("--store", default=None, help=f"results store (default: {store})")
    parser.add_argument(
        "--max-memory",
        type=options.POSITIVE,
        default=None,
        help="GiB one stack of trials may use (default: 2 on CPU, 60%% of free GPU memory)",
    )
    parser.add_argument(
        "--pack",
        type=options.whole(1),
        default=None,
        help="stacks of small architectures trained side by side (default: 8 on a GPU, 1 elsewhere)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=options.NON_NEGATIVE,
        default=CHECKPOINT_EVERY,
        help=f"seconds between commits of a stack's progress to the store; 0: after every "
        f"meta-loop (default: {CHECKPOINT_EVERY:g})",
    )


def run_command(args) -> None:
    """`psa sweep`: the grid or one shard of it, in one process or one worker per device."""
    run = settings.from_args(args)
    if args.shard:
        k, n = args.shard
        run = shards.shard_run(run, k, n, costmodel.read_measured(args.cost_model) if args.cost_model else None)
        args.store = args.store or str(shards.store_name(k, n))
        make_console().print(f"shard {k}/{n}: {', '.join(str(arch) for arch in run.archs)}")
    args.store = args.store or DEFAULT_STORE
    if args.devices:
        if args.device:
            raise PSAError("give --device or --devices, not both")
        workers.run(sweep, args, run, workers.devices(args.devices))
    else:
        sweep(args, run)


def configure(parser) -> None:
    add_arguments(parser, trials=10, meta_loops=100, store=f"{DEFAULT_STORE}; a shard's: {shards.store_name('K', 'N')}")
    parser.add_argument(
        "--shard",
        type=shards.parse,
        default=None,
        metavar="K/N",
        help="train only the K-th of N shards of whole architectures, balanced by estimated cost, into its own "
        "store; `psa merge` joins the shards' stores",
    )
    parser.add_argument(
        "--cost-model",
        type=Path,
        default=None,
        help="with --shard: a `psa bench --estimate-sweep --json` file to balance by (default: psa.costmodel)",
    )
    parser.add_argument(
        "--devices",
        default=None,
        help="one worker process per device on the one store, e.g. cuda:0,cuda:1 or all (every CUDA GPU)",
    )
    parser.set_defaults(func=run_command)
