"""Job names: `psa-<L>x<W>-<mode>-<timestamp>` (docs/DESIGN.md section 7), made, checked and read back.
A job name becomes an S3 folder and a local folder, so nothing that does not pass `check` is ever
used as a path or an S3 key."""

import re
from datetime import datetime, timezone

from psa import PSAError
from psa.architecture import Architecture
from psa.modes import MODES

# SageMaker's own rule for training job names: letters, digits and single or repeated hyphens,
# at most 63 characters. It admits no '/', '.' or '_', which is what makes a valid name path-safe.
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PSA_NAME = re.compile(
    rf"^psa-(?P<arch>\d+x\d+(?:-\d+x\d+)*)-(?P<mode>{'|'.join(MODES)})-(?P<stamp>\d{{4}}(?:-\d{{2}}){{5}}-\d{{3}})$"
)


def timestamp(now: datetime | None = None) -> str:
    """2025-08-11-19-46-41-617: UTC to the millisecond, as the published job names have it."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%d-%H-%M-%S-") + f"{now.microsecond // 1000:03d}"


def job_name(arch: Architecture, mode: str, stamp: str) -> str:
    # Multi-segment architectures join with '-' because SageMaker names admit no '_'.
    return check(f"psa-{arch.job_token.replace('_', '-')}-{mode}-{stamp}")


def check(name: str) -> str:
    """`name` if it is a well-formed PSA job name, else a PSAError saying why."""
    if not _SAGEMAKER_NAME.match(name):
        raise PSAError(f"invalid job name {name!r}: SageMaker names are 1-63 letters, digits and hyphens")
    if not _PSA_NAME.match(name):
        raise PSAError(f"invalid job name {name!r}: expected psa-<L>x<W>-<mode>-<YYYY-MM-DD-HH-MM-SS-mmm>")
    return name


def cell(name: str) -> tuple[str, str]:
    """(architecture "L*W", mode) of a valid job name."""
    match = _PSA_NAME.match(check(name))
    return str(Architecture.parse(match["arch"].replace("-", ","))), match["mode"]


def latest_per_cell(names: list[str]) -> dict[tuple[str, str], str]:
    """The newest job of each (architecture, mode) by the timestamp in its name."""
    latest: dict[tuple[str, str], str] = {}
    for name in sorted(names, key=lambda n: _PSA_NAME.match(check(n))["stamp"]):
        latest[cell(name)] = name
    return latest

