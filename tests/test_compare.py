import math

import pytest

from psa import published
from psa.cli import main
from psa.compare import benjamini_hochberg, compare_trials, holm, t_two_sided_p, welch_test
from psa.results import read_trials


def test_t_distribution_tail_against_tables():
    assert t_two_sided_p(2.228, 10) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(12.706, 1) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(2.0, 10) == pytest.approx(0.0734, abs=1e-4)
    assert t_two_sided_p(0.0, 5) == 1.0


def test_welch_test():
    t, p = welch_test([1, 2, 3, 4], [2, 3, 4, 5, 9])
    assert t == pytest.approx(-1.5329, abs=1e-4) and p == pytest.approx(0.1765, abs=1e-3)
    assert welch_test([11.02] * 3, [11.02] * 3) == (0.0, 1.0)
    assert welch_test([1.0, 1.0], [2.0, 2.0])[1] == 0.0 and math.isinf(welch_test([1.0, 1.0], [2.0, 2.0])[0])


def test_corrections():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_a_study_agrees_with_itself_and_not_with_another(fixtures):
    simple = read_trials(published.results("trials"))
    same = compare_trials(simple, simple, zeror=11.02)
    assert len(same.cells) == 588 and not same.disagreements and not same.regime_disagreements
    other = compare_trials(read_trials(fixtures / "resmlp-withdrawn/psa_resmlp_trials.md"),
                           simple, zeror=11.02, correction="bh")
    assert other.disagreements and other.regime_disagreements and other.skipped
    assert all(cell.p_adjusted >= cell.p - 1e-12 for cell in other.cells)


def test_cli_reports(fixtures, capsys):
    trials = str(published.results("trials"))
    main(["compare", "--ours", trials, "--reference", trials, "--zeror", "11.02"])
    assert "588 architecture/mode cells compared: 0 differ" in capsys.readouterr().out.replace("\n", " ")
