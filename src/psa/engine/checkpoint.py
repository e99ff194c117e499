"""The LKG checkpoint of `psa train`: the LKG weights in safetensors, with the trial's metadata and
a SHA-256 of the tensors in the safetensors header, written atomically. A file whose tensors do
not match their checksum is refused as damaged, never trained on. `psa clean` deletes only files
whose header says psa wrote them, and only inside the model folder."""

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from psa.errors import PSAError
from psa.files import write_atomic
from psa.progress import make_console
from psa.trial.architecture import FAMILIES

FORMAT = "psa-checkpoint-2"  # -1 had no checksum; its files still load
READABLE = ("psa-checkpoint-1", FORMAT)
REQUIRED = {
    "family": str,
    "arch": str,
    "mode": str,
    "seed": int,
    "global_loop": int,
    "lkg_score": float,
    "bounty": float,
    "bounty_loop": int,
}


def default_path(model_dir: Path | str, family: str) -> Path:
    return Path(model_dir) / f"psa_{family}_lkg.safetensors"


def checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}:".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save(path: Path, state_dict: dict[str, torch.Tensor], meta: dict) -> None:
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}
    metadata = {"psa": json.dumps({"format": FORMAT, **meta, "sha256": checksum(tensors)})}
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def header(path: Path) -> dict | None:
    """The psa metadata in the file's safetensors header, or None if psa did not write it."""
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size < 100_000_000:
                return None
            meta = json.loads(json.loads(handle.read(size))["__metadata__"]["psa"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") in READABLE else None


def _is(value, kind: type) -> bool:
    """isinstance, where a float field may also hold an int (an edited 50 for 50.0), and a
    number field never a bool."""
    return not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else kind)


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and metadata; any damage is a PSAError that says how to start over."""
    advice = f"delete it (psa clean --model-dir {path.parent} {path}) to start a new trial, or restore a good copy"
    meta = header(path)
    if meta is None:
        raise PSAError(f"checkpoint {path} is damaged or not a psa checkpoint (no psa header); {advice}")
    wrong = [name for name, kind in REQUIRED.items() if not _is(meta.get(name), kind)]
    if wrong:
        raise PSAError(f"checkpoint {path} is damaged (metadata {', '.join(wrong)} missing or malformed); {advice}")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise PSAError(f"checkpoint {path} is damaged ({error}); {advice}") from None
    if "sha256" in meta and checksum(tensors) != meta["sha256"]:
        raise PSAError(f"checkpoint {path} is damaged (its weights do not match their checksum); {advice}")
    return tensors, meta


def clean(model_dir: Path | str, family: str, names: list[Path | str] | None = None, every: bool = False) -> None:
    """`psa clean`: delete psa checkpoints inside `model_dir`: the files `names`, else with `every`
    each psa checkpoint there, else the family's own. Unnamed, only a file whose header says psa
    wrote it is deleted; named, also one that bears psa's checkpoint name but whose header is damaged
    (what the error of such a checkpoint advises). Any other file, or one outside the folder, is
    never deleted: named ones are refused (a PSAError after the others are done)."""
    console = make_console()
    folder = Path(model_dir).resolve()
    if names:
        targets = [Path(f) for f in names]
    elif every:
        targets = sorted(Path(model_dir).glob("*.safetensors"))
    else:
        targets = [t for t in (default_path(model_dir, family),) if t.exists()]
    refused = []
    psa_names = {default_path("", family).name for family in FAMILIES}
    for target in targets:
        if not target.is_file():
            refused.append(f"{target}: no such file")
        elif target.resolve().parent != folder:
            refused.append(f"{target}: not in the model folder {model_dir} (see --model-dir)")
        elif header(target) is None and not (names and target.name in psa_names):
            if names:
                refused.append(f"{target}: not a psa checkpoint")
            else:  # only psa's own files were asked for
                console.print(
                    f"left {target} alone: not a readable psa checkpoint (if it is a damaged one of psa's, "
                    f"name it: psa clean --model-dir {model_dir} {target})"
                )
        else:
            target.unlink()
            console.print(f"removed {target}")
    if not targets:
        console.print(f"no checkpoints to remove in {model_dir}")
    if refused:
        raise PSAError("refused to delete " + "; ".join(refused))
