"""The study's own tools, under their original names: `make-architecture-table`,
`make-trial-accuracy-table`, `make-design-space-figure`, `make-figure-heatmaps` and
`make-convergence-plots`. Each parses its flags and calls psa.study."""

import sys
from pathlib import Path

from psa.cli import options
from psa.cli.study import CONFIGS_DEFAULT, CONFIGS_USE, add_zeror
from psa.errors import PSAError
from psa.files import write_text
from psa.published import ASYMMETRIC, CONFIGURATIONS
from psa.trial.architecture import FAMILY_TITLES, arch_key, read_configurations


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_text(output, text)


def _out_file(parser, what: str) -> None:
    parser.add_argument("--out", type=Path, help=what)
    options.alias(parser, "--output", "--output-file", dest="out", type=Path)


# ------------------------------------------------------------------------------ LaTeX tables


def architecture_table(args) -> None:
    from psa.study.latex import architecture_table

    _emit(architecture_table(args.configs, args.asymmetric_file, args.family), args.out)


def configure_architecture_table(parser) -> None:
    options.add_configs(parser, CONFIGURATIONS, "the table's rows", "'published'")
    parser.add_argument(
        "--asymmetric-file",
        type=Path,
        default=ASYMMETRIC,
        help="architectures outside the parameter-matching design (default: the published study's)",
    )
    options.add_family(parser)
    _out_file(parser, "write the table to this file (default: print it)")
    parser.set_defaults(func=architecture_table)


def accuracy_table(args) -> None:
    from psa.study.latex import accuracy_table
    from psa.study.results import default_path, read_summary

    summary = args.summary_file or default_path("summary", args.family)
    caption = args.caption or (
        "Mean Peak Accuracy (\\%) with Standard Deviation over 10 Trials for "
        f"{FAMILY_TITLES[args.family]} Architectures"
    )
    order = [str(arch) for arch in read_configurations(args.configs)]
    _emit(accuracy_table(read_summary(summary), order, caption, args.label, args.tolerant_ties), args.out)


def configure_accuracy_table(parser) -> None:
    parser.add_argument("--summary-file", type=Path, help="summary table (default: results/psa_<family>_summary.md)")
    options.alias(parser, "--datafile", dest="summary_file", type=Path)
    options.add_configs(
        parser, CONFIGURATIONS, "the row order; the summary's other architectures come last", "'published'"
    )
    parser.add_argument("--caption", help="table caption (default names the family)")
    parser.add_argument("--label", default="tab:results_summary_stats")
    parser.add_argument(
        "--tolerant-ties",
        action="store_true",
        help="psa's tie rule: a mean that misses the best by 0.01 only through floating-point rounding "
        "ties too (default: the original's strict comparison, as in the paper)",
    )
    options.add_family(parser)
    _out_file(parser, "write the table to this file (default: print it)")
    parser.set_defaults(func=accuracy_table)


# ------------------------------------------------------------------------------ figures


def design_space_figure(args) -> None:
    from psa import files
    from psa.study.figures.space import design_space_figure

    output = args.out or Path("results") / f"{FAMILY_TITLES[args.family]}_Testing_Design_Space.png"
    print(design_space_figure(args.configs, files.output_file(output, "--out"), args.family))


def configure_design_space_figure(parser) -> None:
    options.add_configs(parser, CONFIGURATIONS, "the figure's", "'published'")
    _out_file(parser, "figure file (default: results/<Family>_Testing_Design_Space.png)")
    options.add_family(parser)
    parser.set_defaults(func=design_space_figure)


def heatmaps(args) -> None:
    from psa.study.figures.heatmaps import heatmap_figures
    from psa.study.regimes import resolve_zeror
    from psa.study.results import default_path

    trials_file = args.trials_file or default_path("trials", args.family)
    zeror = resolve_zeror(args.zeror, args.data_dir)
    for path in heatmap_figures(
        args.configs, trials_file, args.out, args.family, zeror, args.asymmetric_file, args.bootstrap
    ):
        print(path)


def configure_heatmaps(parser) -> None:
    options.add_configs(parser, None, CONFIGS_USE, CONFIGS_DEFAULT)
    parser.add_argument(
        "--asymmetric-file",
        type=Path,
        default=ASYMMETRIC,
        help="the architectures outside the parameter-matching design, drawn as triangles "
        "(default: the published study's)",
    )
    parser.add_argument("--trials-file", type=Path, help="default: results/psa_<family>_trials.md")
    options.add_out_dir(parser)
    parser.add_argument(
        "--bootstrap",
        type=options.whole(0),
        default=0,
        help="ring the regimes that fewer than 90%% of this many resamples of the trials keep (default: 0, none)",
    )
    options.add_family(parser)
    add_zeror(parser, "ZeroR line / failure threshold")
    parser.set_defaults(func=heatmaps)


def _targets(text: str, rows, source) -> list[str]:
    targets = [arch_key(t) for t in text.split(",") if t.strip()]
    known = {row.arch for row in rows}
    absent = [t for t in targets if t not in known]
    if absent:
        raise PSAError(f"{source} has no rows for {', '.join(absent)}")
    return targets


def _source(args, rule: str) -> tuple[list, str, bool]:
    """The rows to draw from, where they came from, and whether its trials had paired seeds."""
    from psa.study import tables
    from psa.study.results import default_path
    from psa.study.series import per_trial, read_series

    if args.logs_dir:
        from psa.clusters.sagemaker.logparse import parse_logs

        curves, problems = parse_logs(args.logs_dir)
        for problem in problems:
            print(f"warning: {problem}")
        return per_trial(curves)[0], str(args.logs_dir), False
    kind = "trials_convergence" if rule == "loop-max" else "trials_convergence_per_trial"
    source = args.convergence_file or default_path(kind, args.family)
    if not Path(source).is_file():
        raise PSAError(f"convergence table {source} does not exist (psa export writes it; --logs-dir reads job logs)")
    return read_series(source), str(source), tables.read_settings(source).get("seeding") == "paired"


def convergence_plots(args) -> None:
    from psa.study.figures.convergence import drawn, late_breakthroughs, panels_figure, regime_labels
    from psa.study.regimes import resolve_zeror
    from psa.study.results import default_path

    rule = "spread" if args.spread else "loop-max" if args.loop_max else "best-trial"
    rows, source, paired = _source(args, rule)
    rows = drawn(rows, rule, source)
    zeror = resolve_zeror(args.zeror, args.data_dir)
    trials_file = args.trials_file or default_path("trials", args.family)
    regimes = regime_labels(trials_file if args.trials_file or trials_file.is_file() else None, zeror)
    title = FAMILY_TITLES[args.family]
    chosen = (
        late_breakthroughs(rows, regimes)
        if args.breakthrough_targets == "auto"
        else _targets(args.breakthrough_targets, rows, source)
    )
    for targets, name in ((_targets(args.targets, rows, source), "Convergence"), (chosen, "Late_Breakthroughs")):
        output = args.out / f"{title}_Plot_{name}.png"
        print(panels_figure(rows, targets, output, zeror, regimes, rule, paired))


def configure_convergence_plots(parser) -> None:
    from psa.study.figures.convergence import BREAKTHROUGHS, TARGETS

    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f'architectures to stack (default: the paper\'s, "{",".join(TARGETS)}")',
    )
    parser.add_argument(
        "--breakthrough-targets",
        default=",".join(BREAKTHROUGHS),
        help=f"architectures of the late-breakthrough figure (default: the paper's, "
        f'"{",".join(BREAKTHROUGHS)}"); "auto": the four chaotic ones that gained most after '
        "the first quarter of the meta-loops",
    )
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument(
        "--loop-max",
        action="store_true",
        help="per meta-loop the best accuracy over the trials (psa's study rows) instead of the paper's "
        "rule, each mode's one trial with the highest peak accuracy",
    )
    rule.add_argument(
        "--spread",
        action="store_true",
        help="mean over the trials with a band of one standard deviation, instead of the paper's best trial",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--convergence-file",
        type=Path,
        help="default: results/psa_<family>_trials_convergence_per_trial.md, with --loop-max "
        "results/psa_<family>_trials_convergence.md",
    )
    source.add_argument(
        "--logs-dir", type=Path, help="a folder of downloaded job logs (psa's or the original study's) instead"
    )
    options.alias(parser, "--logs", dest="logs_dir", type=Path)
    parser.add_argument(
        "--trials-file",
        type=Path,
        help="for each panel's regime (default: results/psa_<family>_trials.md when present)",
    )
    options.add_out_dir(parser)
    options.add_family(parser)
    add_zeror(parser, "ZeroR line / failure threshold")
    parser.set_defaults(func=convergence_plots)
