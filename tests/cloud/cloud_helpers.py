"""What the cloud tests share: the study's names and the ways to put things into moto."""

import contextlib
import io
import tarfile
import time
from pathlib import Path

import boto3
from moto.backends import get_backend

from psa.cli import main

ACCOUNT, REGION, BUCKET, PREFIX = "123456789012", "us-east-1", "psa-test-bucket", "psa-experiment"
SECRET = "fake-secret-that-must-never-be-printed"
GROUP = "/aws/sagemaker/TrainingJobs"
# Two real jobs of a tiny study: 1*4 in modes none and hidden, 2 trials x 2 meta-loops each.
JOBS = {"none": "psa-1x4-none-2025-08-11-19-46-41-617", "hidden": "psa-1x4-hidden-2025-08-11-19-46-43-001"}
TRIALS, LOOPS = 2, 2


def sagemaker_jobs() -> dict:
    """moto's training jobs (it runs in this process), to set what only a real run would:
    a status, a failure reason, billable seconds."""
    return get_backend("sagemaker")[ACCOUNT][REGION].training_jobs


def run_cli(*argv: str) -> int:
    """`psa ...` in this process; its exit status (0 when it returned)."""
    try:
        main(list(argv))
    except SystemExit as done:
        return done.code
    return 0


def model_archive(folder: Path) -> bytes:
    """model.tar.gz as SageMaker makes it: the model folder's files at the archive's root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def put_archive(job: str, archive: bytes) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{PREFIX}/{job}/output/model.tar.gz", Body=archive)


def put_logs(job: str, streams: dict[str, list[str]]) -> None:
    """CloudWatch streams `<job>/<name>` holding `lines`, one event each, in batches of 10,000."""
    logs = boto3.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=GROUP)
    for name, lines in streams.items():
        stream = f"{job}/{name}"
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        start = int(time.time() * 1000) - 3_600_000  # CloudWatch drops events over 14 days old
        events = [{"timestamp": start + i, "message": line} for i, line in enumerate(lines)]
        for start in range(0, len(events), 10_000):
            logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events[start : start + 10_000])
