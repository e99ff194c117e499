"""`sagemaker-cost-estimator`: billable seconds of every job (DescribeTrainingJob), priced at the
instance's hourly rate, broken down by status, architecture and mode, as a report shaped like
the published `sagemaker_cost_report.json`. Spot jobs bill only what they ran, and
BillableTimeInSeconds already says so."""

import json
from datetime import datetime
from pathlib import Path

from botocore.exceptions import ClientError
from rich.progress import track
from rich.table import Table

from psa.clusters.sagemaker import layout
from psa.clusters.sagemaker.aws import Cloud, describe
from psa.errors import PSAError
from psa.published import COST_REPORT

DEFAULT_REPORT = Path("results/sagemaker_cost_report.json")
PRICES = {"ml.g4dn.xlarge": 0.7364}  # USD per hour, on demand, us-east-1: the published run's


def price_per_hour(instance_type: str, price: float | None) -> float:
    if price is not None:
        return price
    if instance_type not in PRICES:
        raise PSAError(f"no price known for {instance_type}: pass --price-per-hour (USD per hour)")
    return PRICES[instance_type]


def job_entry(info: dict, price: float) -> dict:
    seconds = int(info.get("BillableTimeInSeconds") or 0)
    end = info.get("TrainingEndTime")
    return {
        "name": info["TrainingJobName"],
        "status": info["TrainingJobStatus"],
        "creation_time": str(info["CreationTime"]),
        "end_time": None if end is None else str(end),
        "billable_seconds": seconds,
        "billable_hours": seconds / 3600,
        "cost": seconds / 3600 * price,
    }


def _group(entries: list[dict], key) -> dict:
    groups: dict[str, dict] = {}
    for entry in entries:
        group = groups.setdefault(key(entry), {"jobs": 0, "billable_hours": 0.0, "cost": 0.0})
        group["jobs"] += 1
        group["billable_hours"] += entry["billable_hours"]
        group["cost"] += entry["cost"]
    return groups


def estimate(cloud: Cloud, jobs: list[str], instance_type: str, price: float) -> tuple[dict, list[str]]:
    """The report, and a message for every job that was rejected or could not be described."""
    entries, problems = [], []
    for job in track(jobs, description="Describing jobs"):
        try:
            entries.append(job_entry(cloud.describe_job(layout.check(job)), price))
        except PSAError as error:
            problems.append(str(error))
        except ClientError as error:
            problems.append(f"{job}: {describe(error)}")
    cell = lambda entry: layout.group(entry["name"])  # noqa: E731
    longest = max(entries, key=lambda e: e["billable_hours"], default=None)
    total = _group(entries, lambda e: "total").get("total", {"jobs": 0, "billable_hours": 0.0, "cost": 0.0})
    report = {
        "metadata": {
            "instance_type": instance_type,
            "cost_per_hour": price,
            "region": cloud.region,
            "generated_at": datetime.now().isoformat(),
            "total_jobs": total["jobs"],
            "total_cost": total["cost"],
            "total_hours": total["billable_hours"],
        },
        "breakdown": {
            "total": total,
            # Jobs run side by side, so the study's wall clock is about its longest job.
            "concurrency": {
                "max_wall_clock_hours": longest["billable_hours"] if longest else 0.0,
                "max_wall_clock_job": longest and longest["name"],
                "max_wall_clock_architecture": longest and cell(longest)[0],
                "max_wall_clock_mode": longest and cell(longest)[1],
            },
            "by_status": _group(entries, lambda e: e["status"]),
            "by_architecture": _group(entries, lambda e: cell(e)[0]),
            "by_mode": _group(entries, lambda e: cell(e)[1]),
            "by_architecture_mode": _group(entries, lambda e: "-".join(cell(e))),
        },
        "jobs": entries,
    }
    return report, problems


def table(report: dict) -> Table:
    out = Table(
        title=f"SageMaker cost ({report['metadata']['instance_type']}, USD {report['metadata']['cost_per_hour']}/h)"
    )
    for column in ("Group", "Jobs", "Billable hours", "Cost (USD)"):
        out.add_column(column, justify="left" if column == "Group" else "right")
    breakdown = report["breakdown"]
    rows = (
        [("Total", breakdown["total"])]
        + [(f"status {k}", v) for k, v in breakdown["by_status"].items()]
        + [(f"mode {k}", v) for k, v in breakdown["by_mode"].items()]
    )
    for label, group in rows:
        out.add_row(label, str(group["jobs"]), f"{group['billable_hours']:.2f}", f"{group['cost']:.2f}")
    concurrency = breakdown["concurrency"]
    if concurrency["max_wall_clock_job"]:
        out.caption = (
            f"longest job {concurrency['max_wall_clock_job']}: "
            f"{concurrency['max_wall_clock_hours']:.2f} h (about the study's wall clock)"
        )
    return out


def plan_table(plans: list, instance_type: str, price: float, startup: float, measured: bool) -> Table:
    """What each sharded plan would take (instance-hours, wall time, cost) next to the published
    run's own report."""
    report = json.loads(COST_REPORT.read_text())
    published = report["breakdown"]
    out = Table(title=f"Sharded plans on {instance_type} (USD {price}/h), estimated before launch")
    for column in ("Plan", "Jobs", "Instance-hours", "Wall time (h)", "Cost (USD)"):
        out.add_column(column, justify="left" if column == "Plan" else "right")
    for plan in plans:
        hours = (sum(plan.seconds) + startup * len(plan.shards)) / 3600
        wall = (max(plan.seconds) + startup) / 3600
        out.add_row(
            f"{len(plan.shards)} shard(s), plan {plan.id}",
            str(len(plan.shards)),
            f"{hours:.1f}",
            f"{wall:.1f}",
            f"{hours * price:.2f}",
        )
    out.add_row(
        "published run (a job per cell, trials one at a time)",
        str(published["total"]["jobs"]),
        f"{published['total']['billable_hours']:.1f}",
        f"{published['concurrency']['max_wall_clock_hours']:.1f}",
        f"{published['total']['cost']:.2f}",
        style="dim",
    )
    source = (
        "measured on the instance's GPU (--cost-model)"
        if measured
        else "psa.engine.costmodel, fitted to an H100 in float32 and scaled by the GPU's assumed speed"
    )
    out.caption = f"training time: {source}; plus {startup:.0f} s of start-up per job"
    return out
