"""`psa reproduce`, the main job: a sweep, its exports, then every table and figure of the study
made from those exports, all into one folder. The quick profile (default) trains five small
architectures in a minute or two on a CPU; --full runs the paper's whole grid. Its results store
is its own (`<out>/reproduce.sqlite` unless --store), and its exports hold only its own grid."""

import json
from pathlib import Path

from rich.console import Console

from psa import regimes, report, settings
from psa.analysis import validation_zeror
from psa.architecture import FAMILY_TITLES
from psa.export import export
from psa.figures import convergence, heatmaps, space
from psa.files import write_text
from psa.modes import MODES
from psa.published import ASYMMETRIC, CONFIGURATIONS
from psa.results import default_path, read_summary
from psa.store import Store
from psa.sweep import add_arguments, sweep

QUICK_ARCHS = "1*32,2*16,4*8,8*4,16*2"  # small, parameter-matched-ish, one per depth regime


def publish(out: Path, family: str, archs: list[str], all_modes: bool, data_dir=None) -> list[Path]:
    """The study's tables and figures from the exports in `out`, under the study's file names."""
    zeror = validation_zeror(data_dir)
    configs = write_text(out / "configurations.txt", "\n".join(archs) + "\n")
    title = FAMILY_TITLES[family]
    summary, trials = default_path("summary", family, out), default_path("trials", family, out)
    written = [
        write_text(
            out / f"{title}_Table_Accuracy.tex",
            report.accuracy_table(
                read_summary(summary),
                archs,
                f"Mean Peak Accuracy (\\%) for {title} Architectures",
                "tab:results_summary_stats",
            ),
        ),
        write_text(out / f"{title}_Table_Architectures.tex", report.architecture_table(configs, ASYMMETRIC, family)),
        space.design_space_figure(configs, out / f"{title}_Testing_Design_Space.png", family),
    ]
    if all_modes:
        written += heatmaps.heatmap_figures(configs, trials, out, family, zeror)
        labels = regimes.get_all_regime_classifications(configs, trials, zeror)
        written.append(
            write_text(default_path("regimes", family, out).with_suffix(".json"), json.dumps(labels, indent=2) + "\n")
        )
    written += convergence.study_figures(
        default_path("trials_convergence", family, out), out, family, zeror, archs, trials if all_modes else None
    )
    return written


def reproduce(args) -> None:
    console = Console(highlight=False)
    args.store = args.store or str(Path(args.out) / "reproduce.sqlite")
    if args.full:
        args.configs, args.arch = args.configs or CONFIGURATIONS, None
        args.trials, args.meta_loops = 10, 100
    elif not args.configs and not args.arch:
        args.arch = QUICK_ARCHS
    console.print(
        f"[bold]psa reproduce[/] ({'the full study' if args.full else 'quick profile'}): "
        f"{args.trials} trials x {args.meta_loops} meta-loops per cell"
    )
    sweep(args)
    run = settings.from_args(args)
    archs = [str(a) for a in dict.fromkeys(run.archs)]
    store = Store(args.store)
    try:
        written = export(store, Path(args.out), archs, run.comparable())
    finally:
        store.close()
    written += publish(Path(args.out), args.family, archs, set(run.modes) == set(MODES), args.data_dir)
    for path in written:
        console.print(f"wrote {path}")


def configure(parser) -> None:
    add_arguments(parser, trials=3, meta_loops=10, store="reproduce.sqlite in the --out folder")
    parser.add_argument(
        "--full",
        action="store_true",
        help="the paper's whole grid: 98 architectures x 6 modes x 10 trials x 100 meta-loops",
    )
    parser.add_argument("--out", default="results", help="where exports and figures go (default: results/)")
    parser.set_defaults(func=reproduce)
