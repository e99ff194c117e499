"""Where everything of a cloud run lives (docs/DESIGN.md section 9): job names, every S3 key under
`s3://<bucket>/<prefix>/`, and the file and folder names inside a job.

    <prefix>/<job>/output/model.tar.gz          what a job leaves (SageMaker packs /opt/ml/model)
    <prefix>/<job>/checkpoints/psa.sqlite       a cell job's store, synced from /opt/ml/checkpoints
    <prefix>/checkpoints/<plan>/shard-<k>/      a shard's checkpoint folder (kept across relaunches)
    <prefix>/plans/<plan>.json                  a sharded plan as first launched
    <prefix>/source/<hash>/sourcedir.tar.gz     the code the jobs run
    <prefix>/data/mnist-<hash>/                 MNIST, the jobs' `training` channel

Job names: a cell's `psa-<L>x<W>-<mode>-<timestamp>` (the study's plan) and a shard's
`psa-shard-<plan>-<k>-of-<N>-<timestamp>`. A job name becomes an S3 folder and a local folder, so
nothing that does not pass `check` is ever used as a path or an S3 key."""

import hashlib
import re
from datetime import datetime, timezone

from psa.errors import PSAError
from psa.trial.architecture import Architecture
from psa.trial.data import SHA256
from psa.trial.modes import MODES

STORE = "psa.sqlite"  # a job's results store, in its checkpoint folder and its model artifact
CHECKPOINTS = "/opt/ml/checkpoints"  # SageMaker's default CheckpointConfig.LocalPath
ARTIFACT = "output/model.tar.gz"
# MNIST's folder is named by the files' content, so another copy of the data never mixes in.
MNIST_FOLDER = "mnist-" + hashlib.sha256("".join(SHA256[name] for name in sorted(SHA256)).encode()).hexdigest()[:16]

# SageMaker's own rule for training job names: letters, digits and single or repeated hyphens,
# at most 63 characters. It admits no '/', '.' or '_', which is what makes a valid name path-safe.
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_STAMP = r"(?P<stamp>\d{4}(?:-\d{2}){5}-\d{3})"
_PSA_NAME = re.compile(rf"^psa-(?P<arch>\d+x\d+(?:-\d+x\d+)*)-(?P<mode>{'|'.join(MODES)})-{_STAMP}$")
_SHARD_NAME = re.compile(rf"^psa-shard-(?P<plan>[0-9a-f]{{8}})-(?P<k>\d+)-of-(?P<n>\d+)-{_STAMP}$")


def timestamp(now: datetime | None = None) -> str:
    """2025-08-11-19-46-41-617: UTC to the millisecond, as the published job names have it."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%d-%H-%M-%S-") + f"{now.microsecond // 1000:03d}"


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def artifact(prefix: str, job: str) -> str:
    return f"{prefix}/{job}/{ARTIFACT}"


def job_checkpoints(prefix: str, job: str) -> str:
    return f"{prefix}/{job}/checkpoints"


def shard_checkpoints(prefix: str, plan: str, k: int) -> str:
    return f"{prefix}/checkpoints/{plan}/shard-{k}"


def plans(prefix: str) -> str:
    return f"{prefix}/plans/"


def plan_key(prefix: str, plan: str) -> str:
    return f"{plans(prefix)}{plan}.json"


def source_key(prefix: str, digest: str) -> str:
    return f"{prefix}/source/{digest}/sourcedir.tar.gz"


def mnist_folder(prefix: str) -> str:
    return f"{prefix}/data/{MNIST_FOLDER}"


def cell_job_name(arch: Architecture, mode: str, stamp: str) -> str:
    # Multi-segment architectures join with '-' because SageMaker names admit no '_'.
    return check(f"psa-{arch.job_token.replace('_', '-')}-{mode}-{stamp}")


def shard_job_name(plan: str, k: int, shards: int, stamp: str) -> str:
    return check(f"psa-shard-{plan}-{k}-of-{shards}-{stamp}")


def check(name: str) -> str:
    """`name` if it is a well-formed PSA job name, else a PSAError saying why."""
    if not _SAGEMAKER_NAME.match(name):
        raise PSAError(f"invalid job name {name!r}: SageMaker names are 1-63 letters, digits and hyphens")
    if not (_PSA_NAME.match(name) or _SHARD_NAME.match(name)):
        raise PSAError(
            f"invalid job name {name!r}: expected psa-<L>x<W>-<mode>-<YYYY-MM-DD-HH-MM-SS-mmm> "
            f"or psa-shard-<plan>-<k>-of-<N>-<YYYY-MM-DD-HH-MM-SS-mmm>"
        )
    return name


def cell(name: str) -> tuple[str, str]:
    """(architecture "L*W", mode) of a cell's job name."""
    match = _PSA_NAME.match(check(name))
    if not match:
        raise PSAError(f"{name} is a shard's job, not one cell's")
    return str(Architecture.parse(match["arch"].replace("-", ","))), match["mode"]


def shard(name: str) -> tuple[str, int, int] | None:
    """(plan, k, N) of a shard's job name; None for a cell's."""
    match = _SHARD_NAME.match(check(name))
    return (match["plan"], int(match["k"]), int(match["n"])) if match else None


def group(name: str) -> tuple[str, str]:
    """What a job trained, for reports: a cell's (architecture, mode), a shard's (plan, "k/N")."""
    found = shard(name)
    return (f"plan {found[0]}", f"shard {found[1]}/{found[2]}") if found else cell(name)


def stamp(name: str) -> str:
    return (_PSA_NAME.match(check(name)) or _SHARD_NAME.match(name))["stamp"]


def latest_per_cell(names: list[str]) -> dict[tuple[str, str], str]:
    """The newest job of each (architecture, mode) by the timestamp in its name; shards' jobs,
    which hold many cells, are left out."""
    latest: dict[tuple[str, str], str] = {}
    for name in sorted((n for n in names if shard(n) is None), key=stamp):
        latest[cell(name)] = name
    return latest
