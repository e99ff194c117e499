"""`psa report`: every table, LaTeX file, figure and regime file of the study, under the study's
file names, from a results store (exported first) or from the exports already in a folder.
`psa reproduce` ends with it."""

import json
from pathlib import Path

from psa import files
from psa.errors import PSAError
from psa.files import write_text
from psa.published import ASYMMETRIC
from psa.store import Store
from psa.study import latex, regimes
from psa.study.dataset import validation_zeror
from psa.study.export import export
from psa.study.figures import convergence, heatmaps, space
from psa.study.results import default_path, read_summary, read_trials
from psa.trial.architecture import FAMILY_TITLES
from psa.trial.modes import MODES


def publish(out: Path, family: str, archs: list[str], all_modes: bool, data_dir=None) -> list[Path]:
    """The study's tables and figures from the exports in `out`, under the study's file names."""
    zeror = validation_zeror(data_dir)
    configs = write_text(out / "configurations.txt", "\n".join(archs) + "\n")
    title = FAMILY_TITLES[family]
    summary, trials = default_path("summary", family, out), default_path("trials", family, out)
    written = [
        write_text(
            out / f"{title}_Table_Accuracy.tex",
            latex.accuracy_table(
                read_summary(summary),
                archs,
                f"Mean Peak Accuracy (\\%) for {title} Architectures",
                "tab:results_summary_stats",
            ),
        ),
        write_text(out / f"{title}_Table_Architectures.tex", latex.architecture_table(configs, ASYMMETRIC, family)),
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


def report(out: Path, family: str, store: Path | None = None, wanted: dict | None = None, data_dir=None) -> list[Path]:
    """`psa report`: the store's exports into `out` first (only trials of the `wanted` settings,
    psa.study.export.select), then the study's tables and figures from the exports there."""
    out = files.output_folder(out, "--out")
    written = []
    if store:
        opened = Store(files.existing_file(store, "results store"))
        try:
            written += export(opened, out, None, wanted)
        finally:
            opened.close()
    table = default_path("trials", family, out)
    if not table.is_file():
        raise PSAError(f"no {family} trials table in {out}: export a store there first, or pass --store")
    trials = read_trials(table)
    modes = {mode for cells in trials.values() for mode, values in cells.items() if any(v is not None for v in values)}
    return written + publish(out, family, list(trials), modes == set(MODES), data_dir)
