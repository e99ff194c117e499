"""`make-figure-heatmaps`: the paper's six maps of the design space, each a scatter of circles at
(depth, width): training regimes, baseline performance, ablation effects, instability, winning
strategy and parameter matching. Architectures that fail to train (regime IV, the paper's
Architectural Failure) are black wherever the paper draws them so, and every map carries a numeric
key: a colour bar, or a legend of its colours and sizes. The maps show the architectures that the
trials table holds (psa.study.regimes.architectures)."""

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LinearSegmentedColormap, LogNorm, Normalize
from matplotlib.lines import Line2D

from psa.errors import PSAError
from psa.published import ASYMMETRIC
from psa.study.figures import MODE_STYLE, UNTRAINABLE, save
from psa.study.figures.labels import label_archs, marker_radius
from psa.study.figures.space import diagonal, fit_axes, key_anchor, key_axes, legend_above, map_figure, scatter
from psa.study.regimes import (
    REGIMES,
    architectures,
    calculate_summary_metrics,
    classify_regime,
    resolve_zeror,
    stability,
)
from psa.study.results import read_trials
from psa.study.stats import cohens_d, welch
from psa.trial.architecture import FAMILY_TITLES, Architecture, read_configurations
from psa.trial.modes import MODES
from psa.trial.topology import parameter_count

# The paper's colour maps, their stops sampled from its colour bars.
BASELINE_MAP = LinearSegmentedColormap.from_list("baseline", ["#1565c0", "#4caf50"])
INSTABILITY_MAP = LinearSegmentedColormap.from_list(
    "instability", ["#1b5e20", "#7cb342", "#ffeb3b", "#ff8a65", "#e53935"]
)
PARAMETER_MAP = LinearSegmentedColormap.from_list(
    "parameters", [(0.0, "black"), (0.2, "red"), (0.6, "yellow"), (0.8, "lime"), (1.0, "cyan")]
)
EFFECTS = {
    "beneficial": ("Beneficial", "#4caf50"),
    "harmful": ("Harmful", "#e53935"),
    "neutral": ("Neutral", "#a1887f"),
}
SIGNIFICANCE = 0.05
INSTABILITY_CAP = 5.0  # points of standard deviation at which the instability colour saturates, as the paper's bar
DOT, SMALL_DOT = 46.0, 26.0  # marker areas, points squared
EFFECT_AREA, EFFECT_FLOOR = 90.0, 10.0  # marker area: points squared per unit of |Cohen's d|, plus a visible minimum
EFFECT_KEY = (0.5, 2.0, 5.0)  # |d| of the size legend's circles
EDGE = {"edgecolors": "black", "linewidths": 0.5}
FRAGILE, FRAGILE_RING = 0.9, "#ff9800"  # a regime fewer resamples keep is ringed, in this colour


def ablation_effect(control: list[float], ablated: list[float]) -> tuple[str, float]:
    """(beneficial / harmful / neutral, Cohen's d) of full ablation against the control: Welch's
    t-test at 5%, d over the pooled standard deviation (psa.study.stats). This reading of the paper's map
    gives its colour to 50 of its 51 trainable architectures (8*8 is neutral there, p = 0.03 here).
    Fewer than two trials on a side test nothing: neutral, d 0."""
    t, p = welch(ablated, control)
    if math.isnan(p):
        return "neutral", 0.0
    return ("neutral" if p >= SIGNIFICANCE else "beneficial" if t > 0 else "harmful"), cohens_d(ablated, control)


def dot(colour: str, label: str, size: float = 7.0, marker: str = "o") -> Line2D:
    return Line2D(
        [],
        [],
        marker=marker,
        linestyle="",
        markersize=size,
        markerfacecolor=colour,
        markeredgecolor="black",
        markeredgewidth=0.5,
        label=label,
    )


def heatmap_figures(
    config_file,  # orders the architectures, or None (psa.study.regimes.architectures)
    trials_file,
    output_dir,
    family: str = "simplemlp",
    zeror: float | None = None,
    asymmetric_file=ASYMMETRIC,
    bootstrap: int = 0,
) -> list[Path]:
    """The six maps of the architectures that the trials file holds; with `bootstrap`, the regime
    map rings the architectures whose regime fewer than 90% of that many resamples of their trials
    keep (psa.study.regimes.stability)."""
    trials = read_trials(trials_file)
    archs = architectures(trials, config_file, trials_file)
    metrics = calculate_summary_metrics(trials)
    missing = [str(a) for a in archs if any(metrics.get(str(a), {}).get(m) is None for m in MODES)]
    if missing:
        raise PSAError(
            f"{trials_file}: no results for every mode of {', '.join(missing[:8])}"
            f"{' ...' if len(missing) > 8 else ''}; heat maps need all six modes"
        )
    z = resolve_zeror(zeror)
    stats = [metrics[str(a)] for a in archs]
    regimes = [classify_regime(str(a), metrics, z) for a in archs]
    dead = [r == "untrainable" for r in regimes]
    alive = [a for a, d in zip(archs, dead) if not d]
    title, prefix, outputs = FAMILY_TITLES[family], Path(output_dir) / f"{FAMILY_TITLES[family]}_Heatmap", []

    def untrainable(ax, size: float = DOT, **style) -> list:
        """Draw the untrainable architectures black; their legend entry, if there are any."""
        dark = [a for a, d in zip(archs, dead) if d]
        if dark:
            scatter(ax, dark, UNTRAINABLE, size, **style)
        return [dot(UNTRAINABLE, "Architectural Failure")] if dark else []

    names = [REGIMES[r][0] for r in REGIMES if r in regimes]
    fig, ax = map_figure(f"{title} Design Space: Training Regimes", legend_rows=1 + math.ceil(len(names) / 2))
    fit_axes(ax, archs)
    diagonal(ax)
    scatter(ax, archs, [REGIMES[r][1] for r in regimes], DOT, **EDGE)
    handles = [dot(REGIMES[r][1], REGIMES[r][0]) for r in REGIMES if r in regimes]
    if bootstrap:
        shares = stability(trials, z, bootstrap)
        fragile = [a for a in archs if shares[str(a)] < FRAGILE]
        if fragile:
            scatter(ax, fragile, "none", DOT * 3.2, edgecolors=FRAGILE_RING, linewidths=1.4)
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    linestyle="",
                    markersize=11,
                    markerfacecolor="none",
                    markeredgecolor=FRAGILE_RING,
                    markeredgewidth=1.4,
                    label=f"kept by < {FRAGILE:.0%} of {bootstrap} resamples",
                )
            )
    legend_above(fig, ax, handles, f"Training Regime (failure threshold: ZeroR {z:.2f}%)", ncol=2)
    label_archs(ax, archs, [marker_radius(DOT) + 0.5] * len(archs))
    outputs.append(save(fig, f"{prefix}_Regimes.png"))

    fig, ax = map_figure("Baseline Performance (Control Model)", legend_rows=1, keyed=True)
    fit_axes(ax, archs)
    norm = Normalize(z, 100.0)
    scatter(ax, alive, [BASELINE_MAP(norm(metrics[str(a)]["none"].mean)) for a in alive], SMALL_DOT * 1.4, alpha=0.8)
    legend_above(fig, ax, untrainable(ax, SMALL_DOT * 1.4, alpha=0.7))
    fig.colorbar(
        plt.cm.ScalarMappable(norm, BASELINE_MAP),
        cax=key_axes(fig, ax),
        label="Baseline Accuracy (%), mean of Control (None)",
    )
    outputs.append(save(fig, f"{prefix}_Baseline_Performance.png"))

    fig, ax = map_figure("Ablation Effects (Statistical Significance)", legend_rows=2, keyed=True)
    effects = [
        ablation_effect(*[[v for v in trials[str(a)][m] if v is not None] for m in ("none", "full")]) for a in alive
    ]
    areas = [EFFECT_AREA * min(abs(d), 2 * EFFECT_KEY[-1]) + EFFECT_FLOOR for _, d in effects]
    fit_axes(ax, archs, reach=float(marker_radius(max(areas, default=0.0))) / 72)
    scatter(ax, alive, [EFFECTS[kind][1] for kind, _ in effects], areas, alpha=0.7, linewidths=0)
    dark = untrainable(ax, SMALL_DOT, alpha=0.7)
    legend_above(
        fig,
        ax,
        [dot(colour, name) for name, colour in EFFECTS.values()] + dark,
        f"Full Ablation vs Control (None): Welch's t-test, p < {SIGNIFICANCE:g}",
    )
    fig.legend(
        handles=[dot("0.6", f"{d:g}", math.sqrt(EFFECT_AREA * d + EFFECT_FLOOR)) for d in EFFECT_KEY],
        title="Effect size\n|Cohen's d|",
        loc="center left",
        bbox_to_anchor=key_anchor(fig, ax),
        frameon=False,
        labelspacing=1.6,
        borderpad=0.2,
    )
    outputs.append(save(fig, f"{prefix}_Ablation_Effects.png"))

    fig, ax = map_figure("Instability (Max Std across Six Ablation Modes)", legend_rows=1, keyed=True)
    fit_axes(ax, archs)
    norm = Normalize(0.0, INSTABILITY_CAP, clip=True)
    scatter(
        ax,
        alive,
        [INSTABILITY_MAP(norm(max(metrics[str(a)][m].std for m in MODES))) for a in alive],
        SMALL_DOT * 1.4,
        alpha=0.8,
    )
    legend_above(fig, ax, untrainable(ax, SMALL_DOT * 1.4, alpha=0.7))
    fig.colorbar(
        plt.cm.ScalarMappable(norm, INSTABILITY_MAP),
        cax=key_axes(fig, ax),
        extend="max",
        label="Max Standard Deviation (%)",
    )
    outputs.append(save(fig, f"{prefix}_Instability.png"))

    # Peak performance, as the paper's map: the mode whose best trial scored highest.
    winners = [max(MODES, key=lambda m: s[m].max) for s in stats]
    present = [m for m in MODES if any(w == m and not d for w, d in zip(winners, dead))]
    # Three columns: "Architectural Failure" and the ablation modes' names are too wide for four.
    rows = 1 + math.ceil((any(dead) + len(present)) / 3)
    fig, ax = map_figure(f"{title} Design Space: Peak Performance Strategy Map", legend_rows=rows)
    fit_axes(ax, archs)
    scatter(ax, alive, [MODE_STYLE[w][1] for w, d in zip(winners, dead) if not d], DOT, **EDGE)
    dark = untrainable(ax, **EDGE)
    legend_above(
        fig,
        ax,
        dark + [dot(MODE_STYLE[m][1], MODE_STYLE[m][0]) for m in present],
        "Winning Mode (highest peak accuracy of any trial)",
        ncol=3,
    )
    outputs.append(save(fig, f"{prefix}_Winning_Strategy.png"))

    fig, ax = map_figure(f"{title} Design Space: Parameter Matching & Asymmetries", legend_rows=1, keyed=True)
    parameter_matching(fig, ax, archs, family, asymmetric_file)
    outputs.append(save(fig, f"{prefix}_Parameter_Matching.png"))
    return outputs


def parameter_matching(fig, ax, archs: list[Architecture], family: str, asymmetric_file) -> None:
    """Circles for the parameter-matched architectures, triangles for the study's asymmetric ones;
    colour and size both grow with the parameter count."""
    asymmetric = {str(a) for a in read_configurations(asymmetric_file)}
    counts = np.array([parameter_count(a, family) for a in archs], dtype=float)
    norm = LogNorm(counts.min(), max(counts.max(), counts.min() * 1.01))
    sizes = 5 + 22 * np.log10(counts / counts.min())
    fit_axes(ax, archs)
    diagonal(ax)
    odd = np.array([str(a) in asymmetric for a in archs])
    shapes = []
    for shape, name, picked in (("o", "Matched (circle)", ~odd), ("^", "Asymmetric (triangle)", odd)):
        if picked.any():
            scatter(
                ax,
                [a for a, p in zip(archs, picked) if p],
                PARAMETER_MAP(norm(counts[picked])),
                sizes[picked],
                marker=shape,
                **EDGE,
            )
            shapes.append(dot("0.5", name, marker=shape))
    legend_above(fig, ax, shapes, ncol=2)
    bar = fig.colorbar(
        plt.cm.ScalarMappable(norm, PARAMETER_MAP), cax=key_axes(fig, ax), label="Parameter Count (Logarithmic)"
    )
    decades = [10.0**k for k in range(math.ceil(math.log10(norm.vmin)), math.floor(math.log10(norm.vmax)) + 1)]
    # The extremes are ticked too, unless a decade tick sits so close that the numbers would touch.
    ends = [v for v in (norm.vmin, norm.vmax) if all(abs(math.log10(v / d)) > 0.12 for d in decades)]
    bar.set_ticks(sorted(decades + ends), labels=[count_text(v) for v in sorted(decades + ends)])
    bar.minorticks_off()
    label_archs(ax, archs, [marker_radius(s) + 0.5 for s in sizes])


def count_text(count: float) -> str:
    """805, 1K, 10K, 1.7M: the paper's colour-bar ticks."""
    for scale, suffix in ((1e6, "M"), (1e3, "K")):
        if count >= scale:
            value = count / scale
            return f"{value:.0f}{suffix}" if value >= 10 or value == round(value) else f"{value:.1f}{suffix}"
    return f"{count:.0f}"
