"""`sagemaker-launch`: one SageMaker training job per architecture x mode.

Each job runs the project's own code: the `psa` package is packed into a source archive (with a
requirements.txt of its dependencies and a short entry script), uploaded once under
`s3://<bucket>/<prefix>/source/<hash>/`, and handed to the region's PyTorch training image the way
the SageMaker Python SDK does it (`sagemaker_program`, `sagemaker_submit_directory`). The image
installs the requirements and runs the entry script with the hyperparameters as `--name value`.

Before launching, the latest job of every cell is looked up: Completed, InProgress or Stopping
means the cell is done or under way (skipped), Failed or Stopped means it is launched again.
Throttling and ResourceLimitExceeded are retried with a doubling wait; a job that still cannot be
created is reported, and the batch goes on."""

import gzip
import hashlib
import importlib.metadata
import io
import tarfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

from botocore.exceptions import ClientError
from rich.progress import track
from rich.table import Table

import psa
from psa import PSAError
from psa.architecture import Architecture
from psa.cloud import files, names
from psa.cloud.client import THROTTLED, Cloud, describe, error_code
from psa.cloud.settings import Settings
from psa.trial import Hyper

SKIP = ("Completed", "InProgress", "Stopping")  # any other status (Failed, Stopped) or none: launch
RETRYABLE = THROTTLED | {"ResourceLimitExceeded"}
RETRIES = 4
ENTRY = "psa_entry.py"
ENTRY_SCRIPT = '''"""SageMaker's PyTorch image runs this file with the job's hyperparameters as --name value."""
from psa.cloud.job import main

main()
'''
# The AWS Deep Learning Containers account; a region it does not serve needs TRAINING_IMAGE.
IMAGE_ACCOUNT = "763104351884"
IMAGE_TAGS = {"gpu": "2.3.0-gpu-py311-cu121-ubuntu20.04-sagemaker", "cpu": "2.3.0-cpu-py311-ubuntu20.04-sagemaker"}


@dataclass
class Step:
    arch: Architecture
    mode: str
    previous: str | None  # latest existing job of this cell
    status: str | None  # its status
    launch: bool
    job: str | None = None  # the job created
    outcome: str = ""
    error: str | None = None  # why it could not be created


@dataclass(frozen=True)
class Run:
    """What every job of a batch runs: the arguments of `psa cloud job` but its cell."""

    trials: int = 10
    meta_loops: int = 100
    seed: int = 0
    seeding: str = "independent"
    hyper: Hyper = Hyper()

    def arguments(self) -> dict[str, str]:
        """As SageMaker hyperparameters: the job's `--name value` pairs."""
        values = {"trials": self.trials, "meta-loops": self.meta_loops, "seed": self.seed, "seeding": self.seeding,
                  **{f.name.replace("_", "-"): getattr(self.hyper, f.name) for f in fields(Hyper)}}
        return {name: str(value) for name, value in values.items()}


def training_image(region: str, instance_type: str) -> str:
    kind = "gpu" if instance_type.split(".")[1][:1] in ("g", "p") else "cpu"
    return f"{IMAGE_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/pytorch-training:{IMAGE_TAGS[kind]}"


def _requirements() -> str:
    try:
        required = importlib.metadata.requires("psa") or []
    except importlib.metadata.PackageNotFoundError:
        raise PSAError("the psa package is not installed (pip install -e .): its dependency list is needed") from None
    return "".join(f"{r}\n" for r in required if "extra ==" not in r)


def source_archive() -> bytes:
    """The job's code as a gzipped tar, byte for byte the same for the same sources (fixed
    timestamps and order), so that its hash names it and an unchanged project is uploaded once."""
    package = Path(psa.__file__).parent
    members = {f"psa/{p.relative_to(package).as_posix()}": p.read_bytes() for p in package.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    members["requirements.txt"] = _requirements().encode()
    members[ENTRY] = ENTRY_SCRIPT.encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def plan(cloud: Cloud, archs: list[Architecture], modes: tuple[str, ...], force: bool) -> list[Step]:
    """One step per cell, with the status of the cell's latest job and whether to launch."""
    latest: dict[tuple[str, str], dict] = {}
    for job in sorted(cloud.training_jobs("psa-"), key=lambda j: j["CreationTime"]):
        try:
            latest[names.cell(job["TrainingJobName"])] = job
        except PSAError:
            continue  # someone else's job whose name merely contains "psa-"
    steps = []
    for arch in dict.fromkeys(archs):  # a repeated line must not launch a cell twice
        for mode in modes:
            job = latest.get((str(arch), mode))
            status = job["TrainingJobStatus"] if job else None
            launch = force or status not in SKIP
            steps.append(Step(arch, mode, job and job["TrainingJobName"], status, launch))
    return steps


def job_template(settings: Settings, run: Run, source: str) -> dict:
    """CreateTrainingJob's request less the job's name and cell; it reads every setting, so a
    missing one stops the launch before anything is uploaded or created."""
    stopping = {"MaxRuntimeInSeconds": settings.max_run_seconds}
    if settings.use_spot:
        stopping["MaxWaitTimeInSeconds"] = settings.max_wait_seconds
    return {
        "AlgorithmSpecification": {
            "TrainingImage": settings.training_image or training_image(settings.region, settings.instance_type),
            "TrainingInputMode": "File",
        },
        "RoleArn": settings.role_arn,
        "HyperParameters": {
            **run.arguments(),
            "sagemaker_program": ENTRY, "sagemaker_submit_directory": source,
            "sagemaker_region": settings.region, "sagemaker_container_log_level": "20",
        },
        # SageMaker writes /opt/ml/model to <S3OutputPath>/<job>/output/model.tar.gz.
        "OutputDataConfig": {"S3OutputPath": f"s3://{settings.bucket}/{settings.prefix}"},
        "ResourceConfig": {"InstanceType": settings.instance_type, "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": settings.use_spot,
    }


def job_request(template: dict, name: str, arch: Architecture, mode: str) -> dict:
    hyper = {**template["HyperParameters"], "arch": str(arch), "mode": mode}
    return {**template, "TrainingJobName": name, "HyperParameters": hyper}


def create(cloud: Cloud, request: dict, retry_wait: float) -> None:
    for attempt in range(RETRIES + 1):
        try:
            cloud.create_job(request)
            return
        except ClientError as error:
            if attempt and error_code(error) == "ResourceInUse":
                return  # an earlier attempt went through after all
            if attempt == RETRIES or error_code(error) not in RETRYABLE:
                raise
            time.sleep(retry_wait * 2**attempt)


def launch(cloud: Cloud, settings: Settings, steps: list[Step], run: Run, jobs_file: Path, retry_wait: float) -> None:
    """Create the job of every step marked `launch`, recording each outcome in its step, and add
    the names created to `jobs_file`."""
    todo = [step for step in steps if step.launch]
    if not todo:
        return
    archive = source_archive()
    key = f"{settings.prefix}/source/{hashlib.sha256(archive).hexdigest()[:16]}/sourcedir.tar.gz"
    template = job_template(settings, run, f"s3://{settings.bucket}/{key}")
    if not cloud.exists(settings.bucket, key):
        cloud.write(settings.bucket, key, archive)
    created = []
    for step in track(todo, description="Launching jobs"):
        try:
            name = names.job_name(step.arch, step.mode, names.timestamp())
            create(cloud, job_request(template, name, step.arch, step.mode), retry_wait)
        except (ClientError, PSAError) as error:
            step.outcome, step.error = "not launched", describe(error)
            continue
        step.job, step.outcome = name, "launched"
        created.append(name)
    if created:
        existing = files.read_jobs_file(jobs_file) if Path(jobs_file).is_file() else []
        files.write_jobs_file(jobs_file, list(dict.fromkeys(existing + created)))


def table(steps: list[Step], title: str) -> Table:
    out = Table(title=title)
    for column in ("Architecture", "Mode", "Latest job", "Status", "Action", "New job"):
        out.add_column(column)
    for step in steps:
        action = step.outcome or ("launch" if step.launch else "skip")
        style = "red" if step.error else ""
        out.add_row(str(step.arch), step.mode, step.previous or "-", step.status or "-", action, step.job or "-",
                    style=style)
    return out
