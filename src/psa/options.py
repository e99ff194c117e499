"""Command-line arguments that several commands share, each written once: the hyperparameters
(from Hyper's own defaults), device, threads, MNIST folder, model family, TensorBoard folder and
the analyses' configurations file. Every number is checked as it is parsed, so a bad one is a
one-line error before anything runs or is written."""

import argparse
import math
import re
from dataclasses import fields
from pathlib import Path

from psa.architecture import FAMILIES
from psa.published import CONFIGURATIONS
from psa.trial import Hyper


def whole(minimum: int = 1):
    """An argparse type: a whole number >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def number(low: float = -math.inf, high: float = math.inf, low_open: bool = False, high_open: bool = False):
    """An argparse type: a finite number in [low, high], each end open when asked."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if not math.isfinite(value) or below or above:
            bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"must be a finite number in {bounds}, not {text}")
        return value

    return parse


def device_name(text: str) -> str:
    """An argparse type: cpu, mps, cuda or cuda:N (one GPU of several)."""
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected cpu, mps, cuda or cuda:N, not {text!r}")
    return text


POSITIVE = number(0, low_open=True)
NON_NEGATIVE = number(0)
PERCENT = number(0, 100)
HYPER = {  # field of Hyper -> (type, help)
    "lr": (POSITIVE, "AdamW learning rate"),
    "batch_size": (whole(1), "training batch size"),
    "weight_decay": (NON_NEGATIVE, "AdamW weight decay, mode decay only"),
    "dropout": (number(0, 1, high_open=True), "dropout probability, mode dropout only"),
}


def add_hyper(parser, defaults: bool = True) -> None:
    """--lr, --batch-size, --weight-decay, --dropout with Hyper's defaults (or none: filters)."""
    for f in fields(Hyper):
        kind, text = HYPER[f.name]
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=kind,
            default=f.default if defaults else None,
            help=f"{text} (default: {f.default:g})" if defaults else text,
        )


def hyper(args: argparse.Namespace) -> Hyper:
    return Hyper(**{f.name: getattr(args, f.name) for f in fields(Hyper)})


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", type=device_name, default=None, help="cpu, mps, cuda or cuda:N (default: CUDA, else MPS, else CPU)"
    )


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=whole(1),
        default=None,
        help="CPU threads for torch (default: $PSA_THREADS, else the usable cores that other programs leave idle)",
    )


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the four MNIST IDX files (default: $PSA_DATA_DIR, else the user cache)",
    )


def alias(parser, *flags: str, dest: str, **kwargs) -> None:
    """Other spellings of a flag (the original study's scripts', or psa's earlier ones): accepted,
    never shown, so each idea has one public name (tests/test_flags.py)."""
    parser.add_argument(*flags, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def add_family(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", dest="family", default=FAMILIES[0], choices=FAMILIES, help=f"model family (default: {FAMILIES[0]})"
    )
    alias(parser, "--family", dest="family", choices=FAMILIES)


def add_out_dir(parser: argparse.ArgumentParser, default: Path = Path("results")) -> None:
    parser.add_argument("--out", type=Path, default=default, help=f"output folder (default: {default})")
    alias(parser, "--output-dir", dest="out", type=Path)


def configurations(text: str) -> Path:
    """An argparse type: a configurations file, or 'published' for the published study's."""
    return CONFIGURATIONS if text == "published" else Path(text)


def add_config_file(parser: argparse.ArgumentParser) -> None:
    """--configs of the analyses: they take the architectures that their trials table holds, and a
    configurations file only orders them (psa.regimes.architectures)."""
    parser.add_argument(
        "--configs",
        dest="config_file",
        type=configurations,
        metavar="FILE",
        help="architectures, one L*W per line, or 'published' for the published study's 98: the trials' "
        "architectures that it lists come first, in its order, and those it lists that the trials lack are named "
        "(default: the trials' architectures, by depth and width)",
    )
    alias(parser, "--config-file", dest="config_file", type=configurations)


def add_tensorboard(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each trial's accuracy and loss curves for TensorBoard under DIR (needs psa[tensorboard])",
    )
