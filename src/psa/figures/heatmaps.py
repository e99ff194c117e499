"""`make-figure-heatmaps`: six heat maps over the design space: baseline performance, ablation
effects, instability, winning strategy, parameter matching and training regimes."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize, to_rgb
from matplotlib.patches import Patch

from psa import PSAError
from psa.architecture import FAMILY_TITLES, Architecture, read_configurations
from psa.figures import MODE_STYLE, add_family_and_zeror, save
from psa.figures.space import KEY_AXES, LIMITS, colour_key, draw_design_space, legend_key, map_figure
from psa.modes import ABLATIVE_MODES, BASELINE_MODES, MODES
from psa.published import CONFIGURATIONS
from psa.regimes import REGIMES, calculate_summary_metrics, classify_regime, resolve_zeror
from psa.results import default_path, read_trials
from psa.topology import parameter_count

EFFECTS = {"beneficial": "forestgreen", "harmful": "firebrick", "neutral": "peru"}
FULL_EFFECT = 2.0  # accuracy points at which the ablation-effect shade saturates


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
    fig, ax = map_figure(f"Training regimes (failure threshold: validation ZeroR {z:.2f}%)")
    draw_design_space(ax, archs, [REGIMES[r][1] for r in regimes])
    legend_key(fig, [Patch(color=c, label=name) for label, (name, c) in REGIMES.items() if label in regimes], "Regime")
    finish(fig, "Regimes")
    return outputs


def parameter_matching(fig, ax, archs: list[Architecture], family: str):
    """Squares coloured by parameter count; the one-layer budgets drawn as iso-parameter curves,
    labelled along the curve, so matched architectures are seen to share a curve."""
    counts = [parameter_count(a, family) for a in archs]
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
    """psa.topology.parameter_count of 'depth*width' in closed form, so it can be evaluated on a
    continuous grid (numpy arrays welcome) to draw iso-parameter curves."""
    head = (width + 1) * 10
    if family == "simplemlp":
        return (784 + 1) * width + (depth - 1) * (width + 1) * width + head
    return (784 + 1) * width + depth * 2 * (width + 1) * width + head  # resmlp: transition + residual blocks


def run(args) -> None:
    trials_file = args.trials_file or default_path("trials", args.family)
    zeror = resolve_zeror(args.zeror, args.data_dir)
    for path in heatmap_figures(args.config_file, trials_file, args.output_dir, args.family, zeror):
        print(path)


def configure(parser) -> None:
    parser.add_argument("--config-file", type=Path, default=CONFIGURATIONS,
                        help="architectures, one L*W per line (default: the published study's)")
    parser.add_argument("--trials-file", type=Path, help="default: results/psa_<family>_trials.md")
    parser.add_argument("--output-dir", type=Path, default=Path("results"))
    add_family_and_zeror(parser)
    parser.set_defaults(func=run)


