"""Compare a reproduction's trials table with a reference study, architecture by architecture and
mode by mode: means, stds, Welch's two-sample t-test with a multiple-comparison correction, and
whether both studies put each architecture in the same regime."""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from psa import PSAError, options
from psa.modes import MODES
from psa.regimes import calculate_summary_metrics, classify_regime, resolve_zeror
from psa.results import Trials, mode_stats, read_trials


# ---------------------------------------------------------------------------------------------
# Welch's t-test; the t distribution's tail through the regularised incomplete beta function.


def incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only below this point
        return 1.0 - incomplete_beta(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-14:
            break
    return front * (f - 1.0)


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def welch_test(a: list[float], b: list[float]) -> tuple[float, float]:
    """(t, two-sided p) of Welch's unequal-variance t-test. Two constant samples: p is 1 if they
    agree and 0 if not (a zero-variance difference is certain)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    if len(x) < 2 or len(y) < 2:
        raise PSAError("Welch's t-test needs at least two trials on each side")
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff = x.mean() - y.mean()
    if vx + vy == 0:
        return (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    t = float(diff / math.sqrt(vx + vy))
    df = float((vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1)))
    return t, t_two_sided_p(t, df)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error), in the input order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order."""
    n = len(p_values)
    order = sorted(range(n), key=lambda i: p_values[i], reverse=True)
    adjusted, running = [0.0] * n, 1.0
    for position, i in enumerate(order):
        running = min(running, p_values[i] * n / (n - position))
        adjusted[i] = running
    return adjusted


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}


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
class Comparison:
    cells: list[CellComparison]
    regimes: dict[str, tuple[str, str]]  # arch -> (ours, reference)
    skipped: list[str]  # "arch/mode" cells one side lacks
    alpha: float

    @property
    def disagreements(self) -> list[CellComparison]:
        return [cell for cell in self.cells if cell.p_adjusted < self.alpha]

    @property
    def regime_disagreements(self) -> dict[str, tuple[str, str]]:
        return {arch: pair for arch, pair in self.regimes.items() if pair[0] != pair[1]}


def compare_trials(ours: Trials, reference: Trials, zeror: float, alpha: float = 0.05, correction: str = "holm") -> Comparison:
    """Every architecture and mode with at least two trials on both sides is tested; the p-values
    are adjusted together, since a reproduction is judged on all of them at once."""
    if correction not in CORRECTIONS:
        raise PSAError(f"unknown correction {correction!r}: choose {' or '.join(CORRECTIONS)}")
    cells, skipped = [], []
    for arch in [a for a in reference if a in ours]:
        for mode in MODES:
            a = [v for v in ours[arch].get(mode, []) if v is not None]
            b = [v for v in reference[arch].get(mode, []) if v is not None]
            if len(a) < 2 or len(b) < 2:
                skipped.append(f"{arch}/{mode}")
                continue
            sa, sb = mode_stats(a), mode_stats(b)
            cells.append(CellComparison(arch, mode, sa.mean, sa.std, sb.mean, sb.std, *welch_test(a, b)))
    for cell, adjusted in zip(cells, CORRECTIONS[correction]([c.p for c in cells])):
        cell.p_adjusted = adjusted
    ours_metrics, reference_metrics = calculate_summary_metrics(ours), calculate_summary_metrics(reference)
    regimes = {
        arch: (classify_regime(arch, ours_metrics, zeror), classify_regime(arch, reference_metrics, zeror))
        for arch in reference if arch in ours
    }
    return Comparison(cells, regimes, skipped, alpha)


def report(comparison: Comparison, console: Console) -> None:
    table = Table(title=f"Means that differ (adjusted p < {comparison.alpha:g})")
    for column in ("Architecture", "Mode", "Ours", "Reference", "Difference", "p", "adjusted p"):
        table.add_column(column, justify="left" if column in ("Architecture", "Mode") else "right")
    for cell in sorted(comparison.disagreements, key=lambda c: c.p_adjusted):
        table.add_row(cell.arch, cell.mode, f"{cell.ours_mean:.2f} ± {cell.ours_std:.2f}",
                      f"{cell.reference_mean:.2f} ± {cell.reference_std:.2f}", f"{cell.difference:+.2f}",
                      f"{cell.p:.2g}", f"{cell.p_adjusted:.2g}")
    if comparison.disagreements:
        console.print(table)
    regimes = Table(title="Regimes that differ")
    for column in ("Architecture", "Ours", "Reference"):
        regimes.add_column(column)
    for arch, (ours, reference) in comparison.regime_disagreements.items():
        regimes.add_row(arch, ours, reference)
    if comparison.regime_disagreements:
        console.print(regimes)
    agree = len(comparison.regimes) - len(comparison.regime_disagreements)
    console.print(
        f"{len(comparison.cells)} architecture/mode cells compared: {len(comparison.disagreements)} differ "
        f"significantly; regimes agree for {agree} of {len(comparison.regimes)} architectures."
    )
    if comparison.skipped:
        console.print(f"[yellow]not compared (fewer than two trials on a side):[/] {', '.join(comparison.skipped)}")


def run(args) -> None:
    ours, reference = read_trials(args.ours), read_trials(args.reference)
    common = [arch for arch in reference if arch in ours]
    if not common:
        raise PSAError(f"{args.ours} and {args.reference} share no architecture")
    comparison = compare_trials(ours, reference, resolve_zeror(args.zeror, args.data_dir), args.alpha, args.correction)
    report(comparison, Console())


def configure(parser) -> None:
    parser.add_argument("--ours", type=Path, required=True, help="trials table of the reproduction")
    parser.add_argument("--reference", type=Path, required=True, help="trials table of the reference study")
    parser.add_argument("--alpha", type=options.number(0, 1, low_open=True, high_open=True), default=0.05,
                        help="significance level after correction")
    parser.add_argument("--correction", choices=tuple(CORRECTIONS), default="holm",
                        help="holm: family-wise error; bh: Benjamini-Hochberg false discovery rate")
    parser.add_argument("--zeror", type=options.PERCENT, help="regime failure threshold, percent (default: from MNIST)")
    options.add_data_dir(parser)
    parser.set_defaults(func=run)
