"""`psa slurm`: the grid's balanced shards (psa.sweeps.shards) as one Slurm job array, sent through
submitit (`pip install submitit`, or the checkout's extra: `pip install -e ".[slurm]"`).

A folder shared by the cluster's nodes (--folder) holds the plan (plan.json: the shards and what
they train), submitit's logs, and a results store per shard, `psa-shard-K-of-N.sqlite`. A task
trains its shard into a store on its node's scratch disk, where SQLite is safe, and after every
commit copies it as one plain file onto its shard's store in the folder (Store.snapshot, as a
SageMaker job does with its checkpoint folder). A task that is preempted or reaches its time limit
is requeued by submitit and goes on from that copy, as an unbroken run would.

`psa slurm status` and `psa slurm collect` read the shards' stores in the folder, not the job's
states: without accounting storage Slurm has no record of ended jobs (sacct is disabled, and
submitit says UNKNOWN), while a store says exactly which trials are complete. Collect merges those
into one store with psa merge's Store.merge, as often as wanted."""

import json
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from rich.table import Table

from psa.errors import PSAError
from psa.files import read_text, write_json
from psa.progress import make_console
from psa.store import read_complete
from psa.sweeps import shards
from psa.sweeps.merge import merge_into
from psa.sweeps.settings import Machine, RunSettings

PLAN = "plan.json"
console = make_console()


@dataclass
class ShardTask:
    """What a task of the array runs: shard k of the run, into its store in `folder`, through the
    one run path (psa.sweeps.sweep.run_grid). submitit pickles it for the nodes and calls it with k;
    on preemption or time-out it calls checkpoint, whose resubmission is the same call, since the
    store remembers how far the shard got."""

    runs: tuple[RunSettings, ...]  # each shard's
    folder: Path
    machine: Machine

    def __call__(self, k: int) -> dict[str, int]:
        from psa.sweeps.sweep import run_grid, scratch_store

        run, n = self.runs[k - 1], len(self.runs)
        live = scratch_store("psa.sqlite")
        try:
            print(f"shard {k}/{n}: {', '.join(map(str, run.archs))}", flush=True)
            return run_grid(
                run,
                live,
                self.machine,
                snapshot=shards.store_name(k, n, self.folder),
                command=f"psa slurm task {k}/{n}",
            )
        finally:
            shutil.rmtree(live.parent, ignore_errors=True)

    def checkpoint(self, k: int):
        import submitit

        return submitit.helpers.DelayedSubmission(self, k)


def _plan(run: RunSettings, split: shards.Split) -> dict:
    """plan.json: what the shards train, for status and collect (and to refuse another grid)."""
    return {
        "archs": [str(arch) for arch in dict.fromkeys(run.archs)],
        "modes": list(run.modes),
        "settings": run.job_arguments(),
        "shards": [[str(arch) for arch in shard] for shard in split.shards],
    }


def submit(
    run: RunSettings,
    folder: Path,
    shard_count: int,
    machine: Machine = Machine(),
    time_limit: int = 24 * 60,
    partition: str | None = None,
    gpus_per_task: int | None = None,
    cpus_per_task: int | None = None,
    measured: dict | None = None,
) -> str:
    """Submit the run's `shard_count` balanced shards (by `measured` seconds per loop, else the cost
    model) as one job array, each task for at most `time_limit` minutes; returns the job's id."""
    try:
        import submitit
    except ImportError:
        raise PSAError('psa slurm needs submitit: pip install submitit (or pip install -e ".[slurm]")') from None
    split = shards.split(run, shard_count, measured=measured)
    plan = _plan(run, split)
    if (folder / PLAN).is_file():
        kept = json.loads(read_text(folder / PLAN, "plan"))
        if {k: v for k, v in kept.items() if k != "job"} != plan:
            raise PSAError(f"{folder} holds the shards of another grid; choose another --folder")
    executor = submitit.AutoExecutor(folder=folder / "logs", cluster="slurm")
    parameters = {"timeout_min": time_limit, "slurm_job_name": "psa-shards", "slurm_array_parallelism": shard_count}
    optional = {"slurm_partition": partition, "slurm_gpus_per_task": gpus_per_task}
    optional["slurm_cpus_per_task"] = cpus_per_task
    executor.update_parameters(**parameters, **{k: v for k, v in optional.items() if v is not None})
    runs = tuple(replace(run, archs=archs) for archs in split.shards)
    try:
        jobs = executor.map_array(ShardTask(runs, folder, machine), list(range(1, shard_count + 1)))
    except (OSError, subprocess.SubprocessError) as error:
        raise PSAError(f"sbatch could not submit the array: {str(error).strip().splitlines()[-1]}") from None
    job = jobs[0].job_id.split("_")[0]
    write_json(folder / PLAN, {**plan, "job": job})
    console.print(
        f"submitted Slurm job array {job}: {shard_count} shards of {len(plan['archs'])} architectures into "
        f"{folder}/ (watch with `psa slurm status --folder {folder}`, merge with `psa slurm collect`)"
    )
    return job


@dataclass
class ShardState:
    k: int
    archs: list[str]
    trials: int  # in the grid
    done: int  # complete in its store
    store: Path


def survey(folder: Path) -> tuple[dict, list[ShardState]]:
    """The plan in `folder` and how far each shard's store got."""
    if not (folder / PLAN).is_file():
        raise PSAError(f"no Slurm shards in {folder} (no {PLAN}; submitted with `psa slurm submit --folder`?)")
    plan = json.loads(read_text(folder / PLAN, "plan"))
    per_arch = len(plan["modes"]) * int(plan["settings"]["trials"])
    found = []
    for k, archs in enumerate(plan["shards"], start=1):
        path = shards.store_name(k, len(plan["shards"]), folder)
        done = len(read_complete(path)[0]) if path.is_file() else 0
        found.append(ShardState(k, archs, per_arch * len(archs), done, path))
    return plan, found


def table(plan: dict, found: list[ShardState]) -> Table:
    out = Table(title=f"Slurm job {plan.get('job', '?')}: {len(found)} shards")
    for column in ("Shard", "Architectures", "Trials done", "Store"):
        out.add_column(column, justify="right" if column == "Trials done" else "left")
    for s in found:
        archs = ", ".join(s.archs[:4]) + (f" +{len(s.archs) - 4}" if len(s.archs) > 4 else "")
        out.add_row(f"{s.k}/{len(found)}", archs, f"{s.done}/{s.trials}", str(s.store) if s.store.is_file() else "-")
    out.caption = f"{sum(s.done for s in found)} of {sum(s.trials for s in found)} trials complete"
    return out


def status(folder: Path) -> None:
    console.print(table(*survey(Path(folder))))


def collect(folder: Path, into: Path | str) -> int:
    """Merge the shards' complete trials into the store `into`; how many were added."""
    plan, found = survey(Path(folder))
    stores = {s.store: f"slurm {plan.get('job', '?')}_{s.k - 1}" for s in found if s.store.is_file()}
    added = merge_into(into, stores) if stores else 0
    console.print(table(plan, found))
    console.print(f"{added} trials added to {into} (export with `psa export --store {into}`)")
    return added
