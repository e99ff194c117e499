"""The local files the cloud tools share: the list of requested jobs and the JSON reports."""

import json
from pathlib import Path

from psa import PSAError
from psa.results import write_text_atomic

DEFAULT_JOBS_FILE = Path("aws/sagemaker/requested-jobs.txt")


def read_jobs_file(path: Path | str) -> list[str]:
    """Job names, one a line, unchecked: each tool checks and reports bad ones job by job."""
    path = Path(path)
    if not path.is_file():
        raise PSAError(f"jobs file not found: {path}; rebuild it with `reconstruct-jobs` or pass --jobs-file")
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def write_jobs_file(path: Path | str, names: list[str]) -> None:
    write_text_atomic(path, "".join(f"{name}\n" for name in names))


def write_json(path: Path | str, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
