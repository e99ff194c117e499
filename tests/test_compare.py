import numpy as np
import pytest

from psa import published
from psa.cli import main
from psa.study.compare import compare_trials
from psa.study.compare_convergence import compare_convergence, study_curves
from psa.study.results import read_trials, write_trials
from psa.study.series import SeriesRow, read_series, write_series


def test_a_study_agrees_with_itself_and_not_with_another(fixtures):
    simple = read_trials(published.results("trials"))
    same = compare_trials(simple, simple, zeror=11.02)
    assert len(same.cells) == 588 and not same.disagreements and not same.regime_disagreements
    other = compare_trials(
        read_trials(fixtures / "resmlp-withdrawn/psa_resmlp_trials.md"), simple, zeror=11.02, correction="bh"
    )
    assert other.disagreements and other.regime_disagreements and other.skipped
    assert all(cell.p_adjusted >= cell.p - 1e-12 for cell in other.cells)


def test_cli_reports(fixtures, capsys):
    trials = str(published.results("trials"))
    main(["compare", "--trials-file", trials, "--reference", trials, "--zeror", "11.02"])
    assert "588 architecture/mode cells compared: 0 differ" in capsys.readouterr().out.replace("\n", " ")


# ---------------------------------------------------------------------------------------------
# Convergence at chosen meta-loops.


def short_reproduction(folder):
    """A hand-made reproduction of 1*2048 and 4*4 with 10 meta-loops: per-trial rows whose loop
    maxima are the published rows, but 1*2048/none 0.5 higher throughout and 4*4/none 1.0 lower
    at loop 10. Its trials table sits beside it, as `psa export` leaves them."""
    study = [row for row in read_series(published.results("trials_convergence")) if row.arch in ("1*2048", "4*4")]
    rows = []
    for row in study:
        best = row.values[:10]
        if (row.arch, row.mode) == ("1*2048", "none"):
            best = [v + 0.5 for v in best]
        if (row.arch, row.mode) == ("4*4", "none"):
            best[9] -= 1.0
        rows += [
            SeriesRow(row.arch, row.mode, 1, [v - 0.3 for v in best], None),
            SeriesRow(row.arch, row.mode, 2, best, None),
        ]
    write_series(folder / "psa_simplemlp_trials_convergence.md", rows, "convergence", "simplemlp")
    trials = read_trials(published.results("trials"))
    write_trials(folder / "psa_simplemlp_trials.md", {arch: trials[arch] for arch in ("1*2048", "4*4")}, "simplemlp")
    return folder / "psa_simplemlp_trials.md"


def test_per_trial_rows_compare_as_their_loop_maxima(tmp_path):
    short_reproduction(tmp_path)
    ours = read_series(tmp_path / "psa_simplemlp_trials_convergence.md")
    assert {row.trial for row in ours} == {1, 2}
    assert study_curves(ours)[("1*2048", "none")] == pytest.approx(
        [92.72, 94.77, 95.77, 96.53, 97.05, 97.5, 97.72, 97.87, 98.07, 98.15]
    )
    convergence = compare_convergence(ours, read_series(published.results("trials_convergence")))
    assert (convergence.ours_loops, convergence.reference_loops) == (10, 100)
    assert "ours ran 10 meta-loops, the reference 100" in convergence.length_note
    assert [loop.loop for loop in convergence.loops] == [1, 10] and convergence.beyond == []
    first, tenth = convergence.loops
    assert len(first.cells) == len(tenth.cells) == 12
    assert first.differences().max() == pytest.approx(0.5) and first.differences().mean() == pytest.approx(0.5 / 12)
    assert [cell for cell, _ in first.largest()] == [("1*2048", "none")]
    assert np.abs(tenth.differences()).max() == pytest.approx(1.0)
    assert [cell for cell, _ in tenth.largest()] == [("4*4", "none"), ("1*2048", "none")]
    asked = compare_convergence(ours, read_series(published.results("trials_convergence")), [5, 50, 100])
    assert [loop.loop for loop in asked.loops] == [5] and asked.beyond == [50, 100]


def test_the_published_study_converges_like_itself():
    rows = read_series(published.results("trials_convergence"))
    convergence = compare_convergence(rows, rows)
    assert convergence.length_note is None and [loop.loop for loop in convergence.loops] == [1, 10, 25, 50, 100]
    assert all(
        len(loop.cells) == 585 and not loop.differences().any() and not loop.largest() for loop in convergence.loops
    )


def test_cli_compares_with_the_shipped_study_by_default(tmp_path, capsys):
    ours = short_reproduction(tmp_path)
    main(["compare", "--ours", str(ours), "--zeror", "11.02"])
    out = " ".join(capsys.readouterr().out.split())
    assert "12 architecture/mode cells compared: 0 differ" in out
    assert "different run lengths: ours ran 10 meta-loops, the reference 100" in out
    assert "1*2048/none 92.72 vs 92.22" in out and "4*4/none 27.77 vs 28.77" in out  # loops 1 and 10
    main(
        [
            "compare",
            "--ours",
            str(ours),
            "--reference",
            "published",
            "--zeror",
            "11.02",
            "--loops",
            "3,50",
            "--ours-convergence",
            str(tmp_path / "psa_simplemlp_trials_convergence.md"),
            "--reference-convergence",
            str(published.results("trials_convergence")),
        ]
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "not compared: loop 50, beyond what both sides ran" in out
    (tmp_path / "psa_simplemlp_trials_convergence.md").unlink()
    main(["compare", "--ours", str(ours), "--zeror", "11.02"])
    assert "convergence not compared: a side has no convergence rows" in " ".join(capsys.readouterr().out.split())
