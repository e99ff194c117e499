import pytest

from psa import PSAError
from psa.results import (
    SeriesRow, mode_stats, read_series, read_summary, read_trials, write_series, write_summary, write_trials,
)

WITHDRAWN = "psa-resmlp-withdrawn/results"


def test_trials_published_file_parses_and_round_trips_byte_for_byte(reference, tmp_path):
    source = reference / "results/psa_simplemlp_trials.md"
    trials = read_trials(source)
    assert len(trials) == 98
    assert trials["1*2048"]["none"][:3] == [98.22, 98.20, 98.24]
    assert all(len(values) == 10 for by_mode in trials.values() for values in by_mode.values())
    write_trials(tmp_path / "t.md", trials, "simplemlp")
    assert read_trials(tmp_path / "t.md") == trials
    # Only the published file's malformed separator row differs.
    expected = source.read_text().replace("|:-----::----:|", "|:-----:|:----:|")
    assert (tmp_path / "t.md").read_text() == expected


def test_trials_withdrawn_resmlp_keeps_na_and_empty_architectures(reference, tmp_path):
    trials = read_trials(reference.parent / WITHDRAWN / "psa_resmlp_trials.md")
    assert trials["632*4"] == {}
    assert trials["2*59"]["output"] == [None] * 10
    write_trials(tmp_path / "t.md", trials, "resmlp")
    assert read_trials(tmp_path / "t.md") == trials
    assert "No successful trials found for this architecture." in (tmp_path / "t.md").read_text()


def test_summary_written_from_trials_matches_the_published_summary(reference, tmp_path):
    trials = read_trials(reference / "results/psa_simplemlp_trials.md")
    write_summary(tmp_path / "s.md", trials, "simplemlp")
    assert (tmp_path / "s.md").read_text() == (reference / "results/psa_simplemlp_summary.md").read_text()
    summary = read_summary(reference / "results/psa_simplemlp_summary.md")
    assert summary["1*2048"].parameters == 1628170
    assert summary["1*2048"].modes["none"].mean == 98.25 and summary["1*2048"].modes["none"].n == 10


def test_summary_failed_modes_are_absent(reference):
    summary = read_summary(reference.parent / WITHDRAWN / "psa_resmlp_summary.md")
    assert summary["632*4"].modes == {}
    assert set(summary["2*59"].modes) == {"none", "decay", "dropout", "full", "hidden"}


def test_mode_stats_population_std_and_missing_values():
    stats = mode_stats([1.0, None, 3.0])
    assert (stats.mean, stats.std, stats.min, stats.max, stats.n) == (2.0, 1.0, 1.0, 3.0, 2)
    assert mode_stats([None, None]) is None


@pytest.mark.parametrize("kind", ["convergence", "lkg_growth"])
def test_series_published_tables_round_trip(reference, tmp_path, kind):
    source = reference / f"results/psa_simplemlp_trials_{kind}.md"
    rows = read_series(source)
    assert len(rows) == 585 and rows[0].arch == "1024*1" and rows[0].trial is None
    assert all(len(row.values) == 100 and row.final_test is None for row in rows)
    write_series(tmp_path / "s.md", rows, kind, "simplemlp")
    assert read_series(tmp_path / "s.md") == rows
    assert (tmp_path / "s.md").read_text() == source.read_text() + "\n"  # ours ends with a newline


def test_series_with_trial_column(tmp_path):
    rows = [SeriesRow("18*18", "full", 1, [10.92, None, 12.5], 11.0), SeriesRow("1*4", "none", 2, [50.0], None)]
    write_series(tmp_path / "c.md", rows, "convergence", "simplemlp")
    text = (tmp_path / "c.md").read_text()
    assert "| Architecture | Mode | Trial | Meta-Loop 1 |" in text and "| 18x18 | full | 1 | 10.92 | N/A | 12.50 | 11.00 |" in text
    back = read_series(tmp_path / "c.md")
    assert back[1].values == [50.0, None, None] and back[1].trial == 2 and back[0] == rows[0]


def test_malformed_files_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("### Architecture: 1*4\n\n| Trial | None |\n|---|---|\n| 1 | 9x.1% |\n")
    with pytest.raises(PSAError, match=r"bad.md:5: .*9x.1%"):
        read_trials(bad)
    bad.write_text("Results Shape {1*4} Parameters {3190}\n* None: Mean=oops\n")
    with pytest.raises(PSAError, match=r"bad.md:2:"):
        read_summary(bad)
    bad.write_text("| Architecture | Mode | Meta-Loop 1 | Final Test |\n|---|---|---|---|\n| 4x4 | bogus | 1.0 | N/A |\n")
    with pytest.raises(PSAError, match=r"bad.md:3: unknown mode"):
        read_series(bad)
    with pytest.raises(PSAError, match="not found"):
        read_trials(tmp_path / "missing.md")
