"""Sweeps: a grid of architectures x modes x trials, trained a whole architecture at a time by the
batched engine into the results store. Progress is committed after meta-loops (at most
`--checkpoint-every` seconds apart), so running the same command again, after a crash or a kill,
goes on from the last commit; several sweeps on one store share the grid out between them."""

import functools
import itertools
import threading
import time
from pathlib import Path

import torch
from rich.console import Console

from psa import PSAError, options
from psa.architecture import parse_list, read_configurations
from psa.batched import plan, train_stacks
from psa.batched.stack import Saved
from psa.data import load_mnist
from psa.device import memory_budget, pick_device, set_threads
from psa.modes import parse_modes
from psa.progress import Reporter
from psa.published import CONFIGURATIONS
from psa.store import DEFAULT_STORE, Store, owner_id
from psa.trial import SEEDINGS, Grid, TrialSpec, grid

CHECKPOINT_EVERY = 30.0  # seconds between two commits of a group's progress (the last loop always commits)
HEARTBEAT = 10.0  # seconds between two renewals of a sweep's claims (store.LEASE lets them lapse)


class LostClaim(Exception):
    """Another sweep took over the trials this one was training (its claim had lapsed)."""


class Journal:
    """Commits a group's progress into the store, as on_loop of train_stacks: the loop records
    since the last commit and the LKG weights that changed, one transaction for the group."""

    def __init__(
        self,
        store: Store,
        sweep_id: int,
        owner: str,
        ids: dict[TrialSpec, int],
        meta_loops: int,
        every: float,
        snapshot: Path | None = None,
        log=None,
    ):
        self.store, self.sweep_id, self.owner, self.ids = store, sweep_id, owner, ids
        self.meta_loops, self.every, self.snapshot, self.log = meta_loops, every, snapshot, log
        self.records = {spec: [] for spec in ids}
        self.changed: set[TrialSpec] = set()
        self.last = time.perf_counter()
        self.trained = 0  # trial-loops run, committed or not: the work done

    def __call__(self, stacks, loop: int, records) -> None:
        for stack, stack_records in zip(stacks, records):
            self.trained += len(stack_records)
            for spec, record in zip(stack.specs, stack_records):
                self.records[spec].append(record)
                if record.improved:
                    self.changed.add(spec)
        if loop == self.meta_loops or time.perf_counter() - self.last >= self.every:
            self.commit(stacks)
        if self.log:
            self.log(stacks, loop, records)

    def _share(self) -> float:
        """Seconds since the last commit, per trial of the group."""
        now = time.perf_counter()
        share, self.last = (now - self.last) / len(self.ids), now
        return share

    def commit(self, stacks) -> None:
        rows, seconds = [], self._share()
        for stack in stacks:
            changed = [t for t, spec in enumerate(stack.specs) if spec in self.changed]
            weights = dict(zip(changed, stack.lkg[changed].cpu())) if changed else {}
            for t, spec in enumerate(stack.specs):
                row = {
                    "trial_id": self.ids[spec],
                    "records": self.records[spec],
                    "lkg_score": stack.lkg_score[t],
                    "bounty": stack.bounty[t],
                    "bounty_loop": stack.bounty_loop[t],
                    "seconds": seconds,
                }
                if t in weights:
                    row.update(dtype=str(weights[t].dtype).removeprefix("torch."), lkg=weights[t].numpy().tobytes())
                rows.append(row)
        if not self.store.commit(self.sweep_id, self.owner, rows):
            raise LostClaim
        self.records = {spec: [] for spec in self.ids}
        self.changed.clear()
        if self.snapshot:
            self.store.snapshot(self.snapshot)

    def complete(self, results) -> None:
        seconds = self._share()
        self.store.complete(
            self.owner,
            [
                {"trial_id": self.ids[r.spec], "test_accuracy": r.test_accuracy, "seconds": seconds, "device": r.device}
                for r in results
            ],
        )
        if self.snapshot:
            self.store.snapshot(self.snapshot)


def saved_states(store: Store, ids: dict[TrialSpec, int]) -> dict[TrialSpec, Saved]:
    """What the store holds of the trials' progress, for those with committed loops."""
    saved = {}
    for spec, trial_id in ids.items():
        progress = store.progress(trial_id)
        if progress.loops_done:
            lkg = torch.frombuffer(bytearray(progress.lkg), dtype=getattr(torch, progress.dtype))
            saved[spec] = Saved(progress.loops_done, lkg, progress.lkg_score, progress.bounty, progress.bounty_loop)
    return saved


def pack_limit(device: torch.device, value: int | None) -> int:
    """Stacks trained side by side (psa.batched.plan.pack): a GPU runs them concurrently, a CPU
    would only interleave them."""
    return value if value is not None else 8 if device.type == "cuda" else 1


def plan_groups(cells: Grid, done: dict, memory_bytes: int, pack: int) -> list[list[list[TrialSpec]]]:
    """The groups of stacks that train the trials not yet complete: an architecture's trials
    that have committed the same number of loops form stacks, which pack with their like."""
    buckets = {}
    for spec in cells.specs:
        status, loops = done.get(spec, ("running", 0))
        if status != "complete":
            buckets.setdefault(loops, {}).setdefault(spec.arch, []).append(spec)
    return [
        group
        for loops in sorted(buckets, reverse=True)
        for group in plan.pack(
            [s for specs in buckets[loops].values() for s in plan.stacks_of(specs, memory_bytes)], pack
        )
    ]


def _beat(path, owner: str, stop: threading.Event) -> None:
    store = Store(path, check=False)
    try:
        while not stop.wait(HEARTBEAT):
            store.heartbeat(owner)
    finally:
        store.close()


def run_sweep(
    store: Store,
    cells: Grid,
    meta_loops: int,
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
) -> dict[str, int]:
    """Train every trial of the grid that the store lacks and no other live sweep holds, in
    stacks that fit `memory_bytes`, up to `pack` small stacks side by side, on `data` (default:
    MNIST from `data_dir` or the usual places). With `snapshot`, a copy of the store replaces
    that file after every commit; `log(stacks, loop, records)` sees every meta-loop. Returns
    counts of what was done."""
    console = console or Console(highlight=False)
    specs, origin = cells.specs, (cells.seeding, cells.base_seed)
    known = store.status(specs, meta_loops)
    pending = sum(known.get(spec, ("running",))[0] != "complete" for spec in specs)
    resumed = sum(status != "complete" and loops > 0 for status, loops in known.values())
    console.print(
        f"{len(specs)} trials in the grid, {len(specs) - pending} already complete in {store.path}, "
        f"{pending} to train on {device}" + (f" ({resumed} resuming from the store)" if resumed else "")
    )
    if not pending:
        return {"total": len(specs), "trained": 0, "loops": 0}
    sweep_id = store.start_sweep(
        command, {"meta_loops": meta_loops, "device": str(device), "seeding": origin[0], "base_seed": origin[1]}
    )
    data = (data or load_mnist(data_dir)).to(device)
    owner, done = owner_id(), {"trained": 0, "loops": 0}
    new_journal = functools.partial(
        Journal, store, sweep_id, owner, meta_loops=meta_loops, every=checkpoint_every, snapshot=snapshot, log=log
    )
    stop = threading.Event()
    beating = threading.Thread(target=_beat, args=(store.path, owner, stop), daemon=True)
    beating.start()
    try:
        with Reporter(console, trials=pending) as reporter:
            # A group another sweep holds is skipped; a second pass takes over any whose claim lapsed.
            for attempt in range(2):
                state = known if attempt == 0 else store.status(specs, meta_loops)
                for group in plan_groups(cells, state, memory_bytes, pack):
                    trials = [spec for stack in group for spec in stack]
                    ids = store.claim(sweep_id, trials, meta_loops, origin, str(device), owner)
                    if ids is None:
                        continue
                    for name, count in train_group(
                        store, group, ids, data, meta_loops, reporter, new_journal, console
                    ).items():
                        done[name] += count
    finally:
        stop.set()
        store.release(owner)
    return {"total": len(specs), **done}


def train_group(
    store: Store, group, ids, data, meta_loops: int, reporter: Reporter, new_journal, console
) -> dict[str, int]:
    """Train one claimed group to the end, committing as it goes through new_journal(ids) (a
    Journal); the trials it completed and the trial-loops it ran."""
    saved = saved_states(store, ids)
    # Trials claimed together but committed at different loops (another sweep's leftovers) go on
    # in turns, each turn from one loop.
    turns = itertools.groupby(
        sorted(ids, key=lambda s: -saved[s].loops_done if s in saved else 0),
        key=lambda s: saved[s].loops_done if s in saved else 0,
    )
    done = {"trained": 0, "loops": 0}
    for start, members in turns:
        members = set(members)
        stacks = [[spec for spec in stack if spec in members] for stack in group]
        stacks = [stack for stack in stacks if stack]
        names = ", ".join(str(stack[0].arch) for stack in stacks)
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
        journal.complete([result for stack_results in results for result in stack_results])
        reporter.group_done()
        done["trained"] += len(members)
    return done


def grid_from_args(args) -> Grid:
    if args.arch and args.configs:
        raise PSAError("give either --arch or --configs, not both")
    archs = parse_list(args.arch) if args.arch else read_configurations(args.configs or CONFIGURATIONS)
    return grid(archs, parse_modes(args.modes), args.trials, args.family, args.seed, options.hyper(args), args.seeding)


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
        done = run_sweep(
            store,
            cells,
            args.meta_loops,
            device,
            memory_budget(device, args.max_memory),
            command=settings_of(args),
            pack=pack_limit(device, args.pack),
            data_dir=args.data_dir,
            checkpoint_every=args.checkpoint_every,
        )
    finally:
        store.close()
    Console(highlight=False).print(
        f"trained {done['trained']} trials ({done['loops']} trial-loops) in "
        f"{time.perf_counter() - started:.1f} s; store: {args.store} "
        f"(export with `psa export --store {args.store}`)"
    )


def add_grid_arguments(parser, trials: int, meta_loops: int, store: str = DEFAULT_STORE) -> None:
    parser.add_argument(
        "--configs", default=None, help="configurations file, one L*W per line (default: the published study's 98)"
    )
    parser.add_argument("--arch", default=None, help='architectures, e.g. "1*16,2*8" (or "[4*4, 2*8];[1*8]")')
    parser.add_argument("--modes", default="all", help="comma-separated modes (default: all six)")
    parser.add_argument("--trials", type=options.whole(1), default=trials, help=f"trials per cell (default: {trials})")
    parser.add_argument("--meta-loops", type=options.whole(1), default=meta_loops, help=f"default: {meta_loops}")
    options.add_family(parser)
    parser.add_argument("--seed", type=options.whole(0), default=2025, help="base seed; trial seeds derive from it")
    parser.add_argument(
        "--seeding",
        choices=SEEDINGS,
        default=SEEDINGS[0],
        help="independent: every architecture, mode and trial its own seed, as in the study; "
        "paired: trial k of every mode shares its seed (docs/DESIGN.md section 5)",
    )
    options.add_hyper(parser)
    options.add_device(parser)
    options.add_threads(parser)
    options.add_data_dir(parser)
    parser.add_argument(
        "--store", default=store, help=f"results store (default: {store or 'reproduce.sqlite in the --out folder'})"
    )
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


def configure(parser) -> None:
    add_grid_arguments(parser, trials=10, meta_loops=100)
    parser.set_defaults(func=sweep)
