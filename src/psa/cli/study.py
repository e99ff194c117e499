"""The commands that read results: `psa export`, `psa report`, `psa regimes`, `psa compare` and
`analyze-dataset`. Each parses its flags and calls psa.study."""

import argparse
import json
from dataclasses import fields
from pathlib import Path

from psa.cli import options
from psa.errors import PSAError
from psa.files import read_text
from psa.progress import make_console
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

    parquet = args.format == "parquet"
    printed(export_file(args.store, args.out, options.config_archs(args), options.filters(args), parquet))


def configure_export(parser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"results store (default: {DEFAULT_STORE})")
    options.add_out_dir(parser)
    options.add_configs(parser, None, "only these architectures, in this order", "every one the store holds")
    parser.add_argument(
        "--format",
        choices=("markdown", "parquet"),
        default="markdown",
        help="markdown: the study's tables and CSVs of trials and loops; parquet: also trials.parquet and "
        "loops.parquet, with the runs' manifests in their metadata (default: markdown)",
    )
    options.add_filters(
        parser.add_argument_group("which trials, where the store holds several settings (default: any)")
    )
    parser.set_defaults(func=export)


def report(args) -> None:
    from psa.study.publish import report

    wanted = options.filters(args)
    printed(
        *report(
            args.out, args.family, args.store, wanted, args.data_dir, None, args.html, args.against, args.from_exports
        )
    )


def configure_report(parser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--store", help="results store to export first (default: the exports already in --out)")
    source.add_argument("--from-exports", type=Path, help="a folder of psa's exports to report on (default: --out)")
    parser.add_argument(
        "--html",
        action="store_true",
        help="also report.html: the whole study as one interactive page that opens offline (docs/API.md)",
    )
    parser.add_argument(
        "--against",
        default=None,
        metavar="STUDY",
        help="with --html: a study to show beside this one and compare with (a store, an export folder or published)",
    )
    options.add_out_dir(parser)
    options.add_family(parser)
    options.add_data_dir(parser)
    options.add_filters(parser.add_argument_group("which trials of the store (default: any)"))
    parser.set_defaults(func=report)


# ------------------------------------------------------------------------------ regimes


def regimes(args) -> None:
    from psa.study.regimes import (
        Thresholds,
        architectures,
        classify_grid,
        regime_table,
        resolve_zeror,
        rule_gaps,
        stability,
    )
    from psa.study.results import default_path
    from psa.study.study import open_study

    source = args.store or args.trials_file or default_path("trials", args.family)
    if not args.store:
        read_text(source, "results file")  # a table, not a store: --store is for those
    zeror = resolve_zeror(args.zeror, args.data_dir)
    thresholds = Thresholds(**{f.name: getattr(args, f.name) for f in fields(Thresholds)})
    trials = open_study(source).bounties(args.family)
    found = classify_grid(architectures(trials, args.configs, source), trials, zeror, thresholds)
    shares = None
    if args.bootstrap:
        shares = stability({arch: trials[arch] for arch in found}, zeror, args.bootstrap, args.seed, thresholds)
    if args.json:
        body = found if shares is None else {a: {"regime": r, "stability": shares[a]} for a, r in found.items()}
        print(json.dumps(body, indent=2))
        return
    console = make_console()
    console.print(regime_table(found, zeror, shares))
    for arch in (arch for arch, label in found.items() if label == "unknown"):
        console.print(f"[yellow]no regime for {arch}:[/] {rule_gaps(trials[arch])}", soft_wrap=True)
    if shares is not None:
        console.print(
            f"stability: share of {args.bootstrap} bootstrap resamples of each mode's trials "
            f"(seed {args.seed}) that keep the architecture's regime"
        )


def configure_regimes(parser) -> None:
    from psa.study.regimes import Thresholds

    options.add_configs(parser, None, CONFIGS_USE, CONFIGS_DEFAULT)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--store", type=Path, help="a results store to read the trials from")
    source.add_argument("--trials-file", type=Path, help="trials table (default: results/psa_<family>_trials.md)")
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


def compare(args) -> None:
    from psa.study.compare import compare_trials, report, settings_differences, to_json
    from psa.study.compare_convergence import compare_convergence, report_convergence
    from psa.study.regimes import resolve_zeror
    from psa.study.series import read_series
    from psa.study.study import open_study

    ours_source, reference_source = args.study or args.ours, args.reference_study or args.reference
    for table in (args.ours, args.reference):
        if table and table != options.PUBLISHED and not (args.study or args.reference_study):
            read_text(table, "results file")  # the former flags name tables; stores come as A and B
    if ours_source is None:
        raise PSAError("the study to compare is required: psa compare A [B] (a store, an export folder or a table)")
    ours, reference = open_study(ours_source), open_study(reference_source)
    if not set(ours.archs()) & set(reference.archs()):
        raise PSAError(f"{ours_source} and {reference_source} share no architecture")
    family = ours.trials["family"].iloc[0]
    ours_series = read_series(args.ours_convergence) if args.ours_convergence else ours.series_rows()
    reference_series = (
        read_series(args.reference_convergence) if args.reference_convergence else reference.series_rows()
    )
    convergence = (
        compare_convergence(ours_series, reference_series, args.loops) if ours_series and reference_series else None
    )
    zeror = resolve_zeror(args.zeror, args.data_dir)
    found = compare_trials(
        ours.bounties(family),
        reference.bounties(family),
        zeror,
        args.alpha,
        args.correction,
        args.configs,
        args.ours,
        args.bootstrap,
        args.seed,
    )
    differences = settings_differences(ours.manifest, reference.manifest)
    if args.json:
        print(json.dumps(to_json(found, convergence, differences), indent=2))
    else:
        console = make_console()
        if differences:  # first: a variant against a baseline differs by design
            console.print(f"[bold yellow]run with other settings:[/] {'; '.join(differences)}", soft_wrap=True)
        if convergence and convergence.length_note:
            console.print(f"[bold yellow]{convergence.length_note}[/]", soft_wrap=True)
        report(found, console)
        if convergence:
            report_convergence(convergence, console)
        else:
            console.print("[yellow]convergence not compared:[/] a side has no convergence rows", soft_wrap=True)
    if args.figure:
        from psa.study.figures.comparison import comparison_figure

        differing = list(found.regime_disagreements) + [c.arch for c in found.disagreements]
        archs = list(dict.fromkeys(differing)) or list(found.regimes)
        path = comparison_figure(ours_series, reference_series, archs, args.figure, zeror)
        make_console(stderr=True).print(f"wrote {path}")


def loop_list(text: str) -> list[int]:
    parse = options.whole(1)
    loops = [parse(part.strip()) for part in text.split(",") if part.strip()]
    if not loops:
        raise argparse.ArgumentTypeError("expected meta-loops like 1,10,50,100")
    return loops


def configure_compare(parser) -> None:
    from psa.study.compare_convergence import DEFAULT_LOOPS
    from psa.study.stats import CORRECTIONS

    study = "a results store, a folder of psa's exports, a trials table, or 'published'"
    parser.add_argument("study", nargs="?", default=None, help=f"the study to compare: {study}")
    parser.add_argument(
        "reference_study",
        nargs="?",
        default=None,
        metavar="reference",
        help="the study to compare it with (default: published)",
    )
    # The former flags for the same two studies.
    parser.add_argument("--trials-file", "--ours", dest="ours", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reference", default=options.PUBLISHED, help=argparse.SUPPRESS)
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
        "--bootstrap",
        type=options.whole(0),
        default=1000,
        metavar="N",
        help="resamples of each side's own trials that say how often its regime labels hold (default: 1000)",
    )
    parser.add_argument("--seed", type=options.seed, default=SEED, help=f"seed of the bootstrap (default: {SEED})")
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
        help="our convergence table, study rows or per-trial rows (default: the study's own)",
    )
    parser.add_argument(
        "--reference-convergence", type=Path, help="the reference's convergence table (default: the study's own)"
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument(
        "--figure", type=Path, default=None, help="also draw both studies' convergence where they differ into this PNG"
    )
    options.add_configs(parser, None, CONFIGS_USE, CONFIGS_DEFAULT)
    add_zeror(parser, "regime failure threshold")
    parser.set_defaults(func=compare)


# ------------------------------------------------------------------------------ info


def info(args) -> None:
    from psa.study.info import progress_table, runs_table
    from psa.study.study import open_study

    study = open_study(args.store)
    console = make_console()
    console.print(runs_table(study))
    console.print(progress_table(study))


def configure_info(parser) -> None:
    parser.add_argument("store", type=Path, help="a results store (or a folder of psa's exports)")
    parser.set_defaults(func=info)


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
