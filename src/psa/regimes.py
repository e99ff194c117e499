"""Training regimes: the rules of docs/DESIGN.md section 6, applied to each architecture's trial
statistics. The validation ZeroR is the failure threshold; it comes from the data unless given."""

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from psa import options
from psa.architecture import read_configurations
from psa.modes import ABLATIVE_MODES, BASELINE_MODES, MODES
from psa.published import CONFIGURATIONS
from psa.architecture import arch_key
from psa.results import ModeStats, Trials, default_path, mode_stats, read_trials

REGIMES = {  # label -> (display name, the study's colour); rich and matplotlib both know these names
    "untrainable": ("Untrainable", "red"),
    "chaotic-optimization": ("Chaotic Optimization", "blue"),
    "beneficial-regularization": ("Beneficial Regularization", "green"),
    "optimally-sized": ("Optimally Sized", "orange"),
    "unknown": ("Unknown", "grey"),
}

Metrics = dict[str, dict[str, ModeStats | None]]  # arch -> mode -> statistics (None: no result)


@dataclass(frozen=True)
class Thresholds:
    min_spread: float = 0.5  # floor of e and eA, so three nearly equal means don't make "within e" strict
    overlap: float = 0.01  # rule 2: best ablative mean this far above the worst baseline mean
    gap: float = 0.1  # rule 3: baselines this far above ablations when both groups are tight
    chaotic_margin: float = 0.5  # rule 4: ablative mean this far above the baseline mean
    chaotic_std: float = 15.0  # rule 4: a baseline this unstable


def calculate_summary_metrics(trials: Trials) -> Metrics:
    return {arch_key(arch): {mode: mode_stats(by_mode.get(mode, [])) for mode in MODES} for arch, by_mode in trials.items()}


def resolve_zeror(zeror: float | None, data_dir: Path | str | None = None) -> float:
    """The given threshold, or the validation ZeroR computed from MNIST."""
    if zeror is not None:
        return zeror
    from psa.analysis import validation_zeror  # loads MNIST: only when no threshold was given

    return validation_zeror(data_dir)


def classify_regime(arch: str, metrics: Metrics, zeror: float | None = None, thresholds: Thresholds = Thresholds()) -> str:
    """The regime label of `arch` (any spelling); 'unknown' if a mode is missing or no rule fits."""
    stats = metrics.get(arch_key(arch), {})
    if any(stats.get(mode) is None for mode in MODES):
        return "unknown"
    z, t = resolve_zeror(zeror), thresholds
    base, ablative = [stats[m] for m in BASELINE_MODES], [stats[m] for m in ABLATIVE_MODES]
    base_means, ablative_means = np.array([s.mean for s in base]), np.array([s.mean for s in ablative])
    mu_b, mu_a = base_means.mean(), ablative_means.mean()
    e, e_a = max(base_means.std(), t.min_spread), max(ablative_means.std(), t.min_spread)
    baselines_close = bool(np.all(np.abs(base_means - mu_b) <= e))
    overlap = ablative_means.max() - base_means.min()

    if all(s.max <= z for s in base + ablative) or (
        all(s.mean <= z for s in base + ablative) and all(s.max <= z for s in ablative)
    ):
        return "untrainable"
    if ablative_means.max() <= mu_b + e and baselines_close and (
        np.all(np.abs(ablative_means - mu_b) <= e) or overlap >= t.overlap
    ):
        return "beneficial-regularization"
    if (
        mu_a < mu_b - e
        or (max(s.max for s in base) > max(s.max for s in ablative) and mu_a <= mu_b)
        or (baselines_close and np.all(np.abs(ablative_means - mu_a) <= e_a) and mu_a < mu_b
            and overlap <= 0 and mu_b - mu_a > t.gap)
    ):
        return "optimally-sized"
    if (
        (all(s.max <= z for s in base) and any(s.max > z for s in ablative))
        or mu_a > mu_b + t.chaotic_margin
        or any(s.std > t.chaotic_std for s in base)
    ):
        return "chaotic-optimization"
    return "unknown"


def get_all_regime_classifications(
    config_path: Path | str,
    trials_path: Path | str,
    zeror: float | None = None,
    thresholds: Thresholds = Thresholds(),
) -> dict[str, str]:
    """Regime of every architecture of the configuration file, in its order ('L*W' keys)."""
    metrics = calculate_summary_metrics(read_trials(trials_path))
    z = resolve_zeror(zeror)
    return {str(arch): classify_regime(str(arch), metrics, z, thresholds) for arch in read_configurations(config_path)}


def regime_table(regimes: dict[str, str], zeror: float) -> Table:
    table = Table(title=f"Training regimes (validation ZeroR {zeror:.2f}%)")
    table.add_column("Regime")
    table.add_column("Count", justify="right")
    table.add_column("Architectures")
    for label, (name, colour) in REGIMES.items():
        members = [arch for arch, regime in regimes.items() if regime == label]
        if members:
            table.add_row(f"[bold {colour}]{name}[/]", str(len(members)), ", ".join(members))
    return table


def run(args) -> None:
    trials_file = args.trials_file or default_path("trials", args.family)
    zeror = resolve_zeror(args.zeror, args.data_dir)
    thresholds = Thresholds(**{f.name: getattr(args, f.name) for f in fields(Thresholds)})
    regimes = get_all_regime_classifications(args.config_file, trials_file, zeror, thresholds)
    if args.json:
        print(json.dumps(regimes, indent=2))
    else:
        Console().print(regime_table(regimes, zeror))


def configure(parser) -> None:
    parser.add_argument("--config-file", type=Path, default=CONFIGURATIONS,
                        help="architectures, one L*W per line (default: the published study's)")
    parser.add_argument("--trials-file", type=Path, help="trials table (default: results/psa_<family>_trials.md)")
    options.add_family(parser, "--family")
    parser.add_argument("--zeror", type=options.PERCENT, help="failure threshold in percent (default: validation ZeroR from MNIST)")
    options.add_data_dir(parser)
    for field in fields(Thresholds):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=options.NON_NEGATIVE, default=field.default,
                            help=f"rule threshold (default {field.default})")
    parser.add_argument("--json", action="store_true", help='print {"L*W": regime} as JSON')
    parser.set_defaults(func=run)

