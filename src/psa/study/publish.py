"""`psa report`: every table, LaTeX file, figure and regime file of the study, under the study's
file names, from a results store (exported first) or from the exports already in a folder.
`psa reproduce` ends with it."""

import json
from pathlib import Path

from psa import files
from psa.errors import PSAError
from psa.files import write_text
from psa.published import ASYMMETRIC
from psa.study import latex, regimes
from psa.study.dataset import validation_zeror
from psa.study.export import export
from psa.study.figures import convergence, heatmaps, space
from psa.study.html import write_report
from psa.study.outputs import write_set
from psa.study.results import default_path, read_summary, read_trials
from psa.study.study import open_study
from psa.trial.architecture import FAMILY_TITLES
from psa.trial.modes import MODES


def publish(
    source: Path, target: Path, family: str, archs: list[str], all_modes: bool, data_dir=None
) -> tuple[list[Path], dict[str, str]]:
    """The study's tables and figures from the exports in `source`, written into `target` under the
    study's file names; returns the paths written and the outputs left out, each with its reason."""
    zeror = validation_zeror(data_dir)
    configs = write_text(target / "configurations.txt", "\n".join(archs) + "\n")
    title = FAMILY_TITLES[family]
    summary, trials = default_path("summary", family, source), default_path("trials", family, source)
    written = [
        configs,
        write_text(
            target / f"{title}_Table_Accuracy.tex",
            latex.accuracy_table(
                read_summary(summary),
                archs,
                f"Mean Peak Accuracy (\\%) for {title} Architectures",
                "tab:results_summary_stats",
            ),
        ),
        write_text(target / f"{title}_Table_Architectures.tex", latex.architecture_table(configs, ASYMMETRIC, family)),
        space.design_space_figure(configs, target / f"{title}_Testing_Design_Space.png", family),
    ]
    skipped = {}
    if all_modes:
        written += heatmaps.heatmap_figures(configs, trials, target, family, zeror)
        labels = regimes.get_all_regime_classifications(configs, trials, zeror)
        regimes_file = default_path("regimes", family, target).with_suffix(".json")
        written.append(write_text(regimes_file, json.dumps(labels, indent=2) + "\n"))
    else:
        reason = "needs results in all six modes"
        skipped |= {
            f"the heat maps of {title}": reason,
            default_path("regimes", family).with_suffix(".json").name: reason,
        }
    # The paper's rule draws one trial per mode: the per-trial export holds them.
    written += convergence.study_figures(
        default_path("trials_convergence_per_trial", family, source),
        target,
        family,
        zeror,
        archs,
        trials if all_modes else None,
    )
    return written, skipped


def report(
    out: Path,
    family: str,
    store: Path | None = None,
    wanted: dict | None = None,
    data_dir=None,
    archs: list[str] | None = None,
    html: bool = False,
    against: Path | str | None = None,
    exports: Path | None = None,
) -> tuple[list[Path], dict[str, str]]:
    """`psa report`: the store's exports into `out` first (only trials of the `wanted` settings,
    psa.study.export.select; only `archs`, in that order, if given), or else the exports already in
    `exports` (default: `out`), then the study's tables and figures from them, all as one set
    (psa.study.outputs). With `html`, also report.html (psa.study.html), against the study
    `against` where given. Returns the paths written and the outputs left out with their reasons."""
    out = files.output_folder(out, "--out")
    opened = open_study(files.existing_file(store, "results store")) if store else None
    reference = open_study(against).select(family) if against else None
    skipped = {}

    def make(staging: Path) -> list[Path]:
        written = export(opened, staging, archs, wanted) if opened else []
        source = staging if opened else (exports or out)
        table = default_path("trials", family, source)
        if not table.is_file():
            raise PSAError(f"no {family} trials table in {source}: export a store there first, or pass --store")
        trials = read_trials(table)
        ran = {
            mode for cells in trials.values() for mode, values in cells.items() if any(v is not None for v in values)
        }
        order = [arch for arch in archs or trials if arch in trials]
        paths, left_out = publish(source, staging, family, order, ran == set(MODES), data_dir)
        skipped.update(left_out)
        if html:
            study = open_study(source).select(family)
            study.manifest = opened.manifest if opened else study.manifest
            paths.append(write_report(study, staging, validation_zeror(data_dir), reference, data_dir))
        return written + paths

    runs = opened.manifest if opened else None
    return write_set(out, make, runs), skipped
