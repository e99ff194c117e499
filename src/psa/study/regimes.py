"""Training regimes: the rules of docs/DESIGN.md section 7, applied to each architecture's trial
statistics, and how stable each verdict is under bootstrap resampling of the trials. The
validation ZeroR is the failure threshold; it comes from the data unless given."""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.table import Table

from psa.study.results import ModeStats, Trials, mode_stats, read_trials
from psa.trial.architecture import Architecture, arch_key, depth_and_width, read_configurations
from psa.trial.modes import ABLATIVE_MODES, BASELINE_MODES, MODES

REGIMES = {  # label -> (the paper's name, its colour); rich and matplotlib both read these colours
    "beneficial-regularization": ("I. Beneficial Regularization", "#4caf50"),
    "optimally-sized": ("II. Optimally Sized", "#e53935"),
    "chaotic-optimization": ("III. Chaotic Optimization", "#1565c0"),
    "untrainable": ("IV. Untrainable", "#212121"),
    "unknown": ("Unknown", "#9e9e9e"),
}

Metrics = dict[str, dict[str, ModeStats | None]]  # arch -> mode -> statistics (None: no result)
_BASE = [MODES.index(mode) for mode in BASELINE_MODES]
_ABLATIVE = [MODES.index(mode) for mode in ABLATIVE_MODES]
STABLE = 0.9  # the share of resamples from which the table calls a verdict stable


@dataclass(frozen=True)
class Thresholds:
    min_spread: float = 0.5  # floor of e and eA, so three nearly equal means don't make "within e" strict
    overlap: float = 0.01  # rule 2: best ablative mean this far above the worst baseline mean
    gap: float = 0.1  # rule 3: baselines this far above ablations when both groups are tight
    chaotic_margin: float = 0.5  # rule 4: ablative mean this far above the baseline mean
    chaotic_std: float = 15.0  # rule 4: a baseline this unstable


def calculate_summary_metrics(trials: Trials) -> Metrics:
    return {
        arch_key(arch): {mode: mode_stats(by_mode.get(mode, [])) for mode in MODES} for arch, by_mode in trials.items()
    }


def resolve_zeror(zeror: float | None, data_dir: Path | str | None = None) -> float:
    """The given threshold, or the validation ZeroR computed from MNIST."""
    if zeror is not None:
        return zeror
    from psa.study.dataset import validation_zeror  # loads MNIST: only when no threshold was given

    return validation_zeror(data_dir)


def _within(means: np.ndarray, centre: np.ndarray, spread: np.ndarray) -> np.ndarray:
    return np.all(np.abs(means - centre[..., None]) <= spread[..., None], -1)


def apply_rules(
    mean: np.ndarray, std: np.ndarray, top: np.ndarray, z: float, t: Thresholds = Thresholds()
) -> np.ndarray:
    """Regime labels of statistics shaped (..., 6), the last axis the modes in MODES order: one
    architecture, or a whole stack of bootstrap resamples of it at once."""
    base, ablative = mean[..., _BASE], mean[..., _ABLATIVE]
    base_top, ablative_top = top[..., _BASE], top[..., _ABLATIVE]
    mu_b, mu_a = base.mean(-1), ablative.mean(-1)
    e, e_a = np.maximum(base.std(-1), t.min_spread), np.maximum(ablative.std(-1), t.min_spread)
    baselines_close = _within(base, mu_b, e)
    overlap = ablative.max(-1) - base.min(-1)

    untrainable = np.all(top <= z, -1) | (np.all(mean <= z, -1) & np.all(ablative_top <= z, -1))
    beneficial = (
        (ablative.max(-1) <= mu_b + e) & baselines_close & (_within(ablative, mu_b, e) | (overlap >= t.overlap))
    )
    optimal = (
        (mu_a < mu_b - e)
        | ((base_top.max(-1) > ablative_top.max(-1)) & (mu_a <= mu_b))
        | (baselines_close & _within(ablative, mu_a, e_a) & (mu_a < mu_b) & (overlap <= 0) & (mu_b - mu_a > t.gap))
    )
    chaotic = (
        (np.all(base_top <= z, -1) & np.any(ablative_top > z, -1))
        | (mu_a > mu_b + t.chaotic_margin)
        | np.any(std[..., _BASE] > t.chaotic_std, -1)
    )
    # np.select takes the first condition that holds: the rules' order decides.
    labels = ["untrainable", "beneficial-regularization", "optimally-sized", "chaotic-optimization"]
    return np.select([untrainable, beneficial, optimal, chaotic], labels, "unknown")


def classify_regime(
    arch: str, metrics: Metrics, zeror: float | None = None, thresholds: Thresholds = Thresholds()
) -> str:
    """The regime label of `arch` (any spelling); 'unknown' if a mode is missing or no rule fits."""
    stats = metrics.get(arch_key(arch), {})
    if any(stats.get(mode) is None for mode in MODES):
        return "unknown"
    columns = [np.array([getattr(stats[mode], name) for mode in MODES]) for name in ("mean", "std", "max")]
    return str(apply_rules(*columns, resolve_zeror(zeror), thresholds))


def rule_gaps(by_mode: dict[str, list]) -> str:
    """Why the rules give an architecture no regime: the modes it lacks results in, or none fits."""
    missing = [mode for mode in MODES if mode_stats(by_mode.get(mode, [])) is None]
    if missing:
        return f"the rules compare all six modes; no results in {', '.join(missing)}"
    return "no rule of docs/DESIGN.md section 7 fits its statistics"


def classify_grid(
    grid: list[Architecture], trials: Trials, zeror: float | None = None, thresholds: Thresholds = Thresholds()
) -> dict[str, str]:
    """Regime of every architecture of `grid` that `trials` holds, in the grid's order ('L*W'
    keys). One the trials lack is left out: nothing was run, which is no verdict."""
    metrics = calculate_summary_metrics(trials)
    z = resolve_zeror(zeror)
    return {str(arch): classify_regime(str(arch), metrics, z, thresholds) for arch in grid if str(arch) in metrics}


def architectures(trials: Trials, config_file=None, trials_file=None) -> list[Architecture]:
    """The architectures `trials` holds: first those the configuration file lists, in its order,
    then the rest by depth and width (the widest first). Those the file lists that `trials` lacks
    are named on stderr and left out: nothing was run for them, which is no verdict."""
    listed = list(dict.fromkeys(str(arch) for arch in read_configurations(config_file))) if config_file else []
    absent = [key for key in listed if key not in trials]
    if absent:
        print(
            f"note: {len(absent)} of the {len(listed)} architectures of {config_file} are not in {trials_file} "
            f"(never run there), left out: {', '.join(absent)}",
            file=sys.stderr,
        )
    first = [key for key in listed if key in trials]
    rest = sorted(set(trials) - set(first), key=depth_and_width)
    return [Architecture.parse(key) for key in first + rest]


def get_all_regime_classifications(
    config_path: Path | str | None,
    trials_path: Path | str,
    zeror: float | None = None,
    thresholds: Thresholds = Thresholds(),
) -> dict[str, str]:
    """Regime of every architecture the trials file holds, in the order of `architectures`."""
    trials = read_trials(trials_path)
    return classify_grid(architectures(trials, config_path, trials_path), trials, zeror, thresholds)


def stability(
    trials: Trials, zeror: float | None, n: int, seed: int = 0, thresholds: Thresholds = Thresholds()
) -> dict[str, float]:
    """Per architecture, the share of `n` bootstrap resamples that keep its regime: each mode's
    bounties are drawn again with replacement, as many as it has, and the statistics and rules
    recomputed. A mode without bounties stays so in every resample: its 'unknown' is kept (1.0).
    Each architecture draws from its own generator keyed by (seed, its layers), so its share does
    not depend on which other architectures the trials hold."""
    z = resolve_zeror(zeror)
    metrics = calculate_summary_metrics(trials)
    shares = {}
    for arch, by_mode in trials.items():
        key = arch_key(arch)
        bounties = [np.array([v for v in by_mode.get(mode, []) if v is not None]) for mode in MODES]
        if any(len(values) == 0 for values in bounties):
            shares[key] = 1.0
            continue
        rng = np.random.default_rng(
            [seed, *(number for segment in Architecture.parse(key).segments for number in segment)]
        )
        samples = [values[rng.integers(0, len(values), size=(n, len(values)))] for values in bounties]
        stats = [np.stack([getattr(sample, name)(1) for sample in samples], -1) for name in ("mean", "std", "max")]
        shares[key] = float(np.mean(apply_rules(*stats, z, thresholds) == classify_regime(key, metrics, z, thresholds)))
    return shares


def _share(share: float) -> str:
    # Rounding would show 99.6% as 100%, which should mean every resample.
    return "100%" if share == 1 else f"{min(share, 0.99):.0%}"


def regime_table(regimes: dict[str, str], zeror: float, shares: dict[str, float] | None = None) -> Table:
    table = Table(title=f"Training regimes (validation ZeroR {zeror:.2f}%)")
    table.add_column("Regime")
    table.add_column("Count", justify="right")
    if shares is not None:
        table.add_column(f"Stable (>= {STABLE:.0%})", justify="right")
    table.add_column("Architectures" + (" (share of resamples keeping the regime)" if shares is not None else ""))
    for label, (name, colour) in REGIMES.items():
        members = [arch for arch, regime in regimes.items() if regime == label]
        if not members:
            continue
        if shares is None:
            table.add_row(f"[bold {colour}]{name}[/]", str(len(members)), ", ".join(members))
        else:
            stable = sum(shares[arch] >= STABLE for arch in members)
            listed = ", ".join(f"{arch} ({_share(shares[arch])})" for arch in members)
            table.add_row(f"[bold {colour}]{name}[/]", str(len(members)), str(stable), listed)
    return table
