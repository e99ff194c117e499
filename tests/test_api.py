"""The study in Python (psa.open_study): its DataFrames hold exactly what the store holds, the
published study opens the same way and gives its own tables back, manifests are recorded, kept by
merges and shown, parquet round-trips, two studies are compared with their sampling noise, and a
study of one's own shape is told what it covers."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import psa
from helpers import subset
from psa.cli import main
from psa.published import results as published_table
from psa.study.results import read_summary
from psa.study.sources import LOOP_COLUMNS, TRIAL_COLUMNS
from psa.sweeps.settings import Machine, RunSettings
from psa.sweeps.sweep import run_grid
from psa.trial.architecture import Architecture
from psa.trial.modes import MODES
from psa.trial.spec import Hyper

ARCHS = tuple(map(Architecture.parse, ("1*8", "2*8")))


def sweep(store: Path, data, seed: int = 1, modes=MODES, lr: float = 2e-3, trials: int = 3) -> Path:
    run = RunSettings(ARCHS, modes, trials, 3, seed=seed, hyper=Hyper(lr=lr))
    run_grid(run, store, Machine(device="cpu", threads=1), command=f"test sweep {seed}", data=data)
    return store


@pytest.fixture(scope="module")
def small(mnist):
    return subset(mnist, train=600, val=300)


@pytest.fixture(scope="module")
def store(tmp_path_factory, small) -> Path:
    return sweep(tmp_path_factory.mktemp("api") / "psa.sqlite", small)


def test_the_frames_hold_what_the_store_holds(store):
    study = psa.open_study(store)
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    rows = db.execute("SELECT id, arch, mode, trial, seed, bounty, test_accuracy, lkg_score FROM trials").fetchall()
    loops = db.execute("SELECT trial_id, loop, score, lkg, bounty, improved, ablated, loss FROM loops").fetchall()
    db.close()
    assert len(study.trials) == len(rows) == 2 * 6 * 3
    for trial_id, arch, mode, trial, seed, bounty, test, lkg in rows:
        row = study.trials.loc[trial_id]
        assert (row["arch"], row["mode"], row["trial"], row["seed"]) == (arch, mode, trial + 1, seed)
        assert (row["bounty"], row["test_accuracy"], row["lkg"]) == (bounty, test, lkg)
    got = study.loops.set_index(["trial_id", "loop"])
    assert len(got) == len(loops) == 2 * 6 * 3 * 3
    for trial_id, loop, score, lkg, bounty, improved, ablated, loss in loops:
        row = got.loc[(trial_id, loop)]
        assert (row["score"], row["lkg"], row["bounty"], bool(row["improved"])) == (score, lkg, bounty, bool(improved))
        assert (None if pd.isna(row["ablated"]) else row["ablated"]) == ablated and row["loss"] == loss
    assert {name: str(dtype) for name, dtype in study.trials.dtypes.items()} == {
        name: str(pd.Series(dtype=dtype).dtype) for name, dtype in TRIAL_COLUMNS.items()
    }
    assert list(study.loops.columns) == list(LOOP_COLUMNS)


def test_reading_a_store_never_writes_it(store):
    before = {path.name: path.read_bytes() for path in store.parent.iterdir()}
    psa.open_study(store)
    assert {path.name: path.read_bytes() for path in store.parent.iterdir()} == before


def test_the_published_study_gives_its_own_tables_back_and_lines_up_with_a_store(store):
    published = psa.open_study("published")
    mine = psa.open_study(store)
    assert list(published.trials.columns) == list(mine.trials.columns)
    assert (published.trials.dtypes == mine.trials.dtypes).all() and published.loops.empty
    summary = published.summary()
    shipped = read_summary(published_table("summary"))
    cells = 0
    for row in summary.itertuples():
        stats = shipped[row.arch].modes[row.mode]
        assert (f"{row.mean:.2f}", f"{row.std:.2f}", row.n) == (f"{stats.mean:.2f}", f"{stats.std:.2f}", stats.n)
        cells += 1
    assert cells == sum(len(entry.modes) for entry in shipped.values()) and len(shipped) == 98
    regimes = published.regimes(zeror=11.02, bootstrap=100)
    assert len(regimes) == 98 and set(regimes["regime"]) <= {
        "beneficial-regularization",
        "optimally-sized",
        "chaotic-optimization",
        "untrainable",
        "unknown",
    }
    with pytest.raises(psa.PSAError, match="rule='loop-max'"):
        published.convergence()
    curves = published.convergence("loop-max")
    assert set(curves["loop"]) == set(range(1, 101)) and curves["trial"].isna().all()


def test_convergence_by_the_papers_rule_is_each_cells_best_trial(store):
    study = psa.open_study(store)
    curves = study.convergence()
    assert len(curves) == 2 * 6 * 3  # a trial per cell, three loops each
    for (arch, mode), cell in curves.groupby(["arch", "mode"]):
        trials = study.complete[(study.complete["arch"] == arch) & (study.complete["mode"] == mode)]
        assert cell["score"].max() == trials["bounty"].max()


def test_a_sweep_records_its_manifest_info_shows_it_and_a_merge_keeps_every_one(tmp_path, small, capsys):
    one, two = sweep(tmp_path / "one.sqlite", small, seed=1), sweep(tmp_path / "two.sqlite", small, seed=2)
    (run,) = psa.open_study(one).manifest
    for key in ("psa_version", "git_commit", "python", "torch", "platform", "command", "threads", "started", "ended"):
        assert key in run
    assert run["psa_version"] == psa.__version__ and run["command"] == "test sweep 1" and run["threads"] == 1
    assert run["settings"]["archs"] == ["1*8", "2*8"] and run["settings"]["hyper"]["lr"] == 2e-3 and run["ended"]
    main(["merge", str(one), str(two), "--into", str(tmp_path / "both.sqlite")])
    main(["merge", str(one), str(two), "--into", str(tmp_path / "both.sqlite")])  # again: nothing new
    merged = psa.open_study(tmp_path / "both.sqlite").manifest
    assert [m["command"] for m in merged] == ["test sweep 1", "test sweep 2"]
    capsys.readouterr()
    main(["info", str(tmp_path / "both.sqlite")])
    out = " ".join(capsys.readouterr().out.split())
    assert "2 recorded runs" in out and "test sweep 1" in out and psa.__version__ in out
    assert "│ all │ 72 │ 0 │ 0 │" in out  # two grids of 36 trials, all complete


def test_export_writes_the_manifest_and_parquet_that_round_trips(store, tmp_path):
    main(["export", "--store", str(store), "--out", str(tmp_path), "--format", "parquet"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["runs"] == psa.open_study(store).manifest and "trials.parquet" in manifest["files"]
    import pyarrow.parquet as pq

    trials, loops = pd.read_parquet(tmp_path / "trials.parquet"), pd.read_parquet(tmp_path / "loops.parquet")
    study = psa.open_study(store)
    assert sorted(trials.index) == sorted(study.complete.index)  # in the exports' order
    pd.testing.assert_frame_equal(trials, study.complete.loc[trials.index])
    pd.testing.assert_frame_equal(loops.reset_index(drop=True), study.loops.reset_index(drop=True))
    assert json.loads(pq.read_schema(tmp_path / "loops.parquet").metadata[b"psa.manifest"]) == manifest["runs"]
    by_cell = ["arch", "mode", "trial"]
    from_folder = psa.open_study(tmp_path).trials.set_index(by_cell)["bounty"].sort_index()
    pd.testing.assert_series_equal(from_folder, study.complete.set_index(by_cell)["bounty"].sort_index())


def test_two_seeds_of_one_grid_agree_and_a_changed_learning_rate_is_found(tmp_path, small, capsys):
    a = sweep(tmp_path / "a.sqlite", small, seed=1, trials=4)
    b = sweep(tmp_path / "b.sqlite", small, seed=2, trials=4)
    c = sweep(tmp_path / "c.sqlite", small, seed=3, trials=4, lr=1e-5)
    capsys.readouterr()
    main(["compare", str(a), str(b), "--json", "--zeror", "11.02", "--bootstrap", "200"])
    same = json.loads(capsys.readouterr().out)
    assert same["cells"] and not any(cell["significant"] for cell in same["cells"])
    assert not any(pair["verdict"] == "differ beyond sampling noise" for pair in same["regimes"].values())
    assert same["settings_differ"] == []
    main(["compare", str(a), str(c), "--json", "--zeror", "11.02", "--bootstrap", "200"])
    other = json.loads(capsys.readouterr().out)
    assert sum(cell["significant"] for cell in other["cells"]) >= 6
    assert other["settings_differ"] == [
        'hyper: {"batch_size": 256, "dropout": 0.1, "lr": 0.002, "weight_decay": '
        '0.0001} vs {"batch_size": 256, "dropout": 0.1, "lr": 1e-05, '
        '"weight_decay": 0.0001}'
    ]
    main(["compare", str(a), str(c), "--zeror", "11.02", "--bootstrap", "200", "--figure", str(tmp_path / "c.png")])
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("run with other settings: hyper:") and (tmp_path / "c.png").stat().st_size > 10_000


def test_a_study_of_fewer_modes_is_told_what_it_covers(tmp_path, small, capsys):
    store = sweep(tmp_path / "three.sqlite", small, modes=("none", "full", "hidden"))
    study = psa.open_study(store)
    regimes = study.regimes(zeror=11.02, bootstrap=0)
    assert set(regimes["regime"]) == {"unknown"}
    assert set(regimes["why"]) == {"the rules compare all six modes; no results in decay, dropout, output"}
    main(["export", "--store", str(store), "--out", str(tmp_path / "out")])
    summary = (tmp_path / "out" / "psa_simplemlp_summary.md").read_text()
    assert "* Hidden: Mean=" in summary and "Decay" not in summary and "FAILED" not in summary
    assert "| Trial | None | Full | Hidden |" in (tmp_path / "out" / "psa_simplemlp_trials.md").read_text()
    main(["compare", str(store), str(store), "--zeror", "11.02", "--bootstrap", "50"])
    out = " ".join(capsys.readouterr().out.split())
    assert "0 agree" in out and "2 could not be compared" in out


@pytest.mark.slow
def test_the_example_runs_end_to_end(tmp_path):
    example = Path(__file__).parents[1] / "examples" / "own_study.py"
    env = {**os.environ, "EXAMPLE_OUT": str(tmp_path), "EXAMPLE_TRIALS": "2", "EXAMPLE_LOOPS": "2", "PSA_THREADS": "1"}
    done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "cells compared" in done.stdout and (tmp_path / "mean_bounty_per_mode.png").stat().st_size > 10_000
    assert np.isfinite(psa.open_study(tmp_path / "own.sqlite").summary()["mean"]).all()
