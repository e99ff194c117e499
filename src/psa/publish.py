"""`psa report`: every table, LaTeX file, figure and regime file of the study, under the study's
file names, from a results store (exported first) or from the exports already in a folder.
`psa reproduce` ends with it."""

import json
from pathlib import Path

from psa import PSAError, files, options, regimes, report, settings
from psa.analysis import validation_zeror
from psa.architecture import FAMILY_TITLES
from psa.export import export
from psa.figures import convergence, heatmaps, space
from psa.files import write_text
from psa.modes import MODES
from psa.progress import make_console
from psa.published import ASYMMETRIC
from psa.results import default_path, read_summary, read_trials
from psa.store import Store


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
    # The paper's rule draws one trial per mode: the per-trial export holds them.
    written += convergence.study_figures(
        default_path("trials_convergence_per_trial", family, out),
        out,
        family,
        zeror,
        archs,
        trials if all_modes else None,
    )
    return written


def run(args) -> None:
    out = files.output_folder(args.out, "--out")
    written = []
    if args.store:
        store = Store(files.existing_file(args.store, "results store"))
        try:
            written += export(store, out, None, settings.filters(args))
        finally:
            store.close()
    table = default_path("trials", args.family, out)
    if not table.is_file():
        raise PSAError(f"no {args.family} trials table in {out}: export a store there first, or pass --store")
    trials = read_trials(table)
    modes = {mode for cells in trials.values() for mode, values in cells.items() if any(v is not None for v in values)}
    written += publish(out, args.family, list(trials), modes == set(MODES), args.data_dir)
    console = make_console()
    for path in written:
        console.print(f"wrote {path}")


def configure(parser) -> None:
    parser.add_argument("--store", help="results store to export first (default: the exports already in --out)")
    options.add_out_dir(parser)
    options.add_family(parser)
    options.add_data_dir(parser)
    settings.add_filters(parser.add_argument_group("which trials of the store (default: any)"))
    parser.set_defaults(func=run)
