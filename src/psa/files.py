"""Reading and writing files safely: every file psa writes appears whole or not at all, and every
text file it reads is either good UTF-8 or a clear error that names it."""

import json
import os
from pathlib import Path

from psa.errors import PSAError


def cache_dir(name: str) -> Path:
    """psa's folder `name` under the user's cache (XDG_CACHE_HOME, else ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "psa" / name


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


def existing_file(path: Path | str, what: str = "file") -> Path:
    """`path`, checked to be a file that exists: a folder or a missing file is a PSAError naming it."""
    path = Path(path)
    if path.is_dir():
        raise PSAError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise PSAError(f"{what} not found: {path}")
    return path


def output_folder(path: Path | str, flag: str) -> Path:
    """`path` as a folder to write into: an existing file there, or a file in place of a folder
    above it, is a PSAError (checked before anything is written)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PSAError(f"{flag} {path} is a file; give a folder")
    _parents_are_folders(path, flag)
    return path


def output_file(path: Path | str, flag: str) -> Path:
    """`path` as a file to write: an existing folder there, or a file in place of its folder, is
    a PSAError (checked before anything is written)."""
    path = Path(path)
    if path.is_dir():
        raise PSAError(f"{flag} {path} is a folder; give a file name")
    _parents_are_folders(path, flag)
    return path


def _parents_are_folders(path: Path, flag: str) -> None:
    """The nearest existing folder above `path` is one, not a file."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PSAError(f"{flag} {path}: {parent} is a file, not a folder")
            return


SQLITE = b"SQLite format 3\x00"  # the first bytes of every SQLite database


def read_text(path: Path | str, what: str = "file") -> str:
    """The UTF-8 text of `path`; a missing or undecodable file is a PSAError naming it."""
    path = existing_file(path, what)
    try:
        with open(path, "rb") as handle:
            if handle.read(len(SQLITE)) == SQLITE:
                raise PSAError(
                    f"{what} {path} is an SQLite database, not a text file: give a results store with --store"
                )
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PSAError(f"{what} {path} is not UTF-8 text (byte {error.start}: {error.reason})") from None
    except OSError as error:
        raise PSAError(f"{what} {path} cannot be read ({error.strerror})") from None
