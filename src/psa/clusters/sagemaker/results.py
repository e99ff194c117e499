"""`sagemaker-results-parser` and `reconstruct-jobs`: what the jobs left in
`s3://<bucket>/<prefix>/<job>/output/model.tar.gz`, gathered into the study's summary and trials
tables, and the list of jobs rebuilt from the job folders.

The archive is read in memory: members are looked up by name and read, never extracted, so a
hostile or damaged archive cannot write anywhere. A cell whose job is missing, failed, or left a
corrupt or empty archive is reported and left empty in the tables; the other cells still count."""

import io
import json
import tarfile
import zlib

from botocore.exceptions import ClientError
from rich.progress import track

from psa.clusters.sagemaker import files, layout
from psa.clusters.sagemaker.aws import Cloud, describe, error_code
from psa.errors import PSAError
from psa.study.results import Trials
from psa.trial.modes import MODES


def job_names(cloud: Cloud, bucket: str, prefix: str) -> tuple[list[str], list[str]]:
    """The valid job names among the folders under the prefix, sorted, and a message for each
    folder that looks like a job but is not a valid name. Other folders (source/) are ignored."""
    valid, rejected = [], []
    for folder in cloud.folders(bucket, f"{prefix}/"):
        if not folder.startswith("psa-"):
            continue
        try:
            valid.append(layout.check(folder))
        except PSAError as error:
            rejected.append(str(error))
    return sorted(valid), rejected


def member(tar: tarfile.TarFile, name: str) -> bytes | None:
    for member in tar.getmembers():
        if member.isfile() and member.name.removeprefix("./") == name:
            return tar.extractfile(member).read()
    return None


def bounties(archive: bytes) -> list[float]:
    """The bounties a model.tar.gz holds: comprehensive_results.json, else results.txt. A
    ValueError says what is wrong with it."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            comprehensive, text = member(tar, "comprehensive_results.json"), member(tar, "results.txt")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise ValueError(f"corrupt model.tar.gz ({error})") from None
    if comprehensive is not None:
        try:
            values = [
                float(trial.get("bounty", trial.get("best_validation_accuracy"))) for trial in json.loads(comprehensive)
            ]
        except (ValueError, TypeError, AttributeError):
            values = None  # unreadable: fall back to results.txt
        if values:
            return values
    if text is not None:
        try:
            values = [float(line) for line in text.decode().split()]
        except ValueError:
            raise ValueError("results.txt holds something that is not a number") from None
        if values:
            return values
    raise ValueError("empty results: model.tar.gz holds no comprehensive_results.json or results.txt with trials")


def _missing_archive(cloud: Cloud, job: str) -> str:
    try:
        info = cloud.describe_job(job)
    except ClientError:
        return "no model.tar.gz, and SageMaker does not know the job"
    reason = f": {info['FailureReason']}" if info.get("FailureReason") else ""
    return f"no model.tar.gz (job {info.get('TrainingJobStatus', 'status unknown')}{reason})"


def job_bounties(cloud: Cloud, bucket: str, prefix: str, job: str) -> list[float]:
    try:
        archive = cloud.read(bucket, layout.artifact(prefix, job))
    except ClientError as error:
        if error_code(error) not in ("NoSuchKey", "404"):
            raise ValueError(describe(error)) from None
        raise ValueError(_missing_archive(cloud, job)) from None
    return bounties(archive)


def read_bounties(cloud: Cloud, bucket: str, prefix: str, archs: list[str] | None = None) -> tuple[Trials, list[str]]:
    """Bounties of the latest job of every cell, and a message for every cell without them.
    `archs` ("L*W", in table order) says which architectures are expected; by default, those
    with a job."""
    found, problems = job_names(cloud, bucket, prefix)
    latest = layout.latest_per_cell(found)
    archs = archs or list(dict.fromkeys(arch for arch, _ in latest))
    trials: Trials = {arch: {} for arch in archs}
    for arch, mode in track([(a, m) for a in archs for m in MODES], description="Reading results"):
        job = latest.get((arch, mode))
        trials[arch][mode] = []
        if job is None:
            problems.append(f"{arch} {mode}: no job found")
            continue
        try:
            trials[arch][mode] = job_bounties(cloud, bucket, prefix, job)
        except ValueError as error:
            problems.append(f"{arch} {mode} ({job}): {error}")
    return trials, problems


def reconstruct(cloud: Cloud, bucket: str, prefix: str, jobs_file) -> tuple[list[str], list[str]]:
    """Rewrite the jobs file from the job folders; returns the names and the rejected folders."""
    found, rejected = job_names(cloud, bucket, prefix)
    files.write_jobs_file(jobs_file, found)
    return found, rejected
