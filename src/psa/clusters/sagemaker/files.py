"""The list of requested jobs, the local file the cloud tools share."""

from pathlib import Path

from psa.errors import PSAError
from psa.files import read_text, write_text

DEFAULT_JOBS_FILE = Path("aws/sagemaker/requested-jobs.txt")


def read_jobs_file(path: Path | str) -> list[str]:
    """Job names, one a line, unchecked: each tool checks and reports bad ones job by job."""
    if not Path(path).is_file():
        raise PSAError(f"jobs file not found: {path}; rebuild it with `reconstruct-jobs` or pass --jobs-file")
    return [
        line.strip() for line in read_text(path, "jobs file").splitlines() if line.strip() and not line.startswith("#")
    ]


def write_jobs_file(path: Path | str, names: list[str]) -> None:
    write_text(path, "".join(f"{name}\n" for name in names))
