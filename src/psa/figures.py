"""Publication figures (300 DPI PNG): the design space, six heat maps over it, and convergence
plots. The design space is drawn log-log, one square per architecture; labels sit in lanes beside
their square and are pushed apart along the lane, with curved leaders, so none overlap."""

import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, Normalize, to_rgb  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from psa import PSAError  # noqa: E402
from psa.architecture import FAMILIES, Architecture, read_configurations  # noqa: E402
from psa.modes import ABLATIVE_MODES, BASELINE_MODES, MODES  # noqa: E402
from psa.regimes import REGIMES, calculate_summary_metrics, classify_regime, resolve_zeror  # noqa: E402
from psa.results import (  # noqa: E402
    FAMILY_TITLES, SeriesRow, arch_key, default_path, read_series, read_trials, write_atomic,
)

DPI = 300
MAP_SIZE = (12.0, 9.0)  # inches, every design-space figure
MAP_AXES = (0.07, 0.07, 0.70, 0.86)  # left, bottom, width, height (figure fraction); the key goes right
WIDE_AXES = (0.07, 0.07, 0.90, 0.86)
KEY_AXES = (0.80, 0.25, 0.02, 0.60)
MODE_STYLE = {  # TOOLS.md colours; yellow and cyan darkened enough to read on white
    "none": ("Control (None)", "saddlebrown"),
    "decay": ("Weight Decay", "purple"),
    "dropout": ("Dropout", "hotpink"),
    "hidden": ("Hidden Ablation", "goldenrod"),
    "output": ("Output Ablation", "darkturquoise"),
    "full": ("Full Ablation", "darkorange"),
}
EFFECTS = {"beneficial": "forestgreen", "harmful": "firebrick", "neutral": "peru"}
FULL_EFFECT = 2.0  # accuracy points at which the ablation-effect shade saturates
SQUARE = 0.055  # side of an architecture's square, in decades
FONT = 6.5  # label size, points
TICK_SPACING = 0.04  # decades between percent ticks of the convergence plots
LIMITS = ((0.5, 5000.0), (0.5, 2500.0))  # width, depth


# ---------------------------------------------------------------------------------------------
# Shared plumbing.


def save(fig, path: Path | str) -> Path:
    """Write `fig` as a 300 DPI PNG (atomically), and release it whatever happens."""
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    finally:
        plt.close(fig)


def spread(desired: list[float], gap: float) -> list[float]:
    """Positions as close to the sorted `desired` ones as possible, at least `gap` apart: runs that
    collide are merged and laid out evenly around their members' mean."""
    clusters: list[list[float]] = []
    for position in desired:
        clusters.append([position])
        while len(clusters) > 1 and _start(clusters[-2], gap) + gap * len(clusters[-2]) > _start(clusters[-1], gap):
            clusters[-2:] = [clusters[-2] + clusters[-1]]
    return [_start(members, gap) + gap * i for members in clusters for i in range(len(members))]


def _start(members: list[float], gap: float) -> float:
    return sum(members) / len(members) - gap * (len(members) - 1) / 2


def position(arch: Architecture) -> tuple[float, float]:
    """(log10 width, log10 depth); a mixed-width architecture sits at its widest layer."""
    return math.log10(max(arch.widths)), math.log10(arch.depth)


def label_layout(archs: list[Architecture], texts: list[str], ax) -> list[tuple[float, float, str, str, bool]]:
    """(x, y, horizontal alignment, vertical alignment, leader?) per label, in data coordinates.
    Wide-and-shallow architectures are labelled below their square, deep-and-narrow ones to its
    right, and the square ones of the diagonal alternate between two lanes beside it."""
    box = ax.get_position()
    fig_w, fig_h = ax.figure.get_size_inches()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    per_x = box.width * fig_w / math.log10(x1 / x0)  # inches per decade
    per_y = box.height * fig_h / math.log10(y1 / y0)
    line = 1.35 * FONT / 72  # inches per label line

    lanes = defaultdict(list)  # lane -> [(index, coordinate along the lane)]
    # The upper-left lane would run into the labels of the narrow columns (width <= 4) below
    # depth ~20, so small square architectures all take the lower lane; the crowded rest alternate.
    crowded = sorted((i for i, a in enumerate(archs) if a.depth == max(a.widths) >= 16), key=lambda i: archs[i].depth)
    for i, arch in enumerate(archs):
        u, v = position(arch)
        if arch.depth == max(arch.widths):
            upper = i in crowded and crowded.index(i) % 2 == 1
            lanes["upper" if upper else "lower"].append((i, u))
        elif v < u:
            lanes[("row", round(v, 6))].append((i, u))
        else:
            lanes[("column", round(u, 6))].append((i, v))

    layout = [None] * len(archs)
    for lane, members in lanes.items():
        members.sort(key=lambda member: member[1])
        longest = max(len(texts[i]) for i, _ in members) * 0.55 * FONT / 72
        lines = max(texts[i].count("\n") + 1 for i, _ in members)
        if lane in ("upper", "lower"):
            gap, offset = lines * line / per_y, 0.22
        elif lane[0] == "row":
            gap, offset = (longest + 0.08) / per_x, SQUARE / 2 + 0.02
        else:
            gap, offset = lines * line / per_y, SQUARE / 2 + 0.02
        for (i, along), placed in zip(members, spread([m[1] for m in members], gap)):
            u, v = position(archs[i])
            if lane == "upper":
                x, y, ha, va = placed - offset, placed + offset, "right", "center"
            elif lane == "lower":
                x, y, ha, va = placed + offset, placed - offset, "left", "center"
            elif lane[0] == "row":
                x, y, ha, va = placed, v - offset, "center", "top"
            else:
                x, y, ha, va = u + offset, placed, "left", "center"
            leader = lane in ("upper", "lower") or abs(placed - along) > 1e-9
            layout[i] = (10**x, 10**y, ha, va, leader)
    return layout


def draw_design_space(ax, archs: list[Architecture], colours: list, texts: list[str] | None = None, hatches=None) -> None:
    """One labelled square per architecture on log-log axes of width and depth."""
    texts = texts or [arch.label for arch in archs]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*LIMITS[0])
    ax.set_ylim(*LIMITS[1])
    ax.grid(True, which="major", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Width (neurons per hidden layer)")
    ax.set_ylabel("Depth (hidden layers)")
    half = 10 ** (SQUARE / 2)
    for i, (arch, colour) in enumerate(zip(archs, colours)):
        width, depth = 10 ** np.array(position(arch))
        ax.add_patch(Rectangle((width / half, depth / half), width * (half - 1 / half), depth * (half - 1 / half),
                               facecolor=colour, edgecolor="black", linewidth=0.4,
                               hatch=hatches[i] if hatches else None, zorder=3))
    for (width, depth), text, (x, y, ha, va, leader) in zip(
        (10 ** np.array(position(a)) for a in archs), texts, label_layout(archs, texts, ax)
    ):
        arrow = dict(arrowstyle="-", color="0.45", linewidth=0.4, connectionstyle="arc3,rad=0.15", shrinkA=0, shrinkB=1)
        ax.annotate(text, (width, depth), (x, y), ha=ha, va=va, fontsize=FONT, zorder=4,
                    arrowprops=arrow if leader else None)


def map_figure(title: str, keyed: bool = True):
    """A design-space figure; `keyed` leaves the right-hand side for a colour bar or legend."""
    fig = plt.figure(figsize=MAP_SIZE)
    ax = fig.add_axes(MAP_AXES if keyed else WIDE_AXES)
    ax.set_title(title, fontsize=13, pad=10)
    return fig, ax


def legend_key(fig, handles: list[Patch], title: str) -> None:
    fig.legend(handles=handles, title=title, loc="center left", bbox_to_anchor=(KEY_AXES[0], 0.5), frameon=False, fontsize=9)


def colour_key(fig, mappable, label: str) -> None:
    fig.colorbar(mappable, cax=fig.add_axes(KEY_AXES), label=label)


# ---------------------------------------------------------------------------------------------
# make-design-space-figure


def design_space_figure(config_file: Path | str, output_file: Path | str, family: str = "simplemlp") -> Path:
    archs = read_configurations(config_file)
    fig, ax = map_figure(f"{FAMILY_TITLES[family]} Testing Design Space: {len(archs)} architectures", keyed=False)
    draw_design_space(ax, archs, ["lightsteelblue"] * len(archs))
    return save(fig, output_file)


def run_design_space(args) -> None:
    output = args.output_file or Path("results") / f"{FAMILY_TITLES[args.family]}_Testing_Design_Space.png"
    print(design_space_figure(args.config_file, output, args.family))


def configure_design_space(parser) -> None:
    parser.add_argument("--config-file", type=Path, default=Path("reproduction/configurations.txt"))
    parser.add_argument("--output-file", type=Path, help="default: results/<Family>_Testing_Design_Space.png")
    parser.add_argument("--family", choices=FAMILIES, default="simplemlp")
    parser.set_defaults(func=run_design_space)


# ---------------------------------------------------------------------------------------------
# make-figure-heatmaps


def ablation_effect(stats: dict) -> tuple[str, float]:
    """Best ablative mean minus best baseline mean; neutral while within the larger std of the two."""
    base = max((stats[m] for m in BASELINE_MODES), key=lambda s: s.mean)
    ablative = max((stats[m] for m in ABLATIVE_MODES), key=lambda s: s.mean)
    delta = ablative.mean - base.mean
    if abs(delta) <= max(base.std, ablative.std):
        return "neutral", delta
    return ("beneficial" if delta > 0 else "harmful"), delta


def tint(colour: str, strength: float) -> np.ndarray:
    """`colour` mixed with white: strength 1 is the colour itself, 0 is white."""
    return strength * np.array(to_rgb(colour)) + (1 - strength) * np.ones(3)


def heatmap_figures(config_file, trials_file, output_dir, family: str = "simplemlp", zeror: float | None = None) -> list[Path]:
    archs = read_configurations(config_file)
    metrics = calculate_summary_metrics(read_trials(trials_file))
    missing = [str(a) for a in archs if any(metrics.get(str(a), {}).get(m) is None for m in MODES)]
    if missing:
        raise PSAError(f"{trials_file}: no results for every mode of {', '.join(missing[:8])}"
                       f"{' ...' if len(missing) > 8 else ''}; heat maps need all six modes")
    stats = [metrics[str(a)] for a in archs]
    prefix, outputs = Path(output_dir) / f"{FAMILY_TITLES[family]}_Heatmap", []

    def finish(fig, name):
        outputs.append(save(fig, f"{prefix}_{name}.png"))

    baseline = [s["none"].mean for s in stats]
    norm, cmap = Normalize(min(baseline), max(baseline)), plt.get_cmap("viridis")
    fig, ax = map_figure("Baseline performance: mean peak validation accuracy of the control (none)")
    draw_design_space(ax, archs, [cmap(norm(v)) for v in baseline])
    colour_key(fig, plt.cm.ScalarMappable(norm, cmap), "Mean peak accuracy, mode none (%)")
    finish(fig, "Baseline_Performance")

    effects = [ablation_effect(s) for s in stats]
    fig, ax = map_figure("Ablation effects: best ablative mode minus best baseline (means)")
    # Shade carries the size: pale for a fraction of a point, full colour from FULL_EFFECT points on.
    shades = [tint(EFFECTS[kind], 0.3 + 0.7 * min(1.0, abs(delta) / FULL_EFFECT)) for kind, delta in effects]
    draw_design_space(ax, archs, shades)
    legend_key(fig, [Patch(color=c, label=f"{k.capitalize()}") for k, c in EFFECTS.items()],
               f"PSA effect\nneutral: within one std\nfull colour: >= {FULL_EFFECT:g} points")
    finish(fig, "Ablation_Effects")

    instability = [max(s[m].std for m in MODES) for s in stats]
    norm, cmap = Normalize(0, max(instability)), plt.get_cmap("magma_r")
    fig, ax = map_figure("Instability: largest standard deviation over the six modes")
    draw_design_space(ax, archs, [cmap(norm(v)) for v in instability])
    colour_key(fig, plt.cm.ScalarMappable(norm, cmap), "Max std across modes (points)")
    finish(fig, "Instability")

    winners = [max(MODES, key=lambda m: s[m].mean) for s in stats]
    fig, ax = map_figure("Winning strategy: mode with the highest mean peak accuracy")
    draw_design_space(ax, archs, [MODE_STYLE[w][1] for w in winners])
    legend_key(fig, [Patch(color=c, label=name) for name, c in MODE_STYLE.values()], "Best mode")
    finish(fig, "Winning_Strategy")

    fig, ax = map_figure("Parameter matching: parameter count, with iso-parameter curves of the budgets")
    finish(parameter_matching(fig, ax, archs, family), "Parameter_Matching")

    z = resolve_zeror(zeror)
    regimes = [classify_regime(str(a), metrics, z) for a in archs]
    fig, ax = map_figure(f"Training regimes (rules of DESIGN.md section 6, ZeroR {z:.2f}%)")
    draw_design_space(ax, archs, [REGIMES[r][1] for r in regimes])
    legend_key(fig, [Patch(color=c, label=name) for label, (name, c) in REGIMES.items() if label in regimes], "Regime")
    finish(fig, "Regimes")
    return outputs


def parameter_matching(fig, ax, archs: list[Architecture], family: str):
    """Squares coloured by parameter count; the one-layer budgets drawn as iso-parameter curves,
    labelled along the curve, so matched architectures are seen to share a curve."""
    counts = [a.parameter_count(family) for a in archs]
    norm, cmap = LogNorm(min(counts), max(counts)), plt.get_cmap("cividis")
    draw_design_space(ax, archs, [cmap(norm(c)) for c in counts],
                      hatches=["////" if a.depth != 1 and a.depth > max(a.widths) else None for a in archs])
    widths, depths = np.meshgrid(np.geomspace(*LIMITS[0], 400), np.geomspace(1, LIMITS[1][1], 400))
    grid = uniform_parameter_count(widths, depths, family)
    budgets = sorted({c for a, c in zip(archs, counts) if a.depth == 1 and max(a.widths) >= 64})
    contours = ax.contour(widths, depths, grid, levels=budgets, colors="0.35", linewidths=0.6, linestyles="--", zorder=2)
    # Curve labels go near the top edge, where no architecture square or label lives.
    top = LIMITS[1][1] * 0.6
    spots = [(float(np.interp(b, uniform_parameter_count(widths[0], top, family), widths[0])), top) for b in budgets]
    ax.clabel(contours, fmt=lambda level: f"{level / 1e6:.2f}M" if level >= 1e6 else f"{level / 1e3:.0f}k",
              fontsize=7, inline=True, manual=spots)
    colour_key(fig, plt.cm.ScalarMappable(norm, cmap), "Parameters (log scale)")
    fig.legend(handles=[Patch(facecolor="white", edgecolor="black", hatch="////", label="deep and narrow (L > W)")],
               loc="lower left", bbox_to_anchor=(KEY_AXES[0], 0.1), frameon=False, fontsize=9)
    return fig


def uniform_parameter_count(width, depth, family: str):
    """Architecture.parameter_count of 'depth*width' in closed form, so it can be evaluated on a
    continuous grid (numpy arrays welcome) to draw iso-parameter curves."""
    head = (width + 1) * 10
    if family == "simplemlp":
        return (784 + 1) * width + (depth - 1) * (width + 1) * width + head
    return (784 + 1) * width + depth * 2 * (width + 1) * width + head  # resmlp: transition + residual blocks


def run_heatmaps(args) -> None:
    trials_file = args.trials_file or default_path("trials", args.family)
    zeror = resolve_zeror(args.zeror, args.data_dir)
    for path in heatmap_figures(args.config_file, trials_file, args.output_dir, args.family, zeror):
        print(path)


def configure_heatmaps(parser) -> None:
    parser.add_argument("--config-file", type=Path, default=Path("reproduction/configurations.txt"))
    parser.add_argument("--trials-file", type=Path, help="default: results/psa_<family>_trials.md")
    parser.add_argument("--output-dir", type=Path, default=Path("results"))
    _family_and_zeror(parser)
    parser.set_defaults(func=run_heatmaps)


def _family_and_zeror(parser) -> None:
    parser.add_argument("--family", choices=FAMILIES, default="simplemlp")
    parser.add_argument("--zeror", type=float, help="ZeroR line / failure threshold, percent (default: from MNIST)")
    parser.add_argument("--data-dir", type=Path, help="MNIST folder, for the ZeroR")


# ---------------------------------------------------------------------------------------------
# make-convergence-plots


def best_rows(rows: list[SeriesRow], arch: str) -> dict[str, SeriesRow]:
    """Per mode, the trial of `arch` with the highest peak validation accuracy."""
    best: dict[str, SeriesRow] = {}
    for row in rows:
        peak = max((v for v in row.values if v is not None), default=-1.0)
        if row.arch == arch and (row.mode not in best or peak > max(v for v in best[row.mode].values if v is not None)):
            best[row.mode] = row
    return best


def lkg_curve(row: SeriesRow) -> np.ndarray:
    """The Last Known Good score after each loop: the running maximum of the validation scores."""
    scores = np.array([np.nan if v is None else v for v in row.values])
    return np.fmax.accumulate(scores)


def _percent_axis(ax, low: float, high: float) -> None:
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    ticks = []
    for tick in (100, 99, 98, 95, 90, 80, 70, 60, 50, 40, 30, 20, 15, 10, 5, 2, 1):
        # From the top down, keeping ticks a readable distance apart on the log scale.
        if low <= tick <= high and (not ticks or math.log10(ticks[-1] / tick) >= TICK_SPACING):
            ticks.append(tick)
    ax.set_yticks(ticks)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}%"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, color="0.9", linewidth=0.6)


def _plot_modes(ax, best: dict[str, SeriesRow], curve, zeror: float) -> None:
    values = []
    for mode in MODES:
        if mode in best:
            name, colour = MODE_STYLE[mode]
            series = curve(best[mode])
            ax.plot(np.arange(1, len(series) + 1), series, color=colour, alpha=0.8, linewidth=2, label=name)
            values += [v for v in series if not np.isnan(v)]
    ax.axhline(zeror, color="0.3", linestyle="--", linewidth=1, label=f"ZeroR ({zeror:.2f}%)")
    # 5% of headroom each way, never below 1%: log scale needs a positive floor.
    _percent_axis(ax, max(1.0, min(values + [zeror]) * 0.95), min(100.0, max(values + [zeror]) * 1.05))


def regime_names(trials_file: Path | None, zeror: float) -> dict[str, str]:
    if trials_file is None:
        return {}
    metrics = calculate_summary_metrics(read_trials(trials_file))
    return {arch: REGIMES[classify_regime(arch, metrics, zeror)][0] for arch in metrics}


def _targets(text: str, rows: list[SeriesRow], source: Path) -> list[str]:
    targets = [arch_key(t) for t in text.split(",") if t.strip()]
    known = {row.arch for row in rows}
    absent = [t for t in targets if t not in known]
    if absent:
        raise PSAError(f"{source} has no rows for {', '.join(absent)}")
    return targets


def convergence_figure(rows, targets, output_file, zeror: float, regimes: dict[str, str]) -> Path:
    fig, axes = plt.subplots(len(targets), 1, figsize=(10, 3.6 * len(targets)), sharex=True, squeeze=False,
                             layout="constrained")
    for ax, arch in zip(axes[:, 0], targets):
        _plot_modes(ax, best_rows(rows, arch), lambda row: np.array([np.nan if v is None else v for v in row.values]), zeror)
        regime = f" ({regimes[arch]})" if arch in regimes else ""
        ax.set_title(f"{Architecture.parse(arch).label}{regime}: best trial per mode", fontsize=11)
        ax.set_ylabel("Validation accuracy")
        ax.legend(loc="lower right", fontsize=8, ncol=2)
    axes[-1, 0].set_xlabel("Meta-loop")
    return save(fig, output_file)


def late_breakthroughs(rows: list[SeriesRow], count: int = 4) -> list[str]:
    """The architectures whose best ablative trial gained most LKG accuracy in its second half."""
    gains = {}
    for arch in {row.arch for row in rows}:
        for row in best_rows(rows, arch).values():
            if row.mode in ABLATIVE_MODES:
                lkg = lkg_curve(row)
                gain = np.nan_to_num(lkg[-1] - lkg[len(lkg) // 2 - 1])
                gains[arch] = max(gains.get(arch, 0.0), float(gain))
    return sorted(gains, key=lambda arch: (-gains[arch], arch))[:count]


def breakthrough_figure(rows, targets, output_file, zeror: float, regimes: dict[str, str]) -> Path:
    columns = 2 if len(targets) > 1 else 1
    lines = math.ceil(len(targets) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(6 * columns, 3.8 * lines), squeeze=False, layout="constrained")
    for ax, arch in zip(axes.flat, targets):
        _plot_modes(ax, best_rows(rows, arch), lkg_curve, zeror)
        regime = f"\n{regimes[arch]}" if arch in regimes else ""
        ax.set_title(f"{Architecture.parse(arch).label}{regime}", fontsize=10)
        ax.set_xlabel("Meta-loop")
        ax.set_ylabel("LKG validation accuracy")
    for ax in axes.flat[len(targets):]:
        ax.set_visible(False)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle("Late breakthroughs: Last Known Good accuracy of the best trial per mode")
    return save(fig, output_file)


def run_convergence(args) -> None:
    source = args.convergence_file or default_path("trials_convergence", args.family)
    rows = read_series(source)
    zeror = resolve_zeror(args.zeror, args.data_dir)
    trials_file = args.trials_file or default_path("trials", args.family)
    regimes = regime_names(trials_file if args.trials_file or trials_file.is_file() else None, zeror)
    title = FAMILY_TITLES[args.family]
    print(convergence_figure(rows, _targets(args.targets, rows, source),
                             args.output_dir / f"{title}_Plot_Convergence.png", zeror, regimes))
    chosen = _targets(args.breakthrough_targets, rows, source) if args.breakthrough_targets else late_breakthroughs(rows)
    print(breakthrough_figure(rows, chosen, args.output_dir / f"{title}_Plot_Late_Breakthrough.png", zeror, regimes))


def configure_convergence(parser) -> None:
    parser.add_argument("--targets", default="1*1024,18*18", help='architectures to stack, e.g. "1*1024,18*18"')
    parser.add_argument("--breakthrough-targets",
                        help="architectures of the late-breakthrough figure (default: the four with the largest "
                             "late LKG gain)")
    parser.add_argument("--convergence-file", type=Path, help="default: results/psa_<family>_trials_convergence.md")
    parser.add_argument("--trials-file", type=Path,
                        help="for the regime in each title (default: results/psa_<family>_trials.md when present)")
    parser.add_argument("--output-dir", type=Path, default=Path("results"))
    _family_and_zeror(parser)
    parser.set_defaults(func=run_convergence)
