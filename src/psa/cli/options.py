"""Command-line arguments that several commands share, each written once, and the typed values
they become: a run's settings (psa.sweeps.settings.RunSettings), how a sweep uses this machine
(psa.sweeps.sweep.Machine), the store filters of the readers, the hyperparameters (from Hyper's own
defaults), device, threads, MNIST folder, model family, TensorBoard folder and the architectures.
Every number is checked as it is parsed, so a bad one is a one-line error before anything runs or
is written."""

import argparse
import math
import re
from dataclasses import fields
from pathlib import Path

from psa.errors import PSAError
from psa.published import CONFIGURATIONS, PUBLISHED
from psa.trial.architecture import FAMILIES, parse_list, read_configurations
from psa.trial.modes import parse_modes
from psa.trial.spec import SEED, SEEDINGS, Hyper


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
            if math.isinf(high):
                bounds = f"{'>' if low_open else '>='} {low:g}"
            else:
                bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"must be a finite number {bounds}, not {text}")
        return value

    return parse


SEED_MAX = 2**63 - 1  # every seed, of every command: what the store's INTEGER holds


def seed(text: str) -> int:
    """An argparse type: a seed, a whole number in [0, 2^63 - 1]."""
    value = whole(0)(text)
    if value > SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be at most 2^63 - 1 = {SEED_MAX}, not {value}")
    return value


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


def alias(parser, *flags: str, dest: str, **kwargs) -> None:
    """Other spellings of a flag (the original study's scripts', or psa's earlier ones): accepted,
    never shown, so each idea has one public name (tests/test_flags.py)."""
    parser.add_argument(*flags, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


# ------------------------------------------------------------------------------ architectures


def configurations(text: str) -> Path:
    """An argparse type: a configurations file, or 'published' for the published study's."""
    return CONFIGURATIONS if text == PUBLISHED else Path(text)


def add_configs(parser, default: Path | None, use: str, default_text: str) -> None:
    """--configs, one meaning everywhere: a list of architectures in order, as a file of one L*W a
    line or 'published'; `use` says what the command does with it."""
    parser.add_argument(
        "--configs",
        type=configurations,
        default=default,
        metavar="FILE",
        help=f"architectures, one L*W per line, or '{PUBLISHED}' for the published study's 98: {use} "
        f"(default: {default_text})",
    )
    alias(parser, "--config-file", "--order", dest="configs", type=configurations)


def config_archs(args) -> list[str] | None:
    """The architectures of --configs as 'L*W' keys, in order; None where it was not given."""
    return None if args.configs is None else [str(a) for a in dict.fromkeys(read_configurations(args.configs))]


# ------------------------------------------------------------------------------ a run's settings


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


def add_family(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", dest="family", default=FAMILIES[0], choices=FAMILIES, help=f"model family (default: {FAMILIES[0]})"
    )
    alias(parser, "--family", dest="family", choices=FAMILIES)


def add_run(parser, trials: int, meta_loops: int, archs_required: bool = False, archs_default: str | None = None):
    """The arguments of a run (RunSettings), with these defaults for its length."""
    archs = parser.add_mutually_exclusive_group(required=archs_required)
    archs.add_argument("--arch", default=None, help='architectures, e.g. "1*16,2*8" (or "[4*4, 2*8];[1*8]")')
    add_configs(archs, None, "the grid's", archs_default or f"'{PUBLISHED}'")
    parser.add_argument("--modes", default="all", help="comma-separated modes (default: all six)")
    alias(parser, "--mode", dest="modes")  # the cloud job's former spelling
    parser.add_argument("--trials", type=whole(1), default=trials, help=f"trials per cell (default: {trials})")
    parser.add_argument(
        "--meta-loops", type=whole(1), default=meta_loops, help=f"meta-loops per trial (default: {meta_loops})"
    )
    add_family(parser)
    parser.add_argument(
        "--seed", type=seed, default=SEED, help=f"base seed; trial seeds derive from it (default: {SEED})"
    )
    parser.add_argument(
        "--seeding",
        choices=SEEDINGS,
        default=SEEDINGS[0],
        help="independent: every architecture, mode and trial its own seed, as in the study; "
        "paired: trial k of every mode shares its seed (docs/DESIGN.md section 5)",
    )
    add_hyper(parser)


def run_settings(args: argparse.Namespace, default_archs: str | None = None):
    """The RunSettings of add_run's flags; without --arch or --configs, `default_archs` (an --arch
    value) or the published study's architectures."""
    from psa.sweeps.settings import RunSettings

    if args.arch is not None:
        archs = parse_list(args.arch)
        if not archs:
            raise PSAError(f"--arch {args.arch!r}: no architectures given")
    elif args.configs is None and default_archs:
        archs = parse_list(default_archs)
    else:
        archs = read_configurations(args.configs or CONFIGURATIONS)
    modes = parse_modes(args.modes)
    return RunSettings(
        tuple(archs), modes, args.trials, args.meta_loops, args.family, args.seed, args.seeding, hyper(args)
    )


def add_filters(group) -> None:
    """Which trials of a store, where it holds several settings (COMPARABLE's flags, no default)."""
    group.add_argument("--seeding", choices=SEEDINGS, default=None)
    group.add_argument("--seed", type=seed, default=None, help="base seed of the sweep")
    group.add_argument("--meta-loops", type=whole(1), default=None)
    add_hyper(group, defaults=False)


def filters(args: argparse.Namespace) -> dict:
    """The store columns the filters of add_filters ask for (None: any)."""
    from psa.sweeps.settings import COMPARABLE

    return {column: getattr(args, flag.removeprefix("--").replace("-", "_")) for column, flag in COMPARABLE.items()}


# ------------------------------------------------------------------------------ this machine


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


def add_data_dir(parser: argparse.ArgumentParser, default: Path | None = None, default_text: str | None = None) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        help=f"folder with the four MNIST IDX files (default: {default_text or '$PSA_DATA_DIR, else the user cache'})",
    )


def add_tensorboard(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each trial's accuracy and loss curves for TensorBoard under DIR "
        "(needs the tensorboard package: pip install tensorboard)",
    )


def add_machine(parser, checkpoint_help: str | None = None) -> None:
    """How a sweep uses this machine (Machine): device, threads, data, memory, packing, commits."""
    from psa.sweeps.settings import CHECKPOINT_EVERY

    add_device(parser)
    add_threads(parser)
    add_data_dir(parser)
    add_tensorboard(parser)
    parser.add_argument(
        "--max-memory",
        type=POSITIVE,
        default=None,
        help="GiB one stack of trials may use (default: 2 on CPU, 60%% of free GPU memory)",
    )
    parser.add_argument(
        "--pack",
        type=whole(1),
        default=None,
        help="stacks of small architectures trained side by side (default: 8 on a GPU, 1 elsewhere)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=NON_NEGATIVE,
        default=CHECKPOINT_EVERY,
        help=checkpoint_help
        or f"seconds between commits of a stack's progress to the store; 0: after every meta-loop "
        f"(default: {CHECKPOINT_EVERY:g})",
    )


def machine(args: argparse.Namespace, **changes):
    """The Machine of add_machine's flags (with `changes` on top)."""
    from psa.sweeps.settings import Machine

    values = {f.name: getattr(args, f.name) for f in fields(Machine) if hasattr(args, f.name)}
    return Machine(**(values | changes))


def add_out_dir(parser: argparse.ArgumentParser, default: Path = Path("results")) -> None:
    parser.add_argument("--out", type=Path, default=default, help=f"output folder (default: {default})")
    alias(parser, "--output-dir", dest="out", type=Path)
