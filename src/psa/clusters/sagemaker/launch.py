"""`sagemaker-launch`: the training jobs of a plan. The study's plan has one job per architecture x
mode; a sharded plan (psa.clusters.sagemaker.sharded) splits the grid into N jobs of whole architectures.

Each job runs the project's own code: the `psa` package is packed into a source archive (with a
requirements.txt of its dependencies and a short entry script), uploaded once under
`s3://<bucket>/<prefix>/source/<hash>/`, and handed to the region's PyTorch training image the way
the SageMaker Python SDK does it (`sagemaker_program`, `sagemaker_submit_directory`). The image
installs the requirements and runs the entry script with the hyperparameters as `--name value`.
MNIST reaches it as the `training` channel (psa.clusters.sagemaker.dataset); its results store is kept in the
checkpoint folder, synced with an S3 URI: the job's own for a cell, the shard's for a shard, so a
failed shard that is launched again goes on where it stopped.

Before launching, the latest job of every step is looked up: Completed, InProgress or Stopping
means the step is done or under way (skipped), Failed or Stopped means it is launched again.
Throttling and ResourceLimitExceeded are retried with a doubling wait; a job that still cannot be
created is reported, and the batch goes on."""

import gzip
import hashlib
import importlib.metadata
import io
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from botocore.exceptions import ClientError
from rich.progress import track
from rich.table import Table

from psa.clusters.sagemaker import files, layout
from psa.clusters.sagemaker.aws import THROTTLED, AwsConfig, Cloud, describe, error_code
from psa.clusters.sagemaker.sharded import Plan
from psa.errors import PSAError
from psa.sweeps.settings import RunSettings
from psa.trial.architecture import Architecture

SKIP = ("Completed", "InProgress", "Stopping")  # any other status (Failed, Stopped) or none: launch
RETRYABLE = THROTTLED | {"ResourceLimitExceeded"}
RETRIES = 4
ENTRY = "psa_entry.py"
ENTRY_SCRIPT = '''"""SageMaker's PyTorch image runs this file with the job's hyperparameters as --name value."""
from psa.engine.memory import openmp_environment

openmp_environment()  # before torch is imported
from psa.cli.cloud_job import main  # noqa: E402

main()
'''
# The AWS Deep Learning Containers account; a region it does not serve needs TRAINING_IMAGE.
IMAGE_ACCOUNT = "763104351884"
IMAGE_TAGS = {"gpu": "2.3.0-gpu-py311-cu121-ubuntu20.04-sagemaker", "cpu": "2.3.0-cpu-py311-ubuntu20.04-sagemaker"}


@dataclass
class Step:
    """One job of a plan: a cell of the study's plan, or a shard."""

    what: tuple[str, str]  # layout.group of its jobs: (architecture, mode) or (plan, "shard k/N")
    name: Callable[[str], str]  # its job's name for a timestamp
    arguments: dict[str, str]  # the job's own: arch and mode
    checkpoint: str | None  # S3 URI of its checkpoint folder; None: under the job's own folder
    previous: str | None = None  # latest existing job of this step
    status: str | None = None  # its status
    launch: bool = True
    job: str | None = None  # the job created
    outcome: str = ""
    error: str | None = None  # why it could not be created


def training_image(region: str, instance_type: str) -> str:
    kind = "gpu" if instance_type.split(".")[1][:1] in ("g", "p") else "cpu"
    return f"{IMAGE_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/pytorch-training:{IMAGE_TAGS[kind]}"


def _requirements() -> str:
    try:
        # Whatever the distribution is called that installed this package; a stale record of its
        # former name, `psa` (another project's on the index), loses to it.
        names = sorted(set(importlib.metadata.packages_distributions().get("psa", ())), key=lambda n: n == "psa")
        required = importlib.metadata.requires(names[0]) or []
    except (IndexError, importlib.metadata.PackageNotFoundError):
        raise PSAError("psa is not installed (pip install -e .): its dependency list is needed") from None
    return "".join(f"{r}\n" for r in required if "extra ==" not in r)


def source_archive() -> bytes:
    """The job's code as a gzipped tar, byte for byte the same for the same sources (fixed
    timestamps and order), so that its hash names it and an unchanged project is uploaded once."""
    package = Path(__file__).parents[2]  # src/psa
    members = {
        f"psa/{p.relative_to(package).as_posix()}": p.read_bytes()
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    members["requirements.txt"] = _requirements().encode()
    members[ENTRY] = ENTRY_SCRIPT.encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def cell_steps(archs: list[Architecture], modes: tuple[str, ...]) -> list[Step]:
    """The study's plan: a step per architecture x mode."""
    return [
        Step((str(arch), mode), partial(layout.cell_job_name, arch, mode), {"arch": str(arch), "modes": mode}, None)
        for arch in dict.fromkeys(archs)
        for mode in modes
    ]  # a repeated line must not launch a cell twice


def shard_steps(plan: Plan, bucket: str, prefix: str) -> list[Step]:
    """A step per shard of a sharded plan, each with its checkpoint folder."""
    n = len(plan.shards)
    return [
        Step(
            (f"plan {plan.id}", f"shard {k}/{n}"),
            partial(layout.shard_job_name, plan.id, k, n),
            {"arch": ",".join(archs), "modes": ",".join(plan.modes)},
            layout.uri(bucket, layout.shard_checkpoints(prefix, plan.id, k)),
        )
        for k, archs in enumerate(plan.shards, start=1)
    ]


def look_up(cloud: Cloud, steps: list[Step], force: bool) -> list[Step]:
    """Each step's latest job and its status, and whether to launch it."""
    latest: dict[tuple[str, str], dict] = {}
    for job in sorted(cloud.training_jobs("psa-"), key=lambda j: j["CreationTime"]):
        try:
            latest[layout.group(job["TrainingJobName"])] = job
        except PSAError:
            continue  # someone else's job whose name merely contains "psa-"
    for step in steps:
        job = latest.get(step.what)
        step.previous, step.status = job and job["TrainingJobName"], job and job["TrainingJobStatus"]
        step.launch = force or step.status not in SKIP
    return steps


def job_template(config: AwsConfig, run: RunSettings, source: str, data: str, instance_type: str | None = None) -> dict:
    """CreateTrainingJob's request less the job's name, arguments and checkpoints; it reads every
    setting, so a missing one stops the launch before anything is uploaded or created."""
    instance_type = instance_type or config.instance_type
    stopping = {"MaxRuntimeInSeconds": config.max_run_seconds}
    if config.use_spot:
        stopping["MaxWaitTimeInSeconds"] = config.max_wait_seconds
    return {
        "AlgorithmSpecification": {
            "TrainingImage": config.training_image or training_image(config.region, instance_type),
            "TrainingInputMode": "File",
        },
        "RoleArn": config.role_arn,
        "HyperParameters": {
            **run.job_arguments(),
            "sagemaker_program": ENTRY,
            "sagemaker_submit_directory": source,
            "sagemaker_region": config.region,
            "sagemaker_container_log_level": "20",
        },
        # SageMaker writes /opt/ml/model to <S3OutputPath>/<job>/output/model.tar.gz.
        "OutputDataConfig": {"S3OutputPath": layout.uri(config.bucket, config.prefix)},
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": data,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": config.use_spot,
    }


def job_request(template: dict, name: str, step: Step, bucket: str, prefix: str) -> dict:
    checkpoint = step.checkpoint or layout.uri(bucket, layout.job_checkpoints(prefix, name))
    return {
        **template,
        "TrainingJobName": name,
        "HyperParameters": {**template["HyperParameters"], **step.arguments},
        "CheckpointConfig": {"S3Uri": checkpoint, "LocalPath": layout.CHECKPOINTS},
    }


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


def launch(
    cloud: Cloud,
    config: AwsConfig,
    steps: list[Step],
    run: RunSettings,
    jobs_file: Path,
    retry_wait: float,
    instance_type: str | None = None,
    data_dir=None,
) -> None:
    """Create the job of every step marked `launch`, recording each outcome in its step, and add
    the names created to `jobs_file`."""
    todo = [step for step in steps if step.launch]
    if not todo:
        return
    from psa.clusters.sagemaker import dataset  # reads MNIST: torch comes in only when launching

    archive = source_archive()
    key = layout.source_key(config.prefix, hashlib.sha256(archive).hexdigest()[:16])
    data = layout.uri(config.bucket, layout.mnist_folder(config.prefix)) + "/"
    template = job_template(config, run, layout.uri(config.bucket, key), data, instance_type)
    if not cloud.exists(config.bucket, key):
        cloud.write(config.bucket, key, archive)
    dataset.upload_mnist(cloud, config.bucket, config.prefix, data_dir)
    created = []
    for step in track(todo, description="Launching jobs"):
        try:
            name = step.name(layout.timestamp())
            create(cloud, job_request(template, name, step, config.bucket, config.prefix), retry_wait)
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
    for column in ("Job of", "", "Latest job", "Status", "Action", "New job"):
        out.add_column(column)
    for step in steps:
        action = step.outcome or ("launch" if step.launch else "skip")
        out.add_row(
            *step.what,
            step.previous or "-",
            step.status or "-",
            action,
            step.job or "-",
            style="red" if step.error else "",
        )
    return out
