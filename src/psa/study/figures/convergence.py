"""`make-convergence-plots`: the paper's convergence figure, validation accuracy over the
meta-loops of one architecture per regime, stacked; and its late-breakthrough figure, the same for
chaotic architectures whose accuracy rose late (docs/DESIGN.md section 6).

A curve is drawn by one of three rules, and the caption names it. The paper's (default): of each
architecture and mode, the single trial whose accuracy peaked highest, from per-trial rows (psa's
per-trial export or a folder of job logs). --loop-max: psa's study row, per meta-loop the best
accuracy over the trials, which no trial need have reached. --spread: the mean over the trials
with a band of one standard deviation."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from psa.errors import PSAError
from psa.study import tables
from psa.study.figures import MODE_STYLE, ZEROR_STYLE, save
from psa.study.regimes import REGIMES, calculate_summary_metrics, classify_regime
from psa.study.results import read_trials
from psa.study.series import SeriesRow, best_trials, read_series, study_rows
from psa.trial.architecture import FAMILY_TITLES
from psa.trial.modes import MODES

TARGETS = ("1*2048", "4*47", "18*18", "47*4")  # the paper's convergence figure, one per regime
BREAKTHROUGHS = ("18*18", "17*17", "10*10", "4*2")  # the paper's late-breakthrough figure
PAIRED = "Paired seeds: trial k of every mode shares its initial weights and data order."
RULES = {  # how a curve is made from a cell's trials -> the caption that says so
    "best-trial": "Each line: the trial of its mode with the highest peak accuracy (the paper's rule).",
    "loop-max": "Each line: per meta-loop, the best accuracy over the trials (psa's study row).",
    "spread": "Lines: mean over trials; bands: one standard deviation.",
}
# The paper's convergence figure names regime IV after its cause; its regime map, like psa's
# machine labels, says untrainable.
BOX_NAMES = {"untrainable": "IV. Architectural Failure"}
MARGIN = 0.05  # of the data's range, below and above it, as the paper's axes
WIDTH, LEFT, RIGHT = 6.0, 0.8, 0.15  # inches
HEADER, PLOT, TICKS = 0.34, 1.85, 0.3  # inches: a panel's title line, plot and tick labels
LEGEND, LINE = 0.72, 0.2  # inches: the legend on top, a caption line
MARKS = 10  # markers per curve, staggered between modes so that coinciding curves all show theirs


def _scores(row: SeriesRow) -> list[float]:
    """The loops the row's trials reached (psa pads shorter ones with N/A)."""
    values = list(row.values)
    while values and values[-1] is None:
        values.pop()
    return [np.nan if v is None else v for v in values]


def drawn(rows: list[SeriesRow], rule: str, source) -> list[SeriesRow]:
    """The rows the rule draws: a row per cell, or for `spread` every trial's."""
    if rule == "loop-max":
        return study_rows(rows)
    trials = [row for row in rows if row.trial is not None]
    if not trials:
        raise PSAError(
            f"{source} has no per-trial rows, and the {rule} rule needs them (psa export writes "
            "psa_<family>_trials_convergence_per_trial.md; --logs-dir reads job logs); --loop-max draws the study rows"
        )
    return best_trials(trials) if rule == "best-trial" else trials


def curves(rows: list[SeriesRow], arch: str, spread: bool) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per mode of `arch`: the curve of its drawn row; with `spread`, the mean over its rows and
    their standard deviation."""
    out = {}
    for mode in MODES:
        cell = [_scores(r) for r in rows if r.arch == arch and r.mode == mode]
        if cell:
            loops = max(map(len, cell))
            table = np.array([scores + [np.nan] * (loops - len(scores)) for scores in cell])
            out[mode] = (np.nanmean(table, axis=0), np.nanstd(table, axis=0)) if spread else (table[0], None)
    return out


def regime_labels(trials_file: Path | None, zeror: float) -> dict[str, str]:
    """Architecture -> regime label, from a trials table; {} without one."""
    if trials_file is None:
        return {}
    metrics = calculate_summary_metrics(read_trials(trials_file))
    return {arch: classify_regime(arch, metrics, zeror) for arch in metrics}


def representatives(archs: list[str], regimes: dict[str, str]) -> list[str]:
    """The paper's targets when all are there; else the first architecture of each known regime,
    then the others in order, four at most: a study of four architectures or fewer shows them all."""
    if set(TARGETS) <= set(archs):
        return list(TARGETS)
    known = [r for r in REGIMES if r != "unknown" and r in {regimes.get(a) for a in archs}]
    chosen = [next(a for a in archs if regimes.get(a) == r) for r in known]
    return (chosen + [arch for arch in archs if arch not in chosen])[:4]


def late_breakthroughs(rows: list[SeriesRow], regimes: dict[str, str], count: int = 4) -> list[str]:
    """The architectures whose best-so-far accuracy (any mode, the rows drawn) rose most after the
    first quarter of the meta-loops; only chaotic ones when any are known."""
    gains: dict[str, float] = {}
    for row in rows:
        best = np.fmax.accumulate(np.nan_to_num(_scores(row), nan=0.0))
        if len(best):
            gains[row.arch] = max(gains.get(row.arch, 0.0), float(best[-1] - best[(len(best) - 1) // 4]))
    chaotic = [arch for arch in gains if regimes.get(arch) == "chaotic-optimization"]
    return sorted(chaotic or gains, key=lambda arch: (-gains[arch], arch))[:count]


def panels_figure(
    rows: list[SeriesRow],
    targets: list[str],
    output_file,
    zeror: float,
    regimes: dict[str, str],
    rule: str = "best-trial",
    paired: bool = False,
) -> Path:
    """The targets' curves (`rows` as `drawn` gives them) in stacked panels, each under its
    regime's box, one legend on top and the rule's caption under it."""
    caption = [RULES[rule]] + [PAIRED] * paired
    top = LEGEND + LINE * len(caption)
    height = top + len(targets) * (HEADER + PLOT + TICKS) + LINE
    fig = plt.figure(figsize=(WIDTH, height))
    for k, arch in enumerate(targets):
        bottom = height - top - (k + 1) * (HEADER + PLOT + TICKS) + TICKS
        ax = fig.add_axes(((LEFT / WIDTH), bottom / height, 1 - (LEFT + RIGHT) / WIDTH, PLOT / height))
        _panel(ax, curves(rows, arch, rule == "spread"), zeror)
        ax.set_title(f"Architecture {arch}", loc="right", pad=4)
        if arch in regimes:
            name, colour = REGIMES[regimes[arch]]
            name = BOX_NAMES.get(regimes[arch], name)
            ax.text(
                0,
                1.0,
                name,
                transform=ax.transAxes,
                ha="left",
                va="bottom",
                fontweight="bold",
                fontsize=9.5,
                bbox={"boxstyle": "round,pad=0.25", "facecolor": to_rgba(colour, 0.25), "edgecolor": colour},
            )
    ax.set_xlabel("Meta-Loop")
    handles = [
        Line2D([], [], color=colour, linestyle=style, marker=marker, markersize=4, label=name, linewidth=_width(mode))
        for mode, (name, colour, style, marker) in MODE_STYLE.items()
    ]
    handles.append(Line2D([], [], **ZEROR_STYLE, label=f"ZeroR Baseline ({zeror:.2f}%)"))
    fig.legend(
        handles=handles,
        ncol=3,
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - 0.04 / height),
        frameon=False,
        columnspacing=1.5,
        handlelength=2.6,
        labelspacing=0.3,
    )
    for line, text in enumerate(caption):
        fig.text(
            0.5,
            1 - (LEGEND + LINE * (line + 0.6)) / height,
            text,
            ha="center",
            va="center",
            fontsize=8.5,
            style="italic",
        )
    return save(fig, output_file)


def _panel(ax, by_mode: dict, zeror: float) -> None:
    low, high = [], []
    for mode, (curve, std) in by_mode.items():
        _, colour, style, marker = MODE_STYLE[mode]
        k = MODES.index(mode)
        loops = np.arange(1, len(curve) + 1)
        every = max(1, round(len(curve) / MARKS))
        # Where curves coincide, the control's wide line shows on both sides of the others, their
        # markers are staggered along the curve and, drawn one size smaller each, nest.
        ax.plot(
            loops,
            curve,
            color=colour,
            alpha=0.85,
            linestyle=style,
            linewidth=_width(mode),
            marker=marker,
            markersize=6 - 0.6 * k,
            markevery=(k * every // len(MODE_STYLE), every),
            markeredgecolor="0.25",
            markeredgewidth=0.4,
        )
        if std is not None:
            ax.fill_between(loops, curve - std, curve + std, color=colour, alpha=0.12, linewidth=0)
            curve = np.concatenate([curve - std, curve + std])
        low.append(np.nanmin(curve))
        high.append(np.nanmax(curve))
    ax.axhline(zeror, **ZEROR_STYLE)
    # A log scale, as the paper's: curves failing near ZeroR keep as much room as those near the top.
    ax.set_yscale("log")
    if low:
        # The data's range and 5 % of it either side; at least a point wide, so flat curves get
        # ticks; never under 1 %, which the log scale would stretch.
        lo, hi = min(low), max(high)
        middle, half = (lo + hi) / 2, max(hi - lo, 1.0) * (0.5 + MARGIN)
        ax.set_ylim(max(1.0, middle - half), min(100.0, middle + half))
        ax.set_xlim(0.5, max(len(c) for c, _ in by_mode.values()) + 0.5)
        ax.yaxis.set_major_locator(FixedLocator(_log_ticks(*ax.get_ylim())))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.1f}%"))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_ylabel("Validation Accuracy")
    ax.grid(True, color="0.9", linewidth=0.6)


def _log_ticks(low: float, high: float) -> list[float]:
    """Round values evenly spaced in percent (a log locator finds at most one decade mark in so
    short a range), thinned from the top down where the log scale crowds them together: the top,
    where trained networks end, keeps its mark."""
    span, kept = np.log10(high / low), []
    for tick in reversed(MaxNLocator(nbins=8, steps=[1, 2, 5, 10]).tick_values(low, high)):
        if low <= tick <= high and (not kept or np.log10(kept[-1] / tick) >= span / 9):
            kept.append(float(tick))
    return kept[::-1]


def study_figures(
    convergence_file, output_dir, family: str, zeror: float, archs: list[str], trials_file=None
) -> list[Path]:
    """Both figures of a study's per-trial export by the paper's rule (`psa reproduce`): the
    paper's architectures where the grid has them all, else one per regime and the largest late gains."""
    rows = drawn(read_series(convergence_file), "best-trial", convergence_file)
    regimes = regime_labels(trials_file, zeror)
    paired = tables.read_settings(convergence_file).get("seeding") == "paired"
    breakthroughs = list(BREAKTHROUGHS) if set(BREAKTHROUGHS) <= set(archs) else late_breakthroughs(rows, regimes)
    title = FAMILY_TITLES[family]
    return [
        panels_figure(rows, targets, Path(output_dir) / f"{title}_Plot_{name}.png", zeror, regimes, paired=paired)
        for targets, name in ((representatives(archs, regimes), "Convergence"), (breakthroughs, "Late_Breakthroughs"))
    ]


def _width(mode: str) -> float:
    return 2.8 if mode == "none" else 1.3
