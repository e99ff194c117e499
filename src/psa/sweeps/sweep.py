"""The one run path: given a run's settings and a results store, train what the store lacks. Every
front end calls run_grid: `psa sweep` and `psa reproduce`, each worker of `--devices`, a Slurm
task and a SageMaker job, so that each picks its device, threads, memory and packing the same way
and the same grid gives the same store however it is run (docs/DESIGN.md section 8)."""

import tempfile
import time
from pathlib import Path

from rich.console import Console

from psa import files
from psa.engine.batched import grouping
from psa.engine.curves import Curves
from psa.engine.memory import tune_for_training
from psa.errors import PSAError
from psa.progress import make_console
from psa.store import Store
from psa.store.claims import restore
from psa.sweeps.grid import pack_limit, train_grid
from psa.sweeps.manifest import manifest
from psa.sweeps.settings import CHECKPOINT_EVERY, Machine, RunSettings
from psa.trial.data import MNIST, load_mnist
from psa.trial.device import memory_budget, pick_device, set_threads

__all__ = ["CHECKPOINT_EVERY", "Machine", "run_grid"]


def run_grid(
    run: RunSettings,
    store: Path | str,
    machine: Machine = Machine(),
    *,
    snapshot: Path | None = None,
    command: str = "psa sweep",
    log=None,
    data: MNIST | None = None,
    console: Console | None = None,
    wait: bool = True,
) -> dict[str, int]:
    """Train every trial of `run` that the results store at `store` lacks (and no other live sweep
    holds) on this machine, and return counts: total, trained, loops, left (trials other sweeps
    still train). Every input is checked before the store is made, so a bad one leaves nothing.

    With `snapshot` (a file in a folder that outlives this process: a Slurm folder, SageMaker's
    checkpoints), `store` is the live store in a scratch folder, a copy replaces `snapshot` after
    every commit, and a run that finds the copy but no live store goes on from the copy: a
    requeued task or a restarted spot job. `log(stacks, loop, records)` sees every meta-loop.

    Trials other live sweeps hold are left to them; with `wait` this run waits for them, taking
    over what they abandon, until the grid is complete. SIGTERM and Ctrl-C stop it after a commit
    (psa.errors.Stopped). At the end the grid is read back from the file: a store that lost what
    this run counted (its -wal deleted, say) is a PSAError, never a success."""
    console = console or make_console()
    tune_for_training()
    device = pick_device(machine.device)
    set_threads(machine.threads)
    recorded = manifest(run, machine, command, device)
    memory = memory_budget(device, machine.max_memory)
    grouping.check_fits(run.grid().specs, memory)
    path = files.output_file(store, "--store")
    data = data or load_mnist(machine.data_dir)
    curves = Curves(machine.tensorboard) if machine.tensorboard else None
    if snapshot is not None:
        opened, resumed = restore(Path(snapshot), path)
        if resumed:
            console.print(f"going on from {snapshot}")
    else:
        opened = Store(path)
    started = time.perf_counter()
    try:
        done = train_grid(
            opened,
            run,
            device,
            memory,
            data,
            command,
            console,
            pack_limit(device, machine.pack),
            machine.checkpoint_every,
            snapshot,
            log,
            curves,
            wait,
            recorded,
        )
    finally:
        opened.close()
        if curves:
            curves.close()
    check_complete(path, run, done["total"] - done["left"])
    where = snapshot or path
    console.print(
        f"trained {done['trained']} trials ({done['loops']} trial-loops) in {time.perf_counter() - started:.1f} s; "
        + (
            f"{done['left']} trials of the grid are still training in other sweeps on {where}"
            if done["left"]
            else f"the grid is complete in {where} (export with `psa export --store {where}`)"
        )
    )
    return done


def scratch_store(name: str, work_dir: Path | None = None) -> Path:
    """Where a task that keeps a snapshot elsewhere trains its live store: `work_dir`, else a new
    temporary folder (a node's local disk, where SQLite's locks hold)."""
    return (work_dir or Path(tempfile.mkdtemp(prefix="psa-"))) / name


def check_complete(path: Path, run: RunSettings, counted: int) -> None:
    """The trials of `run` complete in the file at `path`, read back afresh, are at least those the
    run counted complete."""
    store = Store.read(path)
    try:
        found = sum(status == "complete" for status, _ in store.status(run.grid().specs, run.meta_loops).values())
    finally:
        store.close()
    if found < counted:
        raise PSAError(
            f"results store {path} holds {found} complete trials of the grid, but this run counted {counted}: the "
            f"store lost what was committed (was its -wal file deleted while it ran?); run the same command again "
            f"to train what is missing"
        )
