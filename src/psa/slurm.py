"""`psa slurm`: the grid's balanced shards (psa.shards) as one Slurm job array, sent through
submitit (`pip install psa[slurm]`).

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

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from rich.table import Table

from psa import PSAError, costmodel, options, settings, shards
from psa.files import read_text, write_json
from psa.merge import merge_into
from psa.progress import make_console
from psa.settings import RunSettings
from psa.store import DEFAULT_STORE, read_complete

PLAN = "plan.json"
console = make_console()


@dataclass
class ShardTask:
    """What a task of the array runs: shard k of the run, into its store in `folder`. submitit
    pickles it for the nodes and calls it with k; on preemption or time-out it calls checkpoint,
    whose resubmission is the same call, since the store remembers how far the shard got."""

    runs: tuple[RunSettings, ...]  # each shard's
    folder: Path
    device: str | None
    threads: int | None
    data_dir: Path | None
    checkpoint_every: float

    def __call__(self, k: int) -> dict[str, int]:
        from psa.device import memory_budget, pick_device, set_threads
        from psa.store.claims import restore
        from psa.sweep import pack_limit, run_sweep

        run, n = self.runs[k - 1], len(self.runs)
        device = pick_device(self.device)
        set_threads(self.threads)
        scratch = Path(tempfile.mkdtemp(prefix="psa-slurm-"))
        store, resumed = restore(shards.store_name(k, n, self.folder), scratch / "psa.sqlite")
        try:
            print(f"shard {k}/{n}: {', '.join(map(str, run.archs))}" + (" (resumed)" if resumed else ""))
            return run_sweep(
                store,
                run,
                device,
                memory_budget(device, None),
                command=f"psa slurm task {k}/{n}",
                pack=pack_limit(device, None),
                data_dir=self.data_dir,
                checkpoint_every=self.checkpoint_every,
                snapshot=shards.store_name(k, n, self.folder),
            )
        finally:
            store.close()
            shutil.rmtree(scratch, ignore_errors=True)

    def checkpoint(self, k: int):
        import submitit

        return submitit.helpers.DelayedSubmission(self, k)


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


def _plan(run: RunSettings, split: shards.Split) -> dict:
    """plan.json: what the shards train, for status and collect (and to refuse another grid)."""
    return {
        "archs": [str(arch) for arch in dict.fromkeys(run.archs)],
        "modes": list(run.modes),
        "settings": run.job_arguments(),
        "shards": [[str(arch) for arch in shard] for shard in split.shards],
    }


def submit(args) -> None:
    try:
        import submitit
    except ImportError:
        raise PSAError("psa slurm needs submitit: pip install 'psa[slurm]'") from None
    run = settings.from_args(args)
    folder = Path(args.folder)
    measured = costmodel.read_measured(args.cost_model) if args.cost_model else None
    split = shards.split(run, args.shards, measured=measured)
    plan = _plan(run, split)
    if (folder / PLAN).is_file():
        kept = json.loads(read_text(folder / PLAN, "plan"))
        if {k: v for k, v in kept.items() if k != "job"} != plan:
            raise PSAError(f"{folder} holds the shards of another grid; choose another --folder")
    executor = submitit.AutoExecutor(folder=folder / "logs", cluster="slurm")
    parameters = {"timeout_min": args.time, "slurm_job_name": "psa-shards", "slurm_array_parallelism": args.shards}
    optional = {"slurm_partition": args.partition, "slurm_gpus_per_task": args.gpus_per_task}
    optional["slurm_cpus_per_task"] = args.cpus_per_task
    executor.update_parameters(**parameters, **{k: v for k, v in optional.items() if v is not None})
    runs = tuple(replace(run, archs=archs) for archs in split.shards)
    task = ShardTask(runs, folder, args.device, args.threads, args.data_dir, args.checkpoint_every)
    try:
        jobs = executor.map_array(task, list(range(1, args.shards + 1)))
    except (OSError, subprocess.SubprocessError) as error:
        raise PSAError(f"sbatch could not submit the array: {str(error).strip().splitlines()[-1]}") from None
    job = jobs[0].job_id.split("_")[0]
    write_json(folder / PLAN, {**plan, "job": job})
    console.print(
        f"submitted Slurm job array {job}: {args.shards} shards of {len(plan['archs'])} architectures into "
        f"{folder}/ (watch with `psa slurm status --folder {folder}`, merge with `psa slurm collect`)"
    )


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


def status(args) -> None:
    console.print(table(*survey(Path(args.folder))))


def collect(args) -> None:
    plan, found = survey(Path(args.folder))
    stores = {s.store: f"slurm {plan.get('job', '?')}_{s.k - 1}" for s in found if s.store.is_file()}
    added = merge_into(args.store, stores) if stores else 0
    console.print(table(plan, found))
    console.print(f"{added} trials added to {args.store} (export with `psa export --store {args.store}`)")


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
    settings.add_arguments(p, trials=10, meta_loops=100)
    p.add_argument("--shards", type=options.whole(1), required=True, help="tasks of the array: N balanced shards")
    p.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's default)")
    p.add_argument("--gpus-per-task", type=options.whole(1), default=None, help="GPUs per task (default: none)")
    p.add_argument("--cpus-per-task", type=options.whole(1), default=None, help="CPUs per task (default: Slurm's)")
    p.add_argument(
        "--time", type=minutes, default=24 * 60, help="time limit per task: minutes, H:MM or D-H:MM (default: 24:00)"
    )
    p.add_argument("--cost-model", type=Path, default=None, help="a `psa bench --estimate-sweep --json` file")
    p.add_argument(
        "--checkpoint-every",
        type=options.NON_NEGATIVE,
        default=30.0,
        help="seconds between copies of a task's store into the folder (default: 30)",
    )
    options.add_device(p)
    options.add_threads(p)
    options.add_data_dir(p)
    p.set_defaults(func=submit)
    p = sub.add_parser("status", parents=[folder], help="trials complete in each shard's store")
    p.set_defaults(func=status)
    p = sub.add_parser("collect", parents=[folder], help="merge the shards' complete trials into one store")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"results store to merge into (default: {DEFAULT_STORE})")
    p.set_defaults(func=collect)
