"""The commands that read results: `psa export`, `psa report`, `psa regimes`, `psa compare` and
`analyze-dataset`. Each parses its flags and calls psa.study."""

import argparse
import json
from dataclasses import fields
from pathlib import Path

from psa.cli import options
from psa.errors import PSAError
from psa.progress import make_console
from psa.published import results as published_table
from psa.store import DEFAULT_STORE
from psa.trial.spec import SEED

CONFIGS_USE = "the results' architectures that it lists come first, in its order, and those it lists that the "
CONFIGS_USE += "results lack are named"
CONFIGS_DEFAULT = "the results' architectures, by depth and width"


def add_zeror(parser, what: str = "failure threshold") -> None:
    parser.add_argument(
        "--zeror", type=options.PERCENT, help=f"{what} in percent (default: validation ZeroR from MNIST)"
    )
    options.add_data_dir(parser)


def printed(paths, skipped: dict[str, str] | None = None) -> None:
    console = make_console()
    for path in paths:
        console.print(f"wrote {path}")
    for what, reason in (skipped or {}).items():
        console.print(f"[yellow]left out[/] {what}: {reason}")


# ------------------------------------------------------------------------------ export, report


def export(args) -> None:
    from psa.study.export import export_file

    printed(export_file(args.store, args.out, options.config_archs(args), options.filters(args)))


def configure_export(parser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"results store (default: {DEFAULT_STORE})")
    options.add_out_dir(parser)
    options.add_configs(parser, None, "only these architectures, in this order", "every one the store holds")
    options.add_filters(
        parser.add_argument_group("which trials, where the store holds several settings (default: any)")
    )
    parser.set_defaults(func=export)


def report(args) -> None:
    from psa.study.publish import report

    printed(*report(args.out, args.family, args.store, options.filters(args), args.data_dir))


def configure_report(parser) -> None:
    parser.add_argument("--store", help="results store to export first (default: the exports already in --out)")
    options.add_out_dir(parser)
    options.add_family(parser)
    options.add_data_dir(parser)
    options.add_filters(parser.add_argument_group("which trials of the store (default: any)"))
    parser.set_defaults(func=report)


# ------------------------------------------------------------------------------ regimes


def regimes(args) -> None:
    from psa.study.regimes import Thresholds, architectures, classify_grid, regime_table, resolve_zeror, stability
    from psa.study.results import default_path, read_trials

    trials_file = args.trials_file or default_path("trials", args.family)
    zeror = resolve_zeror(args.zeror, args.data_dir)
    thresholds = Thresholds(**{f.name: getattr(args, f.name) for f in fields(Thresholds)})
    trials = read_trials(trials_file)
    found = classify_grid(architectures(trials, args.configs, trials_file), trials, zeror, thresholds)
    shares = None
    if args.bootstrap:
        shares = stability({arch: trials[arch] for arch in found}, zeror, args.bootstrap, args.seed, thresholds)
    if args.json:
        body = found if shares is None else {a: {"regime": r, "stability": shares[a]} for a, r in found.items()}
        print(json.dumps(body, indent=2))
        return
    console = make_console()
    console.print(regime_table(found, zeror, shares))
    if shares is not None:
        console.print(
            f"stability: share of {args.bootstrap} bootstrap resamples of each mode's trials "
            f"(seed {args.seed}) that keep the architecture's regime"
        )


def configure_regimes(parser) -> None:
    from psa.study.regimes import Thresholds

    options.add_configs(parser, None, CONFIGS_USE, CONFIGS_DEFAULT)
    parser.add_argument("--trials-file", type=Path, help="trials table (default: results/psa_<family>_trials.md)")
    options.add_family(parser)
    add_zeror(parser)
    for field in fields(Thresholds):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            type=options.NON_NEGATIVE,
            default=field.default,
            help=f"rule threshold (default {field.default})",
        )
    parser.add_argument(
        "--bootstrap",
        type=options.whole(1),
        metavar="N",
        help="also resample each mode's trials N times (with replacement, same count) and report "
        "per architecture the share of resamples that keep its regime",
    )
    parser.add_argument("--seed", type=options.seed, default=SEED, help=f"seed of the bootstrap (default: {SEED})")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"L*W": regime} as JSON; with --bootstrap {"L*W": {"regime": ..., "stability": share}}',
    )
    parser.set_defaults(func=regimes)


# ------------------------------------------------------------------------------ compare


def trials_path(text: str) -> Path:
    return published_table("trials") if text == options.PUBLISHED else Path(text)


def convergence_path(given: Path | None, trials: Path) -> Path:
    """The table given, else the one that sits beside the trials table:
    psa_<family>_trials.md -> psa_<family>_trials_convergence.md."""
    if given is not None:
        return given
    return trials.with_name(f"{trials.stem}_convergence{trials.suffix}")


def loop_list(text: str) -> list[int]:
    parse = options.whole(1)
    loops = [parse(part.strip()) for part in text.split(",") if part.strip()]
    if not loops:
        raise argparse.ArgumentTypeError("expected meta-loops like 1,10,50,100")
    return loops


def compare(args) -> None:
    from psa.study.compare import compare_convergence, compare_trials, report, report_convergence
    from psa.study.regimes import resolve_zeror
    from psa.study.results import read_trials
    from psa.study.series import read_series

    if args.ours is None:  # not argparse's `required`, which an alias (--ours) would not satisfy
        raise PSAError("the reproduction's trials table is required: --trials-file FILE")
    ours, reference = read_trials(args.ours), read_trials(args.reference)  # paths already: see trials_path
    if not any(arch in ours for arch in reference):
        raise PSAError(f"{args.ours} and {args.reference} share no architecture")
    tables = (
        convergence_path(args.ours_convergence, args.ours),
        convergence_path(args.reference_convergence, args.reference),
    )
    missing = [str(path) for path in tables if not path.is_file()]
    asked = (args.ours_convergence, args.reference_convergence, args.loops) != (None, None, None)
    # A table asked for, or the loops to compare, must be there: reading it says so if not.
    convergence = (
        compare_convergence(read_series(tables[0]), read_series(tables[1]), args.loops)
        if asked or not missing
        else None
    )
    console = make_console()
    if convergence and convergence.length_note:  # first: it qualifies the bounties too
        console.print(f"[bold yellow]{convergence.length_note}[/]", soft_wrap=True)
    zeror = resolve_zeror(args.zeror, args.data_dir)
    report(compare_trials(ours, reference, zeror, args.alpha, args.correction, args.configs, args.ours), console)
    if convergence:
        report_convergence(convergence, console)
    else:
        console.print(f"[yellow]convergence not compared:[/] no table {' or '.join(missing)}", soft_wrap=True)


def configure_compare(parser) -> None:
    from psa.study.compare import DEFAULT_LOOPS
    from psa.study.stats import CORRECTIONS

    parser.add_argument(
        "--trials-file",
        dest="ours",
        type=trials_path,
        help=f"trials table of the reproduction (or {options.PUBLISHED}); required",
    )
    options.alias(parser, "--ours", dest="ours", type=trials_path)
    parser.add_argument(
        "--reference",
        type=trials_path,
        default=options.PUBLISHED,
        help=f"trials table of the reference study (default: {options.PUBLISHED}, the study shipped with psa)",
    )
    parser.add_argument(
        "--alpha",
        type=options.number(0, 1, low_open=True, high_open=True),
        default=0.05,
        help="significance level after correction",
    )
    parser.add_argument(
        "--correction",
        choices=tuple(CORRECTIONS),
        default="holm",
        help="holm: family-wise error; bh: Benjamini-Hochberg false discovery rate",
    )
    parser.add_argument(
        "--loops",
        type=loop_list,
        metavar="K,K,...",
        help=f"meta-loops at which to compare convergence (default: {', '.join(map(str, DEFAULT_LOOPS))} "
        "and the last one both sides ran; loops a side never ran are skipped)",
    )
    options.alias(parser, "--ours-convergence", dest="ours_convergence", type=Path)
    parser.add_argument(
        "--convergence-file",
        dest="ours_convergence",
        type=Path,
        help="our convergence table, study rows or per-trial rows (default: beside --trials-file, "
        "psa_<family>_trials_convergence.md)",
    )
    parser.add_argument(
        "--reference-convergence",
        type=Path,
        help="the reference's convergence table (default: beside --reference; published: the shipped one)",
    )
    options.add_configs(parser, None, CONFIGS_USE, CONFIGS_DEFAULT)
    add_zeror(parser, "regime failure threshold")
    parser.set_defaults(func=compare)


# ------------------------------------------------------------------------------ analyze-dataset


def analyze_dataset(args) -> None:
    from rich.columns import Columns

    from psa.study.dataset import analyze_mnist, split_table, summary_table

    analysis = analyze_mnist(args.data_dir)
    console = make_console()
    console.print(f"MNIST from {args.data_dir or 'the standard locations'}: split seed 1337, 50,000 / 10,000")
    console.print(Columns([split_table(split) for split in analysis.splits]))
    console.print(summary_table(analysis))


def configure_analyze_dataset(parser) -> None:
    options.add_data_dir(parser)
    parser.set_defaults(func=analyze_dataset)
