import pytest

from psa import published
from psa.errors import PSAError
from psa.study.results import mode_stats, read_summary, read_trials, write_summary, write_trials
from psa.study.series import read_series

WITHDRAWN = "resmlp-withdrawn"


def test_trials_published_file_parses_and_round_trips_byte_for_byte(fixtures, tmp_path):
    source = published.results("trials")
    trials = read_trials(source)
    assert len(trials) == 98
    assert trials["1*2048"]["none"][:3] == [98.22, 98.20, 98.24]
    assert all(len(values) == 10 for by_mode in trials.values() for values in by_mode.values())
    write_trials(tmp_path / "t.md", trials, "simplemlp")
    assert read_trials(tmp_path / "t.md") == trials
    # Only the published file's malformed separator row differs.
    expected = source.read_text().replace("|:-----::----:|", "|:-----:|:----:|")
    assert (tmp_path / "t.md").read_text() == expected


def test_trials_withdrawn_resmlp_keeps_na_and_empty_architectures(fixtures, tmp_path):
    trials = read_trials(fixtures / WITHDRAWN / "psa_resmlp_trials.md")
    assert trials["632*4"] == {}
    assert trials["2*59"]["output"] == [None] * 10
    write_trials(tmp_path / "t.md", trials, "resmlp")
    assert read_trials(tmp_path / "t.md") == trials
    assert "No successful trials found for this architecture." in (tmp_path / "t.md").read_text()


def test_summary_written_from_trials_matches_the_published_summary(fixtures, tmp_path):
    trials = read_trials(published.results("trials"))
    write_summary(tmp_path / "s.md", trials, "simplemlp")
    assert (tmp_path / "s.md").read_text() == (published.results("summary")).read_text()
    summary = read_summary(published.results("summary"))
    assert summary["1*2048"].parameters == 1628170
    assert summary["1*2048"].modes["none"].mean == 98.25 and summary["1*2048"].modes["none"].n == 10


def test_summary_failed_modes_are_absent(fixtures):
    summary = read_summary(fixtures / WITHDRAWN / "psa_resmlp_summary.md")
    assert summary["632*4"].modes == {}
    assert set(summary["2*59"].modes) == {"none", "decay", "dropout", "full", "hidden"}


def test_mode_stats_population_std_and_missing_values():
    stats = mode_stats([1.0, None, 3.0])
    assert (stats.mean, stats.std, stats.min, stats.max, stats.n) == (2.0, 1.0, 1.0, 3.0, 2)
    assert mode_stats([None, None]) is None


def test_malformed_files_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("### Architecture: 1*4\n\n| Trial | None |\n|---|---|\n| 1 | 9x.1% |\n")
    with pytest.raises(PSAError, match=r"bad.md:5: .*9x.1%"):
        read_trials(bad)
    bad.write_text("Results Shape {1*4} Parameters {3190}\n* None: Mean=oops\n")
    with pytest.raises(PSAError, match=r"bad.md:2:"):
        read_summary(bad)
    bad.write_text(
        "| Architecture | Mode | Meta-Loop 1 | Final Test |\n|---|---|---|---|\n| 4x4 | bogus | 1.0 | N/A |\n"
    )
    with pytest.raises(PSAError, match=r"bad.md:3: unknown mode"):
        read_series(bad)
    with pytest.raises(PSAError, match="not found"):
        read_trials(tmp_path / "missing.md")
