"""A set of the study's outputs (an export's tables and CSVs, a report's LaTeX files and figures)
written into a folder as a whole: first into a staging folder beside it, then moved in file by
file. A failure on the way (a full disk) leaves the folder as it was, with no half-written set.

The folder's manifest.json lists the manifests of the runs that made the results, the files psa
wrote there and the study each belongs to (a hash of its trials tables): files an earlier set of
another study left behind are removed, so a folder never mixes two studies, while outputs of the
same study that this set does not rewrite stay. A file psa did not list is never touched."""

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from psa.errors import PSAError
from psa.files import output_folder, write_json

MANIFEST = "manifest.json"


def study_of(folders: list[Path]) -> str:
    """The study the trials tables (psa_<family>_trials.md) found first in `folders` hold."""
    tables = {}
    for folder in reversed(folders):
        tables |= {path.name: path.read_bytes() for path in sorted(folder.glob("psa_*_trials.md"))}
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(name.encode() + b"\0" + tables[name])
    return digest.hexdigest()[:16]


def read_manifest(out: Path) -> dict:
    try:
        manifest = json.loads((out / MANIFEST).read_text())
        return manifest if isinstance(manifest.get("files"), dict) else {"files": {}}
    except (OSError, ValueError, AttributeError):
        return {"files": {}}


def write_set(
    out: Path | str, make: Callable[[Path], list[Path]], runs: list[dict] | None = None, flag: str = "--out"
) -> list[Path]:
    """Call make(staging), which writes the set into the staging folder and returns the paths it
    wrote, and move the set into `out`; returns the paths there. The manifest is updated last, with
    `runs`, the manifests of the runs that made the results (psa.sweeps.manifest), where given."""
    out = output_folder(out, flag)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))  # beside: one file system
    except OSError as error:
        raise PSAError(f"{flag} {out}: cannot write there ({error.strerror})") from None
    try:
        written = make(staging)
        study = study_of([staging, out])
        out.mkdir(exist_ok=True)
        names = [path.relative_to(staging).as_posix() for path in written]
        for name in names:
            os.replace(staging / name, out / name)
    except OSError as error:
        raise PSAError(
            f"{flag} {out}: {error.strerror or error} while writing {Path(error.filename or out).name}; "
            f"nothing was changed in {out}"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = read_manifest(out)
    try:
        for name, made_for in manifest["files"].items():
            if made_for != study and name not in names and (out / name).is_file():
                (out / name).unlink()  # psa's own output of another study
        kept = {name: made_for for name, made_for in manifest["files"].items() if made_for == study}
        manifest["files"] = kept | dict.fromkeys(names, study)
        if runs is not None:
            manifest["runs"] = runs
        write_json(out / MANIFEST, manifest)
    except OSError as error:
        raise PSAError(f"{flag} {out}: the outputs are written, but not {MANIFEST} ({error.strerror})") from None
    return [out / name for name in names]
