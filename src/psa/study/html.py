"""The study as one web page (`psa report --html`, `psa reproduce`): a single self-contained file,
report.html, that opens anywhere offline. plotly.js is embedded once (Plotly draws interactive maps
and curves with hover labels from one script, and its Python package ships that script, so nothing
is fetched at open time); the study's numbers are embedded once as JSON, from which the page draws
every figure: a map of the design space per mode, the regime map and table with each regime's
bootstrap stability, the design-space figure, every trial's convergence curves (pick an
architecture), the dataset's ZeroR baselines and the runs' manifests. Against a reference study the
comparison (psa.study.compare) leads the page and every figure shows the reference too."""

import html
import json
from pathlib import Path

import pandas as pd

from psa.files import write_text
from psa.study.compare import compare_trials
from psa.study.dataset import analyze_mnist
from psa.study.figures import interactive
from psa.study.regimes import REGIMES, resolve_zeror
from psa.study.series import best_trials
from psa.study.study import Study

REPORT = "report.html"
TEMPLATE = Path(__file__).with_name("report.html")


def _round(values) -> list:
    return [None if pd.isna(v) else round(float(v), 2) for v in values]


def curves(study: Study) -> dict:
    """arch -> mode -> {"trials": [{"trial", "score", "lkg"}], "best": trial number or None, "rows": [...]}:
    every trial's validation accuracy and LKG per loop where the study has loops, else its
    convergence table's rows (the published study's study rows)."""
    found: dict = {}
    complete = study.complete
    if not study.loops.empty:
        loops = study.loops[study.loops["trial_id"].isin(complete.index)].sort_values(["trial_id", "loop"])
        for trial_id, group in loops.groupby("trial_id", sort=False):
            trial = complete.loc[trial_id]
            cell = found.setdefault(trial["arch"], {}).setdefault(trial["mode"], {"trials": [], "rows": []})
            cell["trials"].append(
                {"trial": int(trial["trial"]), "score": _round(group["score"]), "lkg": _round(group["lkg"])}
            )
        for row in best_trials(study.series_rows()):  # the paper's rule, as Study.convergence draws it
            found[row.arch][row.mode]["best"] = row.trial
    else:
        for row in study.series_rows():
            cell = found.setdefault(row.arch, {}).setdefault(row.mode, {"trials": [], "rows": [], "best": None})
            cell["rows"].append(_round(v for v in row.values))
    return found


def shapes(study: Study) -> pd.DataFrame:
    rows = study.complete.drop_duplicates("arch")[["arch", "depth", "width", "parameters"]]
    return rows.set_index("arch").loc[study.archs()].reset_index()


def page_data(study: Study, zeror: float, reference: Study | None = None, data_dir=None, bootstrap: int = 1000) -> dict:
    """Everything the page shows, as JSON holds it."""
    summary, found = study.summary(), shapes(study)
    regimes = study.regimes(zeror, bootstrap)
    labels = dict(zip(regimes["arch"], regimes["regime"]))
    other = comparison = None
    if reference is not None:
        other = reference.summary()
        found_cmp = compare_trials(study.bounties(), reference.bounties(), zeror, bootstrap=bootstrap)
        comparison = {
            "source": reference.source,
            "cells": [
                {"arch": c.arch, "mode": c.mode, "ours": f"{c.ours_mean:.2f} ± {c.ours_std:.2f}"}
                | {"reference": f"{c.reference_mean:.2f} ± {c.reference_std:.2f}", "difference": round(c.difference, 2)}
                | {"p": f"{c.p_adjusted:.2g}"}
                for c in sorted(found_cmp.disagreements, key=lambda c: c.p_adjusted)
            ],
            "compared": len(found_cmp.cells),
            "regimes": [
                {"arch": arch, "ours": p.ours, "ours_stability": p.ours_stability, "reference": p.reference}
                | {"reference_stability": p.reference_stability, "verdict": p.verdict}
                for arch, p in found_cmp.regimes.items()
            ],
        }
        reference_regimes = {
            arch: (REGIMES[pair.reference][0], pair.verdict)
            if (pair := found_cmp.regimes.get(arch))
            else ("not run", "not compared")
            for arch in labels
        }
    else:
        reference_regimes = None
    figures = interactive.mode_maps(summary, found, labels, zeror, other)
    figures.append(interactive.regime_map(regimes, found, reference_regimes))
    figures.append(interactive.design_space(found))
    dataset = analyze_mnist(data_dir)
    return {
        "source": study.source,
        "zeror": zeror,
        "counts": {"trials": int(len(study.complete)), "archs": len(found), "modes": list(study.modes)},
        "figures": figures,
        "regimes": regimes.astype(object).where(regimes.notna(), None).to_dict("records"),
        "curves": curves(study),
        "reference_curves": curves(reference) if reference is not None else None,
        "modes": interactive.modes_style(),
        "dataset": [
            {"split": s.name, "images": s.size, "class": s.zeror_class, "zeror": round(s.zeror, 2)}
            for s in dataset.splits
        ],
        "manifest": study.manifest,
        "comparison": comparison,
    }


def render(data: dict) -> str:
    """The page: the template, plotly.js once, the data once."""
    from plotly.offline import get_plotlyjs

    embedded = json.dumps(data, default=str, separators=(",", ":")).replace("</", "<\\/")
    page = TEMPLATE.read_text(encoding="utf-8")
    return (
        page.replace("{{title}}", html.escape(f"PSA study: {data['source']}"))
        .replace("{{plotly}}", get_plotlyjs().replace("</script", "<\\/script"))
        .replace("{{data}}", embedded)
    )


def write_report(
    study: Study, out: Path, zeror: float | None = None, reference: Study | None = None, data_dir=None
) -> Path:
    """report.html of `study` (against `reference`, where given) in the folder `out`."""
    zeror = resolve_zeror(zeror, data_dir)
    return write_text(Path(out) / REPORT, render(page_data(study, zeror, reference, data_dir)))
