"""`sagemaker-estimate-storage`: how much the jobs keep in S3, in total, by file type and per
job, as rich tables and a JSON report shaped like the published `storage_report.json`."""

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from rich.progress import track
from rich.table import Table

from psa.clusters.sagemaker import layout
from psa.clusters.sagemaker.aws import Cloud
from psa.errors import PSAError

DEFAULT_REPORT = Path("aws/sagemaker/storage_report.json")
FILE_TYPES = {  # category -> file name endings, first match wins
    "model_archives": (".tar.gz",),
    "json_files": (".json",),
    "text_files": (".txt",),
    "log_files": (".log",),
    "other": ("",),
}


def category(key: str) -> str:
    return next(kind for kind, endings in FILE_TYPES.items() if key.endswith(endings))


def human(size: float) -> str:
    """1536 -> '1.50 KB' (powers of 1024, as the published report)."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} TB"


@dataclass
class JobStorage:
    job_name: str
    total_size: int = 0
    file_count: int = 0
    file_types: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILE_TYPES, 0))


def job_storage(cloud: Cloud, bucket: str, prefix: str, job: str) -> JobStorage:
    usage = JobStorage(job)
    for obj in cloud.objects(bucket, f"{prefix}/{job}/"):
        usage.total_size += obj["Size"]
        usage.file_count += 1
        usage.file_types[category(obj["Key"])] += obj["Size"]
    return usage


def estimate(cloud: Cloud, bucket: str, prefix: str, jobs: list[str]) -> tuple[dict, list[str]]:
    """The report, and a message for every job name that was rejected or holds nothing."""
    details, problems = [], []
    for job in track(jobs, description="Measuring jobs"):
        try:
            usage = job_storage(cloud, bucket, prefix, layout.check(job))
        except PSAError as error:
            problems.append(str(error))
            continue
        if usage.file_count == 0:
            problems.append(f"{job}: nothing stored under s3://{bucket}/{prefix}/{job}/")
        details.append(usage)
    total = sum(d.total_size for d in details)
    report = {
        "timestamp": datetime.now().isoformat(),
        "bucket": bucket,
        "prefix": prefix,
        "total_jobs": len(details),
        "total_storage_bytes": total,
        "total_storage_human": human(total),
        "total_files": sum(d.file_count for d in details),
        "average_per_job": human(total / len(details) if details else 0),
        "file_types": {kind: sum(d.file_types[kind] for d in details) for kind in FILE_TYPES},
        "job_details": [asdict(d) for d in details],
    }
    return report, problems


def tables(report: dict, detailed: bool) -> list[Table]:
    summary = Table(title="S3 storage")
    summary.add_column("Measure")
    summary.add_column("Value", justify="right")
    for label, key in (
        ("Bucket", "bucket"),
        ("Prefix", "prefix"),
        ("Jobs", "total_jobs"),
        ("Files", "total_files"),
        ("Total", "total_storage_human"),
        ("Average per job", "average_per_job"),
    ):
        summary.add_row(label, str(report[key]))
    total = report["total_storage_bytes"] or 1
    types = Table(title="By file type")
    for column in ("Type", "Size", "Share"):
        types.add_column(column, justify="left" if column == "Type" else "right")
    for kind, size in report["file_types"].items():
        types.add_row(kind.replace("_", " "), human(size), f"{100 * size / total:.1f}%")
    out = [summary, types]
    if detailed:
        jobs = Table(title="Per job")
        for column in ("Job", "Files", "Size", *(kind.replace("_", " ") for kind in FILE_TYPES)):
            jobs.add_column(column, justify="left" if column == "Job" else "right")
        for d in report["job_details"]:
            jobs.add_row(
                d["job_name"],
                str(d["file_count"]),
                human(d["total_size"]),
                *(human(d["file_types"][kind]) for kind in FILE_TYPES),
            )
        out.append(jobs)
    return out
