"""`psa bench --estimate-sweep`: the full grid timed with the batched engine and the single-trial
reference, against the machine's GEMM peak (psa.bench)."""

import argparse
from pathlib import Path

from psa.cli import options
from psa.errors import PSAError
from psa.trial.spec import SEEDINGS


def bench(args) -> None:
    from psa.bench import Timing, estimate_sweep
    from psa.trial.architecture import parse_list, read_configurations

    archs = parse_list(args.arch) if args.arch is not None else read_configurations(args.configs)
    if not archs:
        raise PSAError(f"--arch {args.arch!r}: no architectures given")
    chosen = (parse_list(args.validate_arch) if args.validate_arch else archs[:1]) if args.validate else None
    timing = Timing(args.steps, args.val_samples, args.repeats, args.whole_loops)
    estimate_sweep(archs, options.machine(args), timing, args.seeding, chosen, args.json, args.verbose)


def configure(parser) -> None:
    parser.add_argument(
        "--estimate-sweep",
        action="store_true",
        required=True,
        help="estimate the full grid with the batched engine and the single-trial reference",
    )
    archs = parser.add_mutually_exclusive_group()
    options.add_configs(archs, options.CONFIGURATIONS, "the grid's", "'published'")
    archs.add_argument("--arch", default=None, help='only these architectures, e.g. "1*16,2048*1"')
    options.add_device(parser)
    options.add_threads(parser)
    parser.add_argument(
        "--steps",
        type=options.whole(1),
        default=6,
        help="training steps timed at least per architecture, more where a step is fast "
        "(default: 6; a GPU times whole meta-loops)",
    )
    parser.add_argument(
        "--val-samples",
        type=options.whole(1),
        default=2000,
        help="validation samples timed, scaled to the 10,000 of a real pass (default: 2000)",
    )
    parser.add_argument("--max-memory", type=options.POSITIVE, default=None, help="GiB per stack, as for psa sweep")
    parser.add_argument(
        "--pack", type=options.whole(1), default=None, help="small stacks side by side, as for psa sweep"
    )
    parser.add_argument(
        "--whole-loops",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time two complete meta-loops per group instead of a few steps "
        "(default: on a GPU only, where a loop takes a second or less)",
    )
    parser.add_argument(
        "--validate",
        action="store_true",
        help="also run one architecture's real sweep for two meta-loops and report the error",
    )
    parser.add_argument(
        "--validate-arch", default=None, help='architectures for --validate, e.g. "18*18,17*17" (default: the first)'
    )
    parser.add_argument(
        "--seeding",
        choices=SEEDINGS,
        default=SEEDINGS[0],
        help="the grid's seeding, as for psa sweep (paired trials share input batches)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write seconds per meta-loop of each architecture (60 trials) to this file",
    )
    options.add_data_dir(parser)
    parser.add_argument(
        "--repeats",
        type=options.whole(1),
        default=1,
        help="time each group this many times, each right after a GEMM peak measurement; the table "
        "gives the median and, after ±, half the spread (default: 1)",
    )
    parser.add_argument("--verbose", action="store_true", help="also each group's GFLOP/s and share of the GEMM peak")
    parser.set_defaults(func=bench)
