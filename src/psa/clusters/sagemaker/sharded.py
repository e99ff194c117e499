"""The sharded plan on SageMaker: the grid split into N jobs of whole architectures (psa.sweeps.shards),
each job running the sweep engine over its share. A plan is named by a hash of what it trains and
how many shards, and its split is kept in S3 the first time it is launched, so launching it again
finds the same shards. Once launched, `psa cloud collect` merges the shards' results stores into
one local store (a finished shard's from its model artifact, a running one's from its checkpoint
folder in S3), and `psa cloud status` says how far each shard got and what it has cost so far."""

import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from botocore.exceptions import ClientError
from rich.table import Table

import psa.sweeps.shards
from psa.clusters.sagemaker import layout
from psa.clusters.sagemaker.aws import Cloud, describe
from psa.clusters.sagemaker.results import member
from psa.errors import PSAError
from psa.store import Store
from psa.sweeps.settings import RunSettings


@dataclass(frozen=True)
class Plan:
    archs: tuple[str, ...]
    modes: tuple[str, ...]
    trials: int  # per architecture and mode
    arguments: tuple[tuple[str, str], ...]  # the rest of a job's arguments (Run.arguments)
    shards: tuple[tuple[str, ...], ...]  # the architectures of each job
    seconds: tuple[float, ...]  # estimated training seconds of each job

    @property
    def id(self) -> str:
        """What the plan trains and in how many jobs, hashed: the same for the same launch."""
        key = json.dumps([self.archs, self.modes, self.trials, self.arguments, len(self.shards)])
        return hashlib.sha256(key.encode()).hexdigest()[:8]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        data = json.loads(text)
        return cls(
            tuple(data["archs"]),
            tuple(data["modes"]),
            data["trials"],
            tuple(tuple(pair) for pair in data["arguments"]),
            tuple(tuple(s) for s in data["shards"]),
            tuple(data["seconds"]),
        )


def split(run: RunSettings, shards: int, speed: float, measured: dict | None = None) -> Plan:
    """The run's plan of N shards: psa.sweeps.shards' balanced split, named by what it trains."""
    balanced = psa.sweeps.shards.split(run, shards, speed, measured)
    return Plan(
        tuple(str(a) for a in dict.fromkeys(run.archs)),
        tuple(run.modes),
        run.trials,
        tuple(sorted(run.job_arguments().items())),
        tuple(tuple(str(a) for a in shard) for shard in balanced.shards),
        balanced.seconds,
    )


def settle(cloud: Cloud, bucket: str, prefix: str, plan: Plan) -> Plan:
    """The plan as first launched: its split, kept in S3, wins over a new estimate, so a second
    launch finds the same shards (their jobs and checkpoints) whatever the cost model says now."""
    key = layout.plan_key(prefix, plan.id)
    if cloud.exists(bucket, key):
        return Plan.from_json(cloud.read(bucket, key).decode())
    cloud.write(bucket, key, plan.to_json().encode())
    return plan


def load(cloud: Cloud, bucket: str, prefix: str, plan_id: str) -> Plan:
    if not cloud.exists(bucket, layout.plan_key(prefix, plan_id)):
        raise PSAError(f"no plan {plan_id} under {layout.uri(bucket, layout.plans(prefix))} (launched with --shards?)")
    return Plan.from_json(cloud.read(bucket, layout.plan_key(prefix, plan_id)).decode())


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
    """Every shard's job, status, billable time and trials done; with `into`, the shards' complete
    trials merged into that store (Store.merge: all or nothing, and merging again adds nothing)."""
    latest = latest_jobs(cloud, plan)
    per_arch = len(plan.modes) * plan.trials
    shards, found = [], {}
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
            store = Store.read(path)
            try:
                shard.done = len(store.completed())
            finally:
                store.close()
            found[path] = shard.job
        if into is not None:
            into.merge(found)
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
