"""`make-convergence-plots`: validation accuracy over the meta-loops of chosen architectures
(the paper's convergence figure), and the LKG accuracy of the architectures whose ablative trials
broke through late."""

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter

from psa import PSAError
from psa.architecture import FAMILY_TITLES, Architecture
from psa.figures import MODE_STYLE, add_family_and_zeror, save
from psa.modes import ABLATIVE_MODES, MODES
from psa.regimes import REGIMES, calculate_summary_metrics, classify_regime, resolve_zeror
from psa.architecture import arch_key
from psa.results import default_path, read_trials
from psa.series import SeriesRow, read_series

TICK_SPACING = 0.04  # decades between percent ticks


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


def run(args) -> None:
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


def configure(parser) -> None:
    parser.add_argument("--targets", default="1*1024,18*18", help='architectures to stack, e.g. "1*1024,18*18"')
    parser.add_argument("--breakthrough-targets",
                        help="architectures of the late-breakthrough figure (default: the four with the largest "
                             "late LKG gain)")
    parser.add_argument("--convergence-file", type=Path, help="default: results/psa_<family>_trials_convergence.md")
    parser.add_argument("--trials-file", type=Path,
                        help="for the regime in each title (default: results/psa_<family>_trials.md when present)")
    parser.add_argument("--output-dir", type=Path, default=Path("results"))
    add_family_and_zeror(parser)
    parser.set_defaults(func=run)
