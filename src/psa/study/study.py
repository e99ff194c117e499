"""A PSA study in Python: `psa.open_study(source)` opens a results store, a folder of psa's exports
or the published study, and gives its trials and loops as pandas DataFrames, the study's summary,
regimes and convergence, and the manifest of every run that made it. Columns and dtypes are fixed
(docs/API.md), the same whatever the source, so a study of one's own and the published one line
up column for column. psa's own exports, reports and comparisons are made from this."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from psa.errors import PSAError
from psa.study import sources
from psa.study.regimes import REGIMES, STABLE, Thresholds, classify_grid, rule_gaps, stability
from psa.study.results import Trials, mode_stats
from psa.study.series import SeriesRow, best_trials, study_rows
from psa.trial.architecture import depth_and_width
from psa.trial.modes import MODES
from psa.trial.spec import SEED

SUMMARY_COLUMNS = {"family": "string", "arch": "string", "mode": "string", "n": "Int64"}
SUMMARY_COLUMNS |= dict.fromkeys(("mean", "std", "sem", "min", "max"), "float64")
RULES = ("best-trial", "loop-max")


@dataclass
class Study:
    trials: pd.DataFrame  # a row per trial (docs/API.md)
    loops: pd.DataFrame  # a row per trial and meta-loop
    manifest: list[dict]  # a dict per recorded run: how the results were made
    source: str
    series: list[SeriesRow] = field(default_factory=list)  # convergence rows of a source without loops

    def select(self, family: str | None = None) -> "Study":
        """The study of one family's trials (None: all)."""
        if family is None:
            return self
        trials = self.trials[self.trials["family"] == family]
        loops = self.loops[self.loops["trial_id"].isin(trials.index)]
        return Study(trials, loops, self.manifest, self.source, self.series)

    @property
    def complete(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] == "complete"]

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes this study ran, in the study's order."""
        present = set(self.complete["mode"])
        return tuple(mode for mode in MODES if mode in present)

    def archs(self, family: str | None = None) -> list[str]:
        """Its architectures ('L*W'), by depth and width."""
        rows = self.complete if family is None else self.complete[self.complete["family"] == family]
        return sorted(set(rows["arch"]), key=depth_and_width)

    def bounties(self, family: str | None = None) -> Trials:
        """arch -> mode -> bounty per trial (None where a trial has none): what the study's trials
        tables hold, and what the regime rules and comparisons read."""
        found: Trials = {}
        rows = self.complete if family is None else self.complete[self.complete["family"] == family]
        for row in rows.sort_values(["trial"]).itertuples():
            cell = found.setdefault(row.arch, {}).setdefault(row.mode, [])
            cell += [None] * (int(row.trial) - len(cell))
            cell[int(row.trial) - 1] = None if pd.isna(row.bounty) else float(row.bounty)
        return {arch: found[arch] for arch in sorted(found, key=depth_and_width)}

    def summary(self) -> pd.DataFrame:
        """Per family, architecture and mode that has bounties: n, mean, std (over the trials, as
        the study's summary tables), standard error (sample std / sqrt n), min and max."""
        rows = []
        for family in sorted(set(self.complete["family"])):
            for arch, by_mode in self.bounties(family).items():
                for mode in MODES:
                    stats = mode_stats(by_mode.get(mode, []))
                    if stats is None:
                        continue
                    values = np.array([v for v in by_mode[mode] if v is not None])
                    sem = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else np.nan
                    rows.append({"family": family, "arch": arch, "mode": mode, "n": stats.n, "mean": stats.mean})
                    rows[-1] |= {"std": stats.std, "sem": sem, "min": stats.min, "max": stats.max}
        return sources.frame(rows, SUMMARY_COLUMNS)

    def regimes(
        self, zeror: float | None = None, bootstrap: int = 1000, seed: int = SEED, family: str | None = None
    ) -> pd.DataFrame:
        """Each architecture's regime (docs/DESIGN.md section 7), the share of `bootstrap` resamples
        of its trials that keep it, and why a rule could not decide ('unknown')."""
        from psa.study.regimes import resolve_zeror

        zeror = resolve_zeror(zeror)
        trials = self.bounties(family)
        labels = classify_grid(list(map(_arch, trials)), trials, zeror, Thresholds())
        shares = stability(trials, zeror, bootstrap, seed) if bootstrap else {}
        rows = [
            {
                "arch": arch,
                "regime": label,
                "name": REGIMES[label][0],
                "stability": shares.get(arch, np.nan),
                "stable": shares.get(arch, 0.0) >= STABLE,
                "why": rule_gaps(trials[arch]) if label == "unknown" else "",
            }
            for arch, label in labels.items()
        ]
        columns = {"arch": "string", "regime": "string", "name": "string", "stability": "float64"}
        return sources.frame(rows, columns | {"stable": "boolean", "why": "string"})

    def convergence(self, rule: str = "best-trial") -> pd.DataFrame:
        """The study's convergence curves, a row per architecture, mode and meta-loop: by the paper's
        rule, each cell's one trial with the highest peak validation accuracy ('best-trial', its
        number in `trial`); or each loop's maximum over the cell's trials ('loop-max')."""
        if rule not in RULES:
            raise PSAError(f"unknown convergence rule {rule!r}: choose {' or '.join(RULES)}")
        rows = self.series_rows()
        if rule == "loop-max":
            chosen = study_rows(rows)
        else:
            chosen = best_trials(rows)
            if not chosen:
                raise PSAError(
                    f"{self.source} holds no per-trial curves, only study rows: use convergence(rule='loop-max')"
                )
        out = [
            {"arch": row.arch, "mode": row.mode, "trial": row.trial, "loop": k, "score": value}
            for row in chosen
            for k, value in enumerate(row.values, start=1)
            if value is not None
        ]
        columns = {"arch": "string", "mode": "string", "trial": "Int64", "loop": "Int64", "score": "float64"}
        return sources.frame(out, columns)

    def series_rows(self) -> list[SeriesRow]:
        """Each trial's convergence row, its validation accuracy per loop (a source without loops:
        its tables' rows)."""
        if self.loops.empty:
            return list(self.series)
        rows = []
        complete = self.complete
        loops = self.loops[self.loops["trial_id"].isin(complete.index)]
        for trial_id, group in loops.groupby("trial_id", sort=False):
            trial = complete.loc[trial_id]
            values = [float(v) for v in group.sort_values("loop")["score"]]
            test = None if pd.isna(trial["test_accuracy"]) else float(trial["test_accuracy"])
            rows.append(SeriesRow(trial["arch"], trial["mode"], int(trial["trial"]), values, test))
        order = {arch: k for k, arch in enumerate(self.archs())}
        return sorted(rows, key=lambda r: (order.get(r.arch, 0), MODES.index(r.mode), r.trial))


def _arch(key: str):
    from psa.trial.architecture import Architecture

    return Architecture.parse(key)


def open_study(source) -> Study:
    """The study at `source`: a results store (read from a copy, never written, whole even while a
    sweep writes it), a folder of psa's exports, or "published", the published study shipped with
    psa (bounties and study rows only: it has no per-trial loops)."""
    trials, loops, manifest, series = sources.read(source)
    return Study(trials, loops, manifest, str(source), series)
