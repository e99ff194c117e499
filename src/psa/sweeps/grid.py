"""A grid of architectures x modes x trials trained into an open results store, a whole
architecture at a time by the batched engine. Progress is committed after meta-loops (at most
`checkpoint_every` seconds apart), so running the same grid again, after a crash or a kill, goes on
from the last commit; several sweeps on one store share the grid out between them (their claims,
psa.store.claims). psa.sweeps.sweep opens the store and calls train_grid for every front end."""

import contextlib
import functools
import itertools
import time
from pathlib import Path

import torch
from rich.console import Console

from psa.engine import costmodel
from psa.engine.batched import engine_version, grouping, native, train_stacks
from psa.engine.batched.stack import Layout
from psa.errors import PSAError, Stopped
from psa.progress import Reporter, duration, make_console
from psa.store import Store
from psa.store.claims import HEARTBEAT, LostClaim, claim, holding, owner_id
from psa.sweeps.journal import Journal
from psa.sweeps.settings import CHECKPOINT_EVERY, RunSettings
from psa.sweeps.stopping import stopping
from psa.trial.data import MNIST
from psa.trial.spec import Grid, TrialSpec


def pack_limit(device: torch.device, value: int | None) -> int:
    """Stacks trained side by side (psa.engine.batched.grouping.pack): a GPU runs them concurrently, a CPU
    would only interleave them."""
    return value if value is not None else 8 if device.type == "cuda" else 1


LONG = 3600.0  # seconds of estimated training from which a run says so before it starts


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


def train_grid(
    store: Store,
    run: RunSettings,
    device: torch.device,
    memory_bytes: int,
    data: MNIST,
    command: str = "psa sweep",
    console: Console | None = None,
    pack: int = 1,
    checkpoint_every: float = CHECKPOINT_EVERY,
    snapshot: Path | None = None,
    log=None,
    curves=None,
    wait: bool = True,
    manifest: dict | None = None,
) -> dict[str, int]:
    """Train every trial of the run that the store lacks, in stacks that fit `memory_bytes`, up to
    `pack` small stacks side by side, on `data`. Trials another live sweep holds are left to it;
    with `wait`, this sweep then waits until the grid is complete, taking over what another sweep
    abandons. With `snapshot`, a copy of the store replaces that file after every commit;
    `log(stacks, loop, records)` sees every meta-loop; `curves` (a psa.engine.curves.Curves) gets
    every committed loop; `manifest` (psa.sweeps.manifest) is recorded with the sweep. SIGTERM and
    Ctrl-C stop it at the next training step with what the journal holds committed
    (psa.sweeps.stopping). Returns counts: total, trained, loops, left (trials of the grid other
    sweeps have not completed)."""
    console = console or make_console()
    grid, meta_loops = run.grid(), run.meta_loops
    specs = grid.specs
    known = store.status(specs, meta_loops)
    untrained = [spec for spec in specs if known.get(spec, ("running",))[0] != "complete"]
    pending = len(untrained)
    resumed = sum(status != "complete" and loops > 0 for status, loops in known.values())
    seconds = estimate(specs, known, meta_loops, device)
    console.print(
        f"{len(specs)} trials in the grid ({len(run.archs)} architectures x {len(run.modes)} modes x {run.trials} "
        f"trials, {meta_loops} meta-loops each), {len(specs) - pending} already complete in {store.path}, "
        f"{pending} to train on {device}"
        + (f" ({resumed} resuming from the store)" if resumed else "")
        + f"; about {duration(seconds)} by the cost model"
    )
    if pending and seconds > LONG:
        console.print(
            f"[yellow]a long run: about {duration(seconds)} on this {device}. Ctrl-C or SIGTERM stops it after a "
            f"commit, and the same command goes on from the store[/]"
        )
    if not pending:
        return {"total": len(specs), "trained": 0, "loops": 0, "left": 0}
    if torch.device(device).type == "cpu":
        native.build({Layout.of(spec.arch, spec.family).fused_width for spec in untrained} - {None})
    threads = torch.get_num_threads()
    recorded = {"seeding": run.seeding, "base_seed": run.seed, "device": str(device), "threads": threads}
    recorded["engine"] = engine_version(device)
    sweep_id = store.start_sweep(command, {"meta_loops": meta_loops, **recorded}, manifest)
    data = data.to(device)
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

    try:
        with stopping() as stop, holding(store, owner), Reporter(console, trials=pending, check=stop.check) as reporter:
            state, passes = known, 0
            while True:
                # A group another live sweep holds is skipped; a later pass takes it over once its claim
                # lapses (its sweep was killed) or trains nothing of it (complete meanwhile).
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
                passes += 1
                left = pending - grid_progress()
                if not left or (not wait and passes >= 2):
                    break
                if passes == 1 and wait:
                    reporter.print(
                        f"waiting for {left} trials of the grid that other sweeps on {store.path} are training"
                    )
                if passes > 1:
                    wait_a_while(stop, reporter, grid_progress)
                state = store.status(specs, meta_loops)
    finally:
        with contextlib.suppress(PSAError):  # a full disk: the error that stopped the run says so
            store.end_sweep(sweep_id)
    return {"total": len(specs), **done, "left": pending - grid_progress()}


def wait_a_while(stop, reporter: Reporter, grid_progress) -> None:
    """Up to a heartbeat's time for the other sweeps: over at once when they complete a trial, and a
    stop request heard within a second."""
    before = grid_progress()
    for _ in range(int(HEARTBEAT)):
        stop.check()
        time.sleep(1)
        if grid_progress() > before:
            break
    reporter.sync(grid_progress())


def estimate(specs: list[TrialSpec], known: dict, meta_loops: int, device: torch.device) -> float:
    """Seconds the trials not yet complete should take on this device, by the cost model."""
    left = {}
    for spec in specs:
        status, loops = known.get(spec, ("running", 0))
        if status != "complete":
            left.setdefault((spec.arch, spec.family), []).append(meta_loops - loops)
    device, seconds = torch.device(device), 0.0
    for (arch, family), loops in left.items():
        if device.type == "cpu":
            fused = native.fuses(Layout.of(arch, family))
            per_loop = costmodel.cpu_loop_seconds(arch, len(loops), torch.get_num_threads(), fused)
            seconds += max(loops) * per_loop
        else:
            seconds += costmodel.arch_seconds(arch, len(loops), max(loops), costmodel.DEVICE_SPEED[device.type])
    return seconds


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
        if any(Layout.of(stack[0].arch, stack[0].family).fused_width for stack in stacks):
            check_engine(names, {engine for _, engine in resumed}, engine_version(data.x_train.device))
        torch.set_num_threads(next(iter(resumed))[0] or threads if len(resumed) == 1 else threads)
        reporter.group(names, len(members), meta_loops, -(-len(data.x_train) // stacks[0][0].hyper.batch_size), start)
        journal = new_journal({spec: ids[spec] for spec in members})
        try:
            results = train_stacks(
                stacks, data, meta_loops, reporter, journal, {s: saved[s] for s in members if s in saved}
            )
        except Stopped:
            journal.flush()
            raise
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


def check_engine(names: str, versions: set, current: int) -> None:
    """A trial goes on only under the engine version that began it: another's float32 arithmetic
    would give other results than an unbroken run (stores from before versions count as 1). Only
    stacks that a CPU fuses are checked (Layout.fused_width): every version trains the others alike."""
    other = {version or 1 for version in versions} - {current}
    if other:
        version = min(other)
        raise PSAError(
            f"{names}: trials in the store were begun by engine version {version}, this psa runs version "
            f"{current} here ({HOW[version]}); finish them so, or sweep into a new store"
        )


HOW = {  # how to run each engine version (psa.engine.batched.native.ENGINE_VERSION)
    1: "PSA_FUSED=0 runs version 1 on a CPU",
    2: "version 2, fused kernels that read normalised images, is an earlier psa: `psa info` names its commit",
    3: "version 3, whose fused kernels computed some sums by the CPU, is an earlier psa: `psa info` names its commit",
    4: "version 4 needs a C++ compiler on a CPU",
}
