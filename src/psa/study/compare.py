"""Two studies compared, architecture by architecture and mode by mode: means, stds, Welch's
two-sample t-test with a multiple-comparison correction, and each architecture's regime on both
sides with how often each side's label holds when its own trials are resampled, which is what
tells a disagreement from sampling noise (docs/API.md). Their convergence is compared in
psa.study.compare_convergence."""

import json
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from psa.errors import PSAError
from psa.study.compare_convergence import ConvergenceComparison
from psa.study.regimes import (
    REGIMES,
    STABLE,
    architectures,
    calculate_summary_metrics,
    classify_regime,
    rule_gaps,
    stability,
)
from psa.study.results import Trials, mode_stats
from psa.study.stats import CORRECTIONS, welch
from psa.trial.modes import MODES
from psa.trial.spec import SEED

# ---------------------------------------------------------------------------------------------
# The comparison.


@dataclass
class CellComparison:
    arch: str
    mode: str
    ours_mean: float
    ours_std: float
    reference_mean: float
    reference_std: float
    t: float
    p: float
    p_adjusted: float = 1.0

    @property
    def difference(self) -> float:
        return self.ours_mean - self.reference_mean


@dataclass
class RegimeComparison:
    """An architecture's regime on both sides, how often each side's label holds under resampling of
    its own trials, and what that makes of them."""

    ours: str
    ours_stability: float
    reference: str
    reference_stability: float
    why: str = ""  # where a side has no regime: why the rules give none

    @property
    def verdict(self) -> str:
        if "unknown" in (self.ours, self.reference):
            return "not compared: " + self.why
        if self.ours == self.reference:
            return "agree"
        unstable = [
            side
            for side, share in (("ours", self.ours_stability), ("the reference's", self.reference_stability))
            if share < STABLE
        ]
        if unstable:
            return f"undecided: {' and '.join(unstable)} label holds in under {STABLE:.0%} of resamples"
        return "differ beyond sampling noise"


@dataclass
class Comparison:
    cells: list[CellComparison]
    regimes: dict[str, RegimeComparison]  # arch both sides hold
    ours_only: dict[str, str]  # arch the reference lacks -> our regime
    reference_only: list[str]  # archs never run on our side
    skipped: list[str]  # "arch/mode" cells with fewer than two trials on a side
    alpha: float

    @property
    def disagreements(self) -> list[CellComparison]:
        return [cell for cell in self.cells if cell.p_adjusted < self.alpha]

    @property
    def regime_disagreements(self) -> dict[str, RegimeComparison]:
        """Architectures whose labels differ beyond sampling noise."""
        return {arch: pair for arch, pair in self.regimes.items() if pair.verdict == "differ beyond sampling noise"}

    def count(self, verdict: str) -> int:
        return sum(pair.verdict.split(":")[0] == verdict for pair in self.regimes.values())


def compare_trials(
    ours: Trials,
    reference: Trials,
    zeror: float,
    alpha: float = 0.05,
    correction: str = "holm",
    config_file=None,
    ours_file=None,
    bootstrap: int = 1000,
    seed: int = SEED,
) -> Comparison:
    """Our architectures (in the order of psa.study.regimes.architectures), and in each the modes with at
    least two trials on both sides, are tested; the p-values are adjusted together, since a
    reproduction is judged on all of them at once. Each side's regimes come with their stability
    under `bootstrap` resamples of its own trials. An architecture one side lacks is kept aside,
    with our regime if ours."""
    if correction not in CORRECTIONS:
        raise PSAError(f"unknown correction {correction!r}: choose {' or '.join(CORRECTIONS)}")
    archs = [str(arch) for arch in architectures(ours, config_file, ours_file)]
    shared = [arch for arch in archs if arch in reference]
    cells, skipped = [], []
    for arch in shared:
        for mode in MODES:
            a = [v for v in ours[arch].get(mode, []) if v is not None]
            b = [v for v in reference[arch].get(mode, []) if v is not None]
            if len(a) < 2 or len(b) < 2:
                if a or b:
                    skipped.append(f"{arch}/{mode}")
                continue
            sa, sb = mode_stats(a), mode_stats(b)
            cells.append(CellComparison(arch, mode, sa.mean, sa.std, sb.mean, sb.std, *welch(a, b)))
    for cell, adjusted in zip(cells, CORRECTIONS[correction]([c.p for c in cells])):
        cell.p_adjusted = float(adjusted)
    ours_metrics, reference_metrics = calculate_summary_metrics(ours), calculate_summary_metrics(reference)
    ours_shares = stability({a: ours[a] for a in shared}, zeror, bootstrap, seed) if bootstrap else {}
    reference_shares = stability({a: reference[a] for a in shared}, zeror, bootstrap, seed) if bootstrap else {}
    regimes = {}
    for arch in shared:
        mine, theirs = classify_regime(arch, ours_metrics, zeror), classify_regime(arch, reference_metrics, zeror)
        why = "; ".join(
            f"{side}: {rule_gaps(trials[arch])}"
            for side, label, trials in (("ours", mine, ours), ("reference", theirs, reference))
            if label == "unknown"
        )
        regimes[arch] = RegimeComparison(mine, ours_shares.get(arch, 1.0), theirs, reference_shares.get(arch, 1.0), why)
    ours_only = {arch: classify_regime(arch, ours_metrics, zeror) for arch in archs if arch not in reference}
    return Comparison(cells, regimes, ours_only, [arch for arch in reference if arch not in ours], skipped, alpha)


def report(comparison: Comparison, console: Console) -> None:
    table = Table(title=f"Means that differ (adjusted p < {comparison.alpha:g})")
    for column in ("Architecture", "Mode", "Ours", "Reference", "Difference", "p", "adjusted p"):
        table.add_column(column, justify="left" if column in ("Architecture", "Mode") else "right")
    for cell in sorted(comparison.disagreements, key=lambda c: c.p_adjusted):
        table.add_row(
            cell.arch,
            cell.mode,
            f"{cell.ours_mean:.2f} ± {cell.ours_std:.2f}",
            f"{cell.reference_mean:.2f} ± {cell.reference_std:.2f}",
            f"{cell.difference:+.2f}",
            f"{cell.p:.2g}",
            f"{cell.p_adjusted:.2g}",
        )
    if comparison.disagreements:
        console.print(table)
    regimes = Table(title="Regimes (stability: the share of resamples of a side's own trials that keep its label)")
    for column in ("Architecture", "Ours", "Stability", "Reference", "Stability ", "Verdict"):
        regimes.add_column(column, justify="right" if column.startswith("Stability") else "left")
    for arch, pair in comparison.regimes.items():
        if pair.verdict != "agree":
            ours, theirs = f"{pair.ours_stability:.0%}", f"{pair.reference_stability:.0%}"
            regimes.add_row(arch, pair.ours, ours, pair.reference, theirs, pair.verdict)
    if regimes.rows:
        console.print(regimes)
    console.print(
        f"{len(comparison.cells)} architecture/mode cells compared: {len(comparison.disagreements)} differ "
        f"significantly; of {len(comparison.regimes)} architectures' regimes, {comparison.count('agree')} agree, "
        f"{comparison.count('differ beyond sampling noise')} differ beyond sampling noise, "
        f"{comparison.count('undecided')} are undecided and {comparison.count('not compared')} could not be "
        f"compared."
    )
    if comparison.ours_only:
        ours = ", ".join(f"{arch} ({REGIMES[regime][0]})" for arch, regime in comparison.ours_only.items())
        console.print(f"[yellow]not in the reference, so not compared (our regime):[/] {ours}", soft_wrap=True)
    if comparison.reference_only:
        console.print(
            f"[yellow]not compared, never run on our side:[/] {len(comparison.reference_only)} of the reference's "
            f"architectures: {', '.join(comparison.reference_only)}",
            soft_wrap=True,
        )
    if comparison.skipped:
        console.print(f"[yellow]not compared (fewer than two trials on a side):[/] {', '.join(comparison.skipped)}")


def settings_differences(ours: list[dict], reference: list[dict]) -> list[str]:
    """What the two studies were run with that differs, from their manifests: a researcher's variant
    against a baseline is compared on different settings, and that comes first."""
    names = ("family", "trials", "meta_loops", "seeding", "hyper")

    def values(manifest: list[dict]) -> dict[str, set]:
        found: dict[str, set] = {}
        for run in manifest:
            settings = run.get("settings") or {}
            for name in names:
                if name in settings:
                    found.setdefault(name, set()).add(json.dumps(settings[name], sort_keys=True))
        return found

    mine, theirs = values(ours), values(reference)
    return [
        f"{name}: {' / '.join(sorted(mine[name]))} vs {' / '.join(sorted(theirs[name]))}"
        for name in names
        if name in mine and name in theirs and mine[name] != theirs[name]
    ]


def to_json(comparison: Comparison, convergence: ConvergenceComparison | None, settings: list[str]) -> dict:
    """The comparison as JSON holds it (`psa compare --json`)."""
    return {
        "settings_differ": settings,
        "cells": [
            {
                "arch": c.arch,
                "mode": c.mode,
                "ours_mean": c.ours_mean,
                "ours_std": c.ours_std,
                "reference_mean": c.reference_mean,
                "reference_std": c.reference_std,
                "difference": c.difference,
                "t": c.t,
                "p": c.p,
                "p_adjusted": c.p_adjusted,
                "significant": c.p_adjusted < comparison.alpha,
            }
            for c in comparison.cells
        ],
        "regimes": {
            arch: {
                "ours": pair.ours,
                "ours_stability": pair.ours_stability,
                "reference": pair.reference,
                "reference_stability": pair.reference_stability,
                "verdict": pair.verdict,
            }
            for arch, pair in comparison.regimes.items()
        },
        "ours_only": comparison.ours_only,
        "reference_only": comparison.reference_only,
        "skipped": comparison.skipped,
        "convergence": [
            {"loop": loop.loop, "cells": len(loop.cells), "mean_difference": float(loop.differences().mean())}
            for loop in (convergence.loops if convergence else [])
            if loop.cells
        ],
    }
