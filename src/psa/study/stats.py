"""The statistics of psa's analyses, written once: Welch's two-sample t-test (scipy's), Cohen's d,
and the Holm and Benjamini-Hochberg corrections for judging many tests at once. `psa compare`
tests a reproduction against a reference with them, the ablation-effect map full ablation against
the control (docs/DESIGN.md section 7). A sample of fewer than two values gives NaN, never an
error: there is nothing to test."""

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats


def _samples(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray] | None:
    """Both samples as arrays, or None if either has fewer than two values."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return (x, y) if len(x) >= 2 and len(y) >= 2 else None


def _certain(x: np.ndarray, y: np.ndarray) -> float | None:
    """For two constant samples, which have no spread to weigh their difference against: 0.0 if they
    agree, else an infinity of the difference's sign (a difference without noise is certain);
    None otherwise. Constant means all values equal: their computed variance may be a rounding
    error above 0 instead, which would make the test's outcome noise."""
    if np.ptp(x) or np.ptp(y):
        return None
    return 0.0 if x[0] == y[0] else math.copysign(math.inf, x[0] - y[0])


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(t, two-sided p) of Welch's unequal-variance t-test of mean(a) = mean(b): scipy's. Two
    constant samples: (0, 1) if they agree, (+-inf, 0) if not. NaN for a sample of fewer than two."""
    samples = _samples(a, b)
    if samples is None:
        return math.nan, math.nan
    if (t := _certain(*samples)) is not None:
        return t, float(t == 0)
    with warnings.catch_warnings():
        # One constant sample beside a varying one is an ordinary test; scipy still warns that the
        # constant one's variance is lost to rounding, which is what it is: zero.
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = stats.ttest_ind(*samples, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """(mean(a) - mean(b)) over the pooled standard deviation of the two samples (each variance with
    n - 1). Two constant samples: 0 if they agree, +-inf if not. NaN for a sample of fewer than two."""
    samples = _samples(a, b)
    if samples is None:
        return math.nan
    if (d := _certain(*samples)) is not None:
        return d
    x, y = samples
    pooled = ((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2)
    return float((x.mean() - y.mean()) / math.sqrt(pooled))


def _family(p_values: Sequence[float], adjust: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`adjust` applied to the p-values that are numbers, in the input order; a NaN (a test that
    could not be made) stays NaN and is not counted in the family."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    tested = ~np.isnan(p)
    if tested.any():
        adjusted[tested] = adjust(p[tested])
    return adjusted


def _holm(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    # The k-th smallest of m is multiplied by m - k (k from 0), and no adjusted value may fall
    # below that of a smaller p-value.
    stepped = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    adjusted = np.empty_like(p)
    adjusted[order] = stepped
    return adjusted


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error rate), in the input order."""
    return _family(p_values, _holm)


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order: scipy's."""
    return _family(p_values, stats.false_discovery_control)


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}  # as `psa compare --correction` names them
