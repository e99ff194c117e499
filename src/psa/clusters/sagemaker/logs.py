"""`sagemaker-get-training-logs`: every CloudWatch log stream of every job, downloaded into
`<output>/<job>/<stream>.log` (one `<ISO time> <message>` line per event, so the original
timestamps survive), a `summary.json` per job and a `download_summary.json` for the run, shaped
like the published ones. A job whose summary.json exists was downloaded before and is skipped
unless forced; summary.json is written last, so an interrupted download is done again.

Job and stream names come from a file or from AWS; both are checked before they become paths."""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from botocore.exceptions import ClientError
from rich.progress import track

from psa.clusters.sagemaker import layout
from psa.clusters.sagemaker.aws import LOG_GROUP, Cloud, describe
from psa.errors import PSAError
from psa.files import write_json, write_text

DEFAULT_LOGS_DIR = Path("results/logs")
_STREAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # the part after "<job>/": algo-1-1754945940


@dataclass
class Download:
    job: str
    files: list[str] = field(default_factory=list)
    size: int = 0
    skipped: bool = False
    error: str | None = None


def _line(event: dict) -> str:
    when = datetime.fromtimestamp(event["timestamp"] / 1000, timezone.utc)
    return f"{when.isoformat(timespec='milliseconds')} {event['message'].rstrip()}\n"


def download_job(cloud: Cloud, job: str, out_dir: Path, force: bool) -> Download:
    folder = out_dir / layout.check(job)
    summary = folder / "summary.json"
    if summary.is_file() and not force:
        try:
            done = json.loads(summary.read_text())
            return Download(job, done["log_files"], done["total_size"], skipped=True)
        except (ValueError, KeyError):
            pass  # a damaged summary: download again
    streams = cloud.log_streams(job)
    if not streams:
        raise PSAError(f"no log streams for {job} in {LOG_GROUP} (did the job start?)")
    files = []
    for stream in streams:
        part = stream.removeprefix(f"{job}/")
        if not _STREAM.match(part):
            raise PSAError(f"log stream {stream!r} of {job} has an unexpected name; not written")
        path = folder / f"{part}.log"
        write_text(path, "".join(_line(event) for event in cloud.log_events(stream)))
        files.append(path)
    result = Download(job, [str(p) for p in files], sum(p.stat().st_size for p in files))
    write_json(
        summary,
        {
            "job_name": job,
            "timestamp": datetime.now().isoformat(),
            "log_files": result.files,
            "total_files": len(files),
            "total_size": result.size,
        },
    )
    return result


def download(cloud: Cloud, jobs: list[str], out_dir: Path | str, force: bool = False) -> list[Download]:
    """Every job's logs; a job that fails is recorded with its error and the rest go on."""
    out_dir = Path(out_dir)
    results = []
    for job in track(jobs, description="Downloading logs"):
        try:
            results.append(download_job(cloud, job, out_dir, force))
        except PSAError as error:
            results.append(Download(job, error=str(error)))
        except ClientError as error:
            results.append(Download(job, error=f"{job}: {describe(error)}"))
    done = [r for r in results if r.error is None]
    size = sum(r.size for r in done)
    write_json(
        out_dir / "download_summary.json",
        {
            "timestamp": datetime.now().isoformat(),
            "region": cloud.region,
            "output_directory": str(out_dir.resolve()),
            "total_jobs": len(jobs),
            "successful_downloads": len(done),
            "failed_downloads": len(results) - len(done),
            "skipped_downloads": sum(r.skipped for r in done),
            "total_log_files": sum(len(r.files) for r in done),
            "total_size_bytes": size,
            "total_size_mb": size / 1024**2,
        },
    )
    return results
