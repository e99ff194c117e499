"""A sharded plan's fleet once launched: `psa cloud collect` merges the shards' results stores into
one local store (a finished shard's from its model artifact, a running one's from its checkpoint
folder in S3), and `psa cloud status` says how far each shard got and what it has cost so far."""

import io
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from botocore.exceptions import ClientError
from rich.table import Table

from psa.cloud import layout
from psa.cloud.aws import Cloud, describe
from psa.cloud.results import member
from psa.cloud.shards import Plan
from psa.store import Store


@dataclass
class Shard:
    k: int
    archs: tuple[str, ...]
    trials: int  # in the grid
    job: str | None = None  # the latest job
    status: str | None = None
    done: int = 0  # trials complete in the store found
    source: str = ""  # where the store came from
    seconds: float = 0.0  # billable so far
    problem: str | None = None


def latest_jobs(cloud: Cloud, plan: Plan) -> dict[int, dict]:
    """The newest job of each shard of the plan, by shard number."""
    latest = {}
    for job in sorted(cloud.training_jobs(f"psa-shard-{plan.id}-"), key=lambda j: j["CreationTime"]):
        found = layout.shard(job["TrainingJobName"])
        if found and found[0] == plan.id:
            latest[found[1]] = job
    return latest


def shard_store(cloud: Cloud, bucket: str, prefix: str, plan: Plan, shard: Shard, folder: Path) -> Path | None:
    """The shard's results store, fetched into `folder`: the final one of a completed job, else the
    last copy in its checkpoint folder; None if there is none yet."""
    path = folder / f"shard-{shard.k}.sqlite"
    if shard.status == "Completed":
        archive = cloud.read(bucket, layout.artifact(prefix, shard.job))
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            data = member(tar, layout.STORE)
        shard.source = "model artifact"
    else:
        key = f"{layout.shard_checkpoints(prefix, plan.id, shard.k)}/{layout.STORE}"
        if not cloud.exists(bucket, key):
            return None
        data = cloud.read(bucket, key)
        shard.source = "checkpoint"
    if data is None:
        raise ValueError(f"the model artifact of {shard.job} holds no {layout.STORE}")
    path.write_bytes(data)
    return path


def survey(cloud: Cloud, bucket: str, prefix: str, plan: Plan, into: Store | None = None) -> list[Shard]:
    """Every shard's job, status, billable time and trials done; with `into`, each shard's complete
    trials merged into that store (idempotent: a trial already complete there is left alone)."""
    latest = latest_jobs(cloud, plan)
    per_arch = len(plan.modes) * plan.trials
    shards = []
    with tempfile.TemporaryDirectory() as folder:
        for k, archs in enumerate(plan.shards, start=1):
            shard = Shard(k, archs, per_arch * len(archs))
            shards.append(shard)
            job = latest.get(k)
            if job is None:
                shard.problem = "not launched"
                continue
            shard.job, shard.status = job["TrainingJobName"], job["TrainingJobStatus"]
            try:
                info = cloud.describe_job(shard.job)
                shard.seconds = _billable(info)
                path = shard_store(cloud, bucket, prefix, plan, shard, Path(folder))
            except (ClientError, ValueError, tarfile.TarError, OSError) as error:
                shard.problem = describe(error) if isinstance(error, ClientError) else str(error)
                continue
            if path is None:
                shard.problem = "no checkpoint yet"
                continue
            store = Store(path)
            try:
                shard.done = len(store.completed())
            finally:
                store.close()
            if into is not None:
                into.merge(path, shard.job)
    return shards


def _billable(info: dict) -> float:
    """Billable seconds of a job: SageMaker's count once it ended, else the time since it started."""
    if info.get("BillableTimeInSeconds"):
        return float(info["BillableTimeInSeconds"])
    started = info.get("TrainingStartTime")
    return (datetime.now(timezone.utc) - started).total_seconds() if started else 0.0


def table(plan: Plan, shards: list[Shard], price: float) -> Table:
    out = Table(
        title=f"Plan {plan.id}: {len(plan.archs)} architectures x {len(plan.modes)} modes x {plan.trials} "
        f"trials in {len(plan.shards)} shards"
    )
    for column in ("Shard", "Architectures", "Job", "Status", "Trials done", "Store from", "Hours", "Cost (USD)"):
        out.add_column(column, justify="right" if column in ("Trials done", "Hours", "Cost (USD)") else "left")
    for s in shards:
        archs = ", ".join(s.archs[:4]) + (f" +{len(s.archs) - 4}" if len(s.archs) > 4 else "")
        out.add_row(
            f"{s.k}/{len(plan.shards)}",
            archs,
            s.job or "-",
            s.status or s.problem or "-",
            f"{s.done}/{s.trials}",
            s.source or s.problem or "-",
            f"{s.seconds / 3600:.2f}",
            f"{s.seconds / 3600 * price:.2f}",
        )
    done, total = sum(s.done for s in shards), sum(s.trials for s in shards)
    hours = sum(s.seconds for s in shards) / 3600
    out.caption = f"{done} of {total} trials complete; {hours:.2f} billable hours, USD {hours * price:.2f} so far"
    return out
