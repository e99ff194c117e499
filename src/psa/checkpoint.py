"""The LKG checkpoint of `psa train`: the LKG weights in safetensors with the trial's metadata
(JSON in the safetensors header), written atomically so an interrupted write never leaves a
damaged file behind."""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from psa import PSAError
from psa.results import write_atomic

FORMAT = "psa-checkpoint-1"


def default_path(model_dir: Path | str, family: str) -> Path:
    return Path(model_dir) / f"psa_{family}_lkg.safetensors"


def save(path: Path, state_dict: dict[str, torch.Tensor], meta: dict) -> None:
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}
    metadata = {"psa": json.dumps({"format": FORMAT, **meta})}
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and metadata; any damage is a PSAError that says how to start over."""
    advice = f"delete it (psa clean {path}) to start a new trial, or restore a good copy"
    try:
        tensors = load_file(path)
        with open(path, "rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_size))
        meta = json.loads(header["__metadata__"]["psa"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as error:
        raise PSAError(f"checkpoint {path} is damaged ({error}); {advice}") from None
    if meta.get("format") != FORMAT:
        raise PSAError(f"checkpoint {path} is not a psa checkpoint ({meta.get('format')!r}); {advice}")
    return tensors, meta


def clean(args) -> None:
    from rich.console import Console

    console = Console()
    if args.files:
        targets = [Path(f) for f in args.files]
        missing = [str(t) for t in targets if not t.is_file()]
        if missing:
            raise PSAError(f"no such checkpoint: {', '.join(missing)}")
    elif args.all:
        targets = sorted(Path(args.model_dir).glob("*.safetensors"))
    else:
        targets = [t for t in (default_path(args.model_dir, args.model),) if t.is_file()]
    for target in targets:
        target.unlink()
        console.print(f"removed {target}")
    if not targets:
        console.print(f"no checkpoints to remove in {args.model_dir}")


def configure(parser) -> None:
    parser.add_argument("files", nargs="*", help="checkpoint files to delete")
    parser.add_argument("--all", action="store_true", help="delete every checkpoint in --model-dir")
    parser.add_argument("--model-dir", default="models", help="where checkpoints live (default: models/)")
    parser.add_argument("--model", default="simplemlp", choices=("simplemlp", "resmlp"),
                        help="whose default checkpoint to delete (default: simplemlp)")
    parser.set_defaults(func=clean)
