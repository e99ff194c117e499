"""Reading and writing files safely: every file psa writes appears whole or not at all, and every
text file it reads is either good UTF-8 or a clear error that names it."""

import json
import os
from pathlib import Path

from psa import PSAError


def write_atomic(path: Path | str, write) -> Path:
    """Call write(temporary path) and move the result onto `path`, so readers never see half a
    file. The temporary name sits in the same folder (os.replace cannot cross file systems)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: Path | str, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path | str, data) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def read_text(path: Path | str, what: str = "file") -> str:
    """The UTF-8 text of `path`; a missing or undecodable file is a PSAError naming it."""
    path = Path(path)
    if not path.is_file():
        raise PSAError(f"{what} not found: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PSAError(f"{what} {path} is not UTF-8 text (byte {error.start}: {error.reason})") from None
    except OSError as error:
        raise PSAError(f"{what} {path} cannot be read ({error.strerror})") from None
