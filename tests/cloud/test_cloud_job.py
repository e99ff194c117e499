import json

import pytest
from cloud_helpers import LOOPS, TRIALS

from psa.clusters.sagemaker.logparse import parse_log

pytestmark = pytest.mark.moto  # every test talks to the moto server (conftest.py)


def test_job_writes_its_results_history_and_one_log_line_per_meta_loop(job_runs):
    folder, log = job_runs["hidden"]
    trials = json.loads((folder / "comprehensive_results.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    assert [t["trial"] for t in trials] == [t["trial"] for t in history] == list(range(1, TRIALS + 1))
    assert (folder / "results.txt").read_text() == "".join(f"{t['bounty']:.2f}\n" for t in trials)
    assert len({t["seed"] for t in trials}) == TRIALS  # each trial its own recorded seed
    for summary, record in zip(trials, history):
        loops = record["loops"]
        assert [x["loop"] for x in loops] == list(range(1, LOOPS + 1))
        assert summary["bounty"] == summary["best_validation_accuracy"] == max(x["score"] for x in loops)
        assert loops[summary["best_validation_epoch"] - 1]["score"] == summary["bounty"]
        assert 0 < summary["final_test_accuracy"] <= 100 and summary["mode"] == "hidden"
        assert loops[0]["ablated"] is None and all(x["ablated"] for x in loops[1:])  # hidden ablates from loop 2

    assert sum("| Loop " in line for line in log) == TRIALS * LOOPS
    parsed = parse_log(log)
    assert [t.curve("1*4", "hidden").scores for t in parsed] == [
        [round(x["score"], 2) for x in r["loops"]] for r in history
    ]
    assert [t.final_test for t in parsed] == [round(t["final_test_accuracy"], 2) for t in trials]
