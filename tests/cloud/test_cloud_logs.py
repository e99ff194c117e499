import json
import re
from pathlib import Path

import pytest
from cloud_helpers import JOBS, LOOPS, put_logs, run_cli

from psa.clusters.sagemaker.logparse import parse_log
from psa.study.series import read_series

pytestmark = pytest.mark.moto  # every test talks to the moto server (conftest.py)

NO_LOGS = "psa-2x3-none-2025-08-11-19-50-00-000"  # created, never started: no log stream
HOSTILE = "psa-1x4-none-2025-08-11-19-46-41-617/../../../../tmp/escaped"
NOISE = 12_000  # more events than one GetLogEvents page holds


def history(folder: Path) -> list[dict]:
    return json.loads((folder / "history.json").read_text())


def final_tests(folder: Path) -> list[float]:
    return [round(t["final_test_accuracy"], 2) for t in json.loads((folder / "comprehensive_results.json").read_text())]


@pytest.fixture
def logged(job_runs):
    """Job none was interrupted (a spot reclaim) after a long setup, mid-trial, and ran again in
    a second stream; job hidden's only stream ends mid-trial."""
    none, hidden = job_runs["none"][1], job_runs["hidden"][1]
    cut_none = next(i for i, line in enumerate(none) if f"Loop {LOOPS}/" in line) + 1
    put_logs(
        JOBS["none"],
        {
            "algo-1-1754945940": [f"pip: installing dependency {i}" for i in range(NOISE)] + none[:cut_none],
            "algo-1-1754949999": none,
        },
    )
    cut_hidden = next(i for i, line in enumerate(hidden) if f"Loop {LOOPS}/" in line)
    put_logs(JOBS["hidden"], {"algo-1-1754945950": hidden[:cut_hidden]})
    Path("jobs.txt").write_text("\n".join([JOBS["none"], JOBS["hidden"], NO_LOGS, HOSTILE]) + "\n")
    return job_runs


def test_logs_are_downloaded_once_and_parsed_into_tables(logged, capsys, fixtures):
    assert run_cli("cloud", "logs", "--jobs-file", "jobs.txt") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"no log streams for {NO_LOGS}" in out and "invalid job name" in out
    assert not Path("/tmp/escaped").exists() and not any(Path("results/logs").rglob("escaped*"))

    none_dir = Path("results/logs") / JOBS["none"]
    first, second = sorted(none_dir.glob("*.log"))
    assert first.name == "algo-1-1754945940.log"
    assert len(first.read_text().splitlines()) > NOISE  # every page of the stream
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 PSA job \| 1\*4 x none .*", second.read_text().splitlines()[0]
    )  # the event's own time, to the millisecond
    published = fixtures / "logs"
    summary = json.loads((none_dir / "summary.json").read_text())
    assert summary.keys() == json.loads(next(published.glob("psa-*/summary.json")).read_text()).keys()
    assert summary["total_files"] == 2
    assert summary["total_size"] == first.stat().st_size + second.stat().st_size
    overall = json.loads(Path("results/logs/download_summary.json").read_text())
    assert overall.keys() >= json.loads((published / "download_summary.json").read_text()).keys()
    assert (overall["total_jobs"], overall["successful_downloads"], overall["failed_downloads"]) == (4, 2, 2)
    assert overall["total_log_files"] == 3

    stamp = first.stat().st_mtime_ns
    assert run_cli("cloud", "logs", "--jobs-file", "jobs.txt") == 0
    assert first.stat().st_mtime_ns == stamp and "(2 already there)" in capsys.readouterr().out
    assert run_cli("cloud", "logs", "--jobs-file", "jobs.txt", "--force") == 0
    assert first.stat().st_mtime_ns != stamp

    assert run_cli("cloud", "parse-logs") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{JOBS['hidden']}: trial 1 ends after 1 of {LOOPS} meta-loops (log cut off mid-trial)" in out
    rows = {(r.mode, r.trial): r for r in read_series("results/psa_simplemlp_trials_convergence_per_trial.md")}
    growth = {(r.mode, r.trial): r for r in read_series("results/psa_simplemlp_trials_lkg_growth_per_trial.md")}
    assert set(rows) == {("none", 1), ("none", 2), ("hidden", 1), ("hidden", 2)}
    # The study's tables: a row per job, the maximum over its trials at every loop.
    study = {r.mode: r for r in read_series("results/psa_simplemlp_trials_convergence.md")}
    assert set(study) == {"none", "hidden"} and {r.trial for r in study.values()} == {None}
    assert study["none"].values == [max(a, b) for a, b in zip(rows["none", 1].values, rows["none", 2].values)]
    lkg_max = [
        max(lkgs)
        for lkgs in zip(*([round(loop["lkg_score"], 2) for loop in t["loops"]] for t in history(logged["none"][0])))
    ]
    assert {r.mode: r for r in read_series("results/psa_simplemlp_trials_lkg_growth.md")}[
        "none"
    ].values == pytest.approx([0.0] + [b - a for a, b in zip(lkg_max, lkg_max[1:])])
    folder = logged["none"][0]
    for trial, record in enumerate(history(folder), start=1):
        scores = [round(loop["score"], 2) for loop in record["loops"]]
        lkgs = [round(loop["lkg_score"], 2) for loop in record["loops"]]
        assert rows["none", trial].values == scores  # the rerun, not the interrupted first run
        assert rows["none", trial].final_test == final_tests(folder)[trial - 1]
        assert growth["none", trial].values == pytest.approx([0.0] + [b - a for a, b in zip(lkgs, lkgs[1:])])
    first_scores = [round(t["loops"][0]["score"], 2) for t in history(logged["hidden"][0])]
    assert [rows["hidden", t].values for t in (1, 2)] == [[s] + [None] * (LOOPS - 1) for s in first_scores]
    assert rows["hidden", 1].final_test is None


def test_logs_can_rebuild_the_jobs_file_first(published):
    assert run_cli("cloud", "logs", "--reconstruct-jobs", "--output-dir", "my_logs") == 0
    assert Path("aws/sagemaker/requested-jobs.txt").read_text().split() == sorted(JOBS.values())
    assert {p.name for p in Path("my_logs").iterdir()} == {*JOBS.values(), "download_summary.json"}


def test_untagged_logs_split_trials_where_the_loop_count_restarts():
    line = "Loop {0}/3 (Global: {0}) | Current: 9{0}.00% | LKG: 9{0}.00% | Bounty: 9{0}.00%"
    lines = ["starting", *(line.format(i) for i in (1, 2, 3)), "Final Test: 93.50%", *(line.format(i) for i in (1, 2))]
    first, second = parse_log(lines)
    assert (first.curve("1*4", "none").scores, first.final_test) == ([91.0, 92.0, 93.0], 93.5)
    assert (second.curve("1*4", "none").scores, second.final_test, second.expected) == ([91.0, 92.0], None, 3)
    assert first.curve("1*4", "none").lkgs == [91.0, 92.0, 93.0]


def test_a_genuine_original_log_reads_as_the_original_parser_reads_it(fixtures, tmp_path, capsys):
    """The original trainer's own log (fixtures/original-logs/README.md): a nested stream folder,
    `[ISO time]` prefixes, stderr first, loop records wrapped at 80 columns, its final-line wording."""
    logs = fixtures / "original-logs"
    text = next(logs.rglob("*.log")).read_text()
    runs = parse_log(text.splitlines())
    assert [(len(r.loops), r.final_test, r.bounty) for r in runs] == [(100, 85.06, 85.20), (100, 84.49, 84.23)]

    assert run_cli("cloud", "parse-logs", "--logs-dir", str(logs), "--output-dir", str(tmp_path)) == 0
    assert "cut off" not in capsys.readouterr().out
    trials = read_series(tmp_path / "psa_simplemlp_trials_convergence_per_trial.md")
    assert [(r.arch, r.mode, r.trial, len(r.values), r.final_test) for r in trials] == [
        ("1*4", "none", 1, 100, 85.06),
        ("1*4", "none", 2, 100, 84.49),
    ]
    # What the original's parser writes: per loop the best Current over the runs, read here by hand.
    currents = [float(v) for v in re.findall(r"Current: ([\d.]+)%", text)]
    (row,) = read_series(tmp_path / "psa_simplemlp_trials_convergence.md")
    assert (row.arch, row.trial, row.final_test) == ("1*4", None, 85.06)
    assert row.values == [max(a, b) for a, b in zip(currents[:100], currents[100:])]


def test_wrapped_records_survive_noise_and_either_time_stamp():
    stamp = "2025-08-11T19:48:00.000+00:00 "
    lines = [
        "[2025-08-11T19:48:00.825000] [17:31:19] INFO     Loop 1/2 (Global: 1) | Current: 27.76% |",
        "[2025-08-11T19:48:00.826000]                     LKG: 27.76% | Bounty: 27.76%",
        "[2025-08-11T19:48:00.827000]            INFO     Loop 2/2 (Global: 2) | Current: 30.00% | LKG: 30.00% |",
        "[2025-08-11T19:48:00.828000] UserWarning: stderr among the lines",
        "[2025-08-11T19:48:00.829000]                     Bounty: 30.00%",
        stamp + "Trial 1/1 | Loop 1/1 (Global: 1) | Current: 50.00% | LKG: 50.00% | Bounty: 50.00%",
        stamp + "Trial 1/1 | Result | Bounty: 50.00% (loop 1) | Final Test: 49.50% | seed 7",
    ]
    original, own = parse_log(lines[:5]), parse_log(lines[5:])
    assert [(r.loops, r.final_test) for r in original] == [([(1, 27.76, 27.76), (2, 30.0, 30.0)], None)]
    assert [(r.loops, r.final_test, r.bounty) for r in own] == [([(1, 50.0, 50.0)], 49.5, 50.0)]


def test_a_shard_jobs_log_is_reported_not_read(tmp_path, capsys):
    shard = tmp_path / "psa-shard-0123abcd-1-of-2-2025-08-11-19-48-00-000"
    shard.mkdir()
    (shard / "algo-1-1754941680.log").write_text("Cell 1*4/none | Trial 1/1 | Loop 1/1 (Global: 1) | ...\n")
    assert run_cli("cloud", "parse-logs", "--logs-dir", str(tmp_path), "--output-dir", str(tmp_path)) == 0
    assert "a shard's job" in " ".join(capsys.readouterr().out.split())
