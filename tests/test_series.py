import pytest

from psa import published
from psa.study.series import Curve, SeriesRow, best_trials, per_trial, read_series, study, write_series


def curve(trial, scores, mode="full", test=None):
    lkgs = [max(scores[: k + 1]) for k in range(len(scores))]
    return Curve("4*4", mode, trial, scores, lkgs, test)


def test_a_study_row_is_the_maximum_over_the_trials_not_one_trial():
    curves = [
        curve(1, [10.0, 30.0, 20.0, 25.0], test=28.0),
        curve(2, [15.0, 12.0, 35.0], test=33.0),
        curve(1, [50.0, 60.0], mode="none"),
    ]
    convergence, growth = study(curves)
    assert [(r.arch, r.mode, r.trial) for r in convergence] == [("4*4", "full", None), ("4*4", "none", None)]
    # Loop 4 counts the one trial that reached it; Final Test is the best trial's.
    assert convergence[0].values == [15.0, 30.0, 35.0, 25.0] and convergence[0].final_test == 33.0
    # Growth of the maximum LKG (15, 30, 35, 35), which no single trial has.
    assert growth[0].values == [0.0, 15.0, 5.0, 0.0]
    rows, grows = per_trial(curves)
    assert [r.trial for r in rows] == [1, 2, 1] and rows[0].values == [10.0, 30.0, 20.0, 25.0]
    assert grows[0].values == [0.0, 20.0, 0.0, 0.0]


def test_the_papers_best_trial_is_one_whole_trial_the_highest_peaked():
    rows = [
        SeriesRow("4*4", "full", 1, [10.0, 40.0, 20.0], 30.0),
        SeriesRow("4*4", "full", 2, [35.0, 38.0, 39.0], 37.0),  # higher at every loop but the peak
        SeriesRow("4*4", "full", 3, [12.0, 40.0, None], None),  # the same peak, later: the first keeps it
        SeriesRow("4*4", "none", None, [50.0, 60.0, 70.0], None),  # a study row is no trial
        SeriesRow("4*4", "none", 1, [50.0, 55.0, 52.0], 51.0),
    ]
    assert best_trials(rows) == [rows[0], rows[4]]


@pytest.mark.parametrize("kind", ["convergence", "lkg_growth"])
def test_series_published_tables_round_trip(tmp_path, kind):
    source = published.results(f"trials_{kind}")
    rows = read_series(source)
    assert len(rows) == 585 and rows[0].arch == "1024*1" and rows[0].trial is None
    assert all(len(row.values) == 100 and row.final_test is None for row in rows)
    write_series(tmp_path / "s.md", rows, kind, "simplemlp")
    assert read_series(tmp_path / "s.md") == rows
    assert (tmp_path / "s.md").read_text() == source.read_text() + "\n"  # ours ends with a newline


def test_series_with_trial_column_and_settings(tmp_path):
    from psa.study.tables import read_settings

    rows = [SeriesRow("18*18", "full", 1, [10.92, None, 12.5], 11.0), SeriesRow("1*4", "none", 2, [50.0], None)]
    write_series(tmp_path / "c.md", rows, "convergence", "simplemlp", {"seeding": "paired", "meta-loops": 3})
    text = (tmp_path / "c.md").read_text()
    assert (
        "| Architecture | Mode | Trial | Meta-Loop 1 |" in text
        and "| 18x18 | full | 1 | 10.92 | N/A | 12.50 | 11.00 |" in text
    )
    assert read_settings(tmp_path / "c.md") == {"seeding": "paired", "meta-loops": "3"}
    back = read_series(tmp_path / "c.md")
    assert back[1].values == [50.0, None, None] and back[1].trial == 2 and back[0] == rows[0]
    assert read_settings(published.results("trials_convergence")) == {}
