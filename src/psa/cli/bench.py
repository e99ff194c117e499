"""`psa bench --estimate-sweep`: the full grid timed with the batched engine and the single-trial
reference, against the machine's GEMM peak (psa.bench)."""

import argparse
from pathlib import Path

from psa.cli import options
from psa.errors import PSAError
from psa.trial.spec import SEEDINGS


def bench(args) -> None:
    if args.under_load:
        return under_load(args)
    from psa.bench import Timing, estimate_sweep
    from psa.trial.architecture import parse_list, read_configurations

    archs = parse_list(args.arch) if args.arch is not None else read_configurations(args.configs)
    if not archs:
        raise PSAError(f"--arch {args.arch!r}: no architectures given")
    chosen = (parse_list(args.validate_arch) if args.validate_arch else archs[:1]) if args.validate else None
    timing = Timing(args.steps, args.val_samples, args.repeats, args.whole_loops)
    estimate_sweep(archs, options.machine(args), timing, args.seeding, chosen, args.json, args.verbose)


def under_load(args) -> None:
    from psa.bench.load import Setting, table, under_load
    from psa.cli.reproduce import QUICK_ARCHS
    from psa.progress import make_console

    sweep = ["--arch", args.arch or QUICK_ARCHS, "--trials", str(args.trials), "--meta-loops", str(args.meta_loops)]
    sweep += ["--device", "cpu", "--threads", str(args.threads or 2)] + (
        ["--data-dir", str(args.data_dir)] if args.data_dir else []
    )
    from psa.engine.memory import OPENMP

    own = OPENMP["GOMP_SPINCOUNT"]
    spins = [None if s == "default" else own if s == "psa" else s for s in args.spins.split(",")]
    settings = [Setting(count, engine == "fused") for engine in args.engines for count in spins]
    times = under_load(sweep, settings, args.hogs, args.delay, args.repeats)
    make_console().print(table(times, args.hogs))


def engine_list(text: str) -> list[str]:
    engines = [name.strip() for name in text.split(",")]
    unknown = [name for name in engines if name not in ("fused", "eager")]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown engine {unknown[0]!r}: expected fused or eager, e.g. fused,eager")
    return engines


def configure(parser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--estimate-sweep",
        action="store_true",
        help="estimate the full grid with the batched engine and the single-trial reference",
    )
    what.add_argument(
        "--under-load",
        action="store_true",
        help="time a sweep (default: the main job's architectures) quiet and beside CPU-bound programs that start "
        "after it, for each engine of --engines and OpenMP waiting setting of --spins",
    )
    load = parser.add_argument_group("--under-load")
    load.add_argument(
        "--spins",
        default="default,psa",
        help="GOMP_SPINCOUNT settings to compare, the first the baseline: numbers, 'default' (libgomp's) or 'psa' "
        "(psa's own, psa.engine.memory.OPENMP) (default: default,psa)",
    )
    load.add_argument(
        "--engines",
        type=engine_list,
        default=["fused"],
        help="engines to compare, each with every --spins: fused (psa's C++ kernels on a CPU) or eager (as "
        "PSA_FUSED=0 runs it) (default: fused)",
    )
    load.add_argument(
        "--hogs", type=options.whole(0), default=2, help="CPU-bound programs started after it (default: 2)"
    )
    load.add_argument("--delay", type=options.NON_NEGATIVE, default=5.0, help="seconds before they start (default: 5)")
    load.add_argument("--trials", type=options.whole(1), default=3, help="trials per cell (default: 3)")
    load.add_argument("--meta-loops", type=options.whole(1), default=10, help="meta-loops per trial (default: 10)")
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
