import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from helpers import subset
from psa import PSAError, results
from psa.architecture import Architecture
from psa.export import export
from psa.store import Store
from psa.sweep import run_sweep
from psa.topology import parameter_count
from psa.trial import Hyper, grid

HYPER = Hyper(lr=2e-3, batch_size=100)


def small_grid(archs=("1*4", "2*3"), modes=("none", "hidden", "dropout"), trials=2):
    return grid([Architecture.parse(a) for a in archs], modes, trials, "simplemlp", 11, HYPER)


def test_sweep_skips_completed_trials_and_exports_the_study_formats(tmp_path, mnist):
    data = subset(mnist, train=600, val=300)
    store = Store(tmp_path / "psa.sqlite")
    grid = small_grid()
    assert run_sweep(store, grid, 3, "cpu", 2 << 30, data) == {"total": 12, "trained": 12}
    assert run_sweep(store, grid, 3, "cpu", 2 << 30, data) == {"total": 12, "trained": 0}
    bigger = small_grid(trials=3)
    assert run_sweep(store, bigger, 3, "cpu", 2 << 30, data)["trained"] == 6
    assert store.counts() == {"complete": 18}
    rows = store.completed()
    assert all(len(store.history(r["id"])) == 3 for r in rows)
    paired = {(r["arch"], r["trial"]): set() for r in rows}
    for r in rows:
        paired[(r["arch"], r["trial"])].add(r["seed"])
    assert all(len(seeds) == 1 for seeds in paired.values())  # trial k shares its seed across modes

    written = export(store, tmp_path / "out", ["2*3", "1*4"])
    trials = results.read_trials(tmp_path / "out" / "psa_simplemlp_trials.md")
    assert list(trials) == ["2*3", "1*4"]
    by_key = {(r["arch"], r["mode"], r["trial"]): r for r in rows}
    for arch, modes in trials.items():
        assert {m for m, values in modes.items() if any(v is not None for v in values)} == {"none", "hidden", "dropout"}
        for mode in ("none", "hidden", "dropout"):
            values = modes[mode]
            assert values == [round(by_key[(arch, mode, t)]["bounty"], 2) for t in range(3)]
    summary = results.read_summary(tmp_path / "out" / "psa_simplemlp_summary.md")
    assert summary["1*4"].parameters == parameter_count(Architecture.parse("1*4"))
    assert summary["1*4"].modes["hidden"].n == 3
    convergence = results.read_series(tmp_path / "out" / "psa_simplemlp_trials_convergence.md")
    growth = results.read_series(tmp_path / "out" / "psa_simplemlp_trials_lkg_growth.md")
    assert len(convergence) == len(growth) == 18 and {r.trial for r in convergence} == {1, 2, 3}
    for conv, grow in zip(convergence, growth):
        key = by_key[(conv.arch, conv.mode, conv.trial - 1)]
        history = store.history(key["id"])
        assert conv.values == [round(h.score, 2) for h in history]
        assert grow.values[0] == 0 and all(g >= 0 for g in grow.values)
        assert abs(sum(grow.values) - (history[-1].lkg_score - history[0].lkg_score)) < 0.05
        assert conv.final_test == round(key["test_accuracy"], 2)
    csv_lines = (tmp_path / "out" / "psa_trials.csv").read_text().splitlines()
    assert len(csv_lines) == 19 and csv_lines[0].startswith("family,arch,mode,trial,seed")
    assert len(written) == 5
    store.close()


def test_a_damaged_store_is_a_clear_error(tmp_path):
    path = tmp_path / "psa.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PSAError, match="cannot be opened"):
        Store(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_export_of_an_empty_store_says_so(tmp_path):
    with pytest.raises(PSAError, match="no complete trials"):
        export(Store(tmp_path / "empty.sqlite"), tmp_path / "out")


def completed(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT arch, mode, trial, status FROM trials").fetchall(), \
            db.execute("SELECT trial_id, COUNT(*) FROM loops GROUP BY trial_id").fetchall()
    finally:
        db.close()


def test_sigkill_mid_sweep_loses_only_trials_in_flight(tmp_path):
    store = tmp_path / "psa.sqlite"
    command = [sys.executable, "-m", "psa", "sweep", "--arch", "1*4,1*5,1*6,1*7", "--modes", "none,full",
               "--trials", "2", "--meta-loops", "1", "--store", str(store), "--device", "cpu"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        if store.exists() and any(status == "complete" for *_, status in completed(store)[0]):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    trials, _ = completed(store)
    assert 0 < sum(status == "complete" for *_, status in trials) < 16
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, timeout=300)
    trials, loops = completed(store)
    assert sorted(trials) == sorted({(f"1*{w}", m, t, "complete") for w in (4, 5, 6, 7)
                                     for m in ("none", "full") for t in (0, 1)})
    assert len(loops) == 16 and all(count == 1 for _, count in loops)


def test_reproduce_leaves_exports_tables_and_figures(tmp_path, monkeypatch, capsys):
    """The README's main job, on a tiny grid: sweep, export, LaTeX tables, figures, regimes."""
    import json

    from psa.cli import main

    monkeypatch.chdir(tmp_path)
    main(["reproduce", "--arch", "1*4,2*3", "--trials", "1", "--meta-loops", "2", "--out", "out"])
    out = tmp_path / "out"
    for name in ("psa_simplemlp_summary.md", "psa_simplemlp_trials.md", "psa_simplemlp_trials_convergence.md",
                 "psa_simplemlp_trials_lkg_growth.md", "psa_trials.csv", "SimpleMLP_Table_Accuracy.tex",
                 "SimpleMLP_Testing_Design_Space.png", "SimpleMLP_Heatmap_Regimes.png",
                 "SimpleMLP_Plot_Convergence.png", "SimpleMLP_Plot_Late_Breakthrough.png"):
        assert (out / name).stat().st_size > 0, name
    assert sorted(json.loads((out / "psa_simplemlp_regimes.json").read_text())) == ["1*4", "2*3"]
    assert "1*4 &" in (out / "SimpleMLP_Table_Accuracy.tex").read_text()
    main(["reproduce", "--arch", "1*4,2*3", "--trials", "1", "--meta-loops", "2", "--out", "out"])
    assert "12 already complete" in capsys.readouterr().out.replace("\n", " ")


def test_packed_sweep_stores_the_same_trials(tmp_path, mnist):
    """--pack trains small stacks side by side; the store ends up with the same results."""
    data = subset(mnist, train=300, val=200)
    stored = []
    for pack in (1, 3):
        store = Store(tmp_path / f"pack{pack}.sqlite")
        assert run_sweep(store, small_grid(archs=("1*4", "2*3", "3*2")), 2, "cpu", 2 << 30, data, pack=pack)["trained"] == 18
        stored.append(sorted((r["arch"], r["mode"], r["trial"], r["bounty"], r["test_accuracy"]) for r in store.completed()))
        store.close()
    assert stored[0] == stored[1]
