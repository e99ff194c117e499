import math
import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats

from psa import published
from psa.study.results import read_trials
from psa.study.stats import benjamini_hochberg, cohens_d, holm, welch


@pytest.fixture(autouse=True)
def no_warnings():
    """Edge cases answer NaN or a certainty, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def published_cells():
    """Every published architecture's modes against its control: (arch, mode, bounties, control)."""
    for arch, by_mode in read_trials(published.results("trials")).items():
        control = [v for v in by_mode["none"] if v is not None]
        for mode in ("decay", "dropout", "full", "hidden", "output"):
            yield arch, mode, [v for v in by_mode[mode] if v is not None], control


def test_welch_is_scipys_on_the_published_cells():
    tested = certain = 0
    for arch, mode, bounties, control in published_cells():
        t, p = welch(bounties, control)
        if np.ptp(bounties) == np.ptp(control) == 0:  # all at one value, as untrainable cells
            certain += 1
            assert p == float(bounties[0] == control[0]) and (t == 0) == (p == 1)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's own note on a constant side
            expected = scipy_stats.ttest_ind(bounties, control, equal_var=False)
        assert (t, p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue, rel=1e-12)), (arch, mode)
        tested += 1
    assert tested + certain == 490 and tested > 400


def test_welch_by_hand():
    # t = (2.5 - 4.6) / sqrt(1.6667/4 + 7.3/5) = -1.5329 on 6.36 degrees of freedom.
    t, p = welch([1, 2, 3, 4], [2, 3, 4, 5, 9])
    assert t == pytest.approx(-1.5329, abs=1e-4) and p == pytest.approx(0.1765, abs=1e-3)
    assert welch([1, 2, 3], [1, 2, 3]) == (0.0, 1.0)


def test_cohens_d_over_the_pooled_standard_deviation():
    assert cohens_d([1, 2, 3], [3, 4, 5]) == pytest.approx(-2.0)  # both variances 1
    # Pooled variance (3 * 1.6667 + 4 * 7.3) / 7 = 4.8857.
    assert cohens_d([1, 2, 3, 4], [2, 3, 4, 5, 9]) == pytest.approx(-2.1 / math.sqrt(4.8857), abs=1e-4)
    trials = read_trials(published.results("trials"))["1*64"]
    assert cohens_d(trials["full"], trials["none"]) < -9  # the map's largest harmful effect


def test_constant_and_short_samples():
    assert welch([11.35] * 10, [11.35] * 9) == (0.0, 1.0) and cohens_d([11.35] * 10, [11.35] * 9) == 0.0
    assert welch([1.0, 1.0], [2.0, 2.0]) == (-math.inf, 0.0) and cohens_d([2.0, 2.0], [1.0, 1.0]) == math.inf
    t, p = welch([11.35] * 5, [11.0, 12.0, 13.0])  # one side constant: an ordinary test
    assert 0 < p < 1 and t < 0
    for short in ([], [98.0]):
        assert all(math.isnan(v) for v in (*welch(short, [1.0, 2.0]), *welch([1.0, 2.0], short)))
        assert math.isnan(cohens_d(short, [1.0, 2.0]))


def test_holm_by_hand():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> raised to 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6, 0.01]) == pytest.approx([1.0, 1.0, 0.03])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])


def test_benjamini_hochberg_by_hand():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4/1, 4/2, 4/3, 4/4: 0.02, 0.02, 0.04, 0.04.
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # 0.03 * 3/1 = 0.09 is lowered to the 0.04 * 3/2 = 0.06 of the larger p-value after it.
    assert benjamini_hochberg([0.03, 0.04, 0.9]) == pytest.approx([0.06, 0.06, 0.9])


def test_corrections_leave_untested_cells_out_of_the_family():
    for correct in (holm, benjamini_hochberg):
        adjusted = correct([0.01, math.nan, 0.04])
        assert math.isnan(adjusted[1]) and adjusted[[0, 2]] == pytest.approx(correct([0.01, 0.04]))
        assert len(correct([])) == 0 and math.isnan(correct([math.nan])[0])
