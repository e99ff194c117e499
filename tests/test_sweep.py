import csv
import json
import os
import socket
from dataclasses import replace

import pytest

from helpers import subset
from psa.cli import main
from psa.errors import PSAError
from psa.store import Store
from psa.store.claims import claim
from psa.study import results
from psa.study.export import export
from psa.study.series import read_series
from psa.study.study import open_study
from psa.sweeps.grid import train_grid
from psa.sweeps.settings import RunSettings
from psa.trial.architecture import Architecture
from psa.trial.spec import Hyper
from psa.trial.topology import parameter_count

HYPER = Hyper(lr=2e-3, batch_size=100)


def small_run(archs=("1*4", "2*3"), modes=("none", "hidden", "dropout"), trials=2, meta_loops=3, seeding="independent"):
    archs = tuple(Architecture.parse(a) for a in archs)
    return RunSettings(archs, modes, trials, meta_loops, seed=11, seeding=seeding, hyper=HYPER)


def test_sweep_skips_completed_trials_and_exports_the_study_formats(tmp_path, mnist):
    data = subset(mnist, train=600, val=300)
    store = Store(tmp_path / "psa.sqlite")
    run = small_run()
    assert train_grid(store, run, "cpu", 2 << 30, data) == {"total": 12, "trained": 12, "loops": 36, "left": 0}
    assert train_grid(store, run, "cpu", 2 << 30, data) == {"total": 12, "trained": 0, "loops": 0, "left": 0}
    assert train_grid(store, small_run(trials=3), "cpu", 2 << 30, data)["trained"] == 6
    assert store.counts() == {"complete": 18}
    rows = store.completed()
    assert all(len(store.history(r["id"])) == 3 for r in rows)
    assert len({r["seed"] for r in rows}) == 18  # independent seeding: every trial its own seed

    written = export(open_study(store.path), tmp_path / "out", ["2*3", "1*4"])
    out = tmp_path / "out"
    trials = results.read_trials(out / "psa_simplemlp_trials.md")
    assert list(trials) == ["2*3", "1*4"]
    by_key = {(r["arch"], r["mode"], r["trial"]): r for r in rows}
    for arch, modes in trials.items():
        assert {m for m, values in modes.items() if any(v is not None for v in values)} == {"none", "hidden", "dropout"}
        for mode in ("none", "hidden", "dropout"):
            assert modes[mode] == [round(by_key[(arch, mode, t)]["bounty"], 2) for t in range(3)]
    summary = results.read_summary(out / "psa_simplemlp_summary.md")
    assert summary["1*4"].parameters == parameter_count(Architecture.parse("1*4"))
    assert summary["1*4"].modes["hidden"].n == 3

    # Per-trial series: each trial's own loops.
    per_trial = read_series(out / "psa_simplemlp_trials_convergence_per_trial.md")
    assert len(per_trial) == 18 and {r.trial for r in per_trial} == {1, 2, 3}
    for row in per_trial:
        key = by_key[(row.arch, row.mode, row.trial - 1)]
        assert row.values == [round(h.score, 2) for h in store.history(key["id"])]
        assert row.final_test == round(key["test_accuracy"], 2)
    # The study's rows: one per architecture and mode, the maximum over its trials at every loop,
    # and the growth of the maximum LKG (an LKG is the running maximum of its trial's scores).
    convergence = read_series(out / "psa_simplemlp_trials_convergence.md")
    growth = read_series(out / "psa_simplemlp_trials_lkg_growth.md")
    assert [(r.arch, r.mode, r.trial) for r in convergence] == [
        (a, m, None) for a in ("2*3", "1*4") for m in ("none", "dropout", "hidden")
    ]
    for conv, grow in zip(convergence, growth):
        mine = [r.values for r in per_trial if (r.arch, r.mode) == (conv.arch, conv.mode)]
        assert conv.values == [max(loop) for loop in zip(*mine)]
        lkg = [max(max(values[: k + 1]) for values in mine) for k in range(3)]
        assert grow.values == pytest.approx([0.0] + [b - a for a, b in zip(lkg, lkg[1:])], abs=0.011)
    assert "Settings: seeding independent |" in (out / "psa_simplemlp_summary.md").read_text()
    loops_csv = (out / "psa_simplemlp_loops.csv").read_text().splitlines()
    assert len(loops_csv) == 1 + 18 * 3 and loops_csv[0].startswith("family,arch,mode,trial,seed,loop,score")
    loops_rows = list(csv.DictReader(loops_csv))  # every loop's training loss, as the store has it
    stored = [h.loss for r in rows for h in store.history(r["id"])]
    assert all(float(row["loss"]) > 0 for row in loops_rows)
    assert sorted(float(row["loss"]) for row in loops_rows) == sorted(stored)
    csv_lines = (out / "psa_trials.csv").read_text().splitlines()
    assert len(csv_lines) == 19 and csv_lines[0].startswith("family,arch,mode,trial,seed,seeding")
    assert len(written) == 8
    store.close()


def test_decay_is_a_copy_of_none_only_with_paired_seeds(tmp_path, mnist):
    """In float32 with lr = wd = 1e-4 decay trains as none does: with paired seeds trial k of
    both is one and the same run, with independent seeds (the default, as in the study) not."""
    data = subset(mnist, train=500, val=300)
    by_seeding = {}
    for seeding in ("independent", "paired"):
        store = Store(tmp_path / f"{seeding}.sqlite")
        run = RunSettings((Architecture.parse("1*6"),), ("none", "decay"), 2, 2, seed=5, seeding=seeding)
        train_grid(store, replace(run, hyper=Hyper(batch_size=100)), "cpu", 2 << 30, data)
        rows = {(r["mode"], r["trial"]): r for r in store.completed()}
        by_seeding[seeding] = [
            (
                rows["none", t]["seed"] == rows["decay", t]["seed"],
                store.history(rows["none", t]["id"]) == store.history(rows["decay", t]["id"]),
            )
            for t in range(2)
        ]
        assert {r["seeding"] for r in rows.values()} == {seeding}
        store.close()
    assert by_seeding == {"independent": [(False, False)] * 2, "paired": [(True, True)] * 2}


def test_export_never_mixes_settings(tmp_path, mnist):
    data = subset(mnist, train=300, val=200)
    store = Store(tmp_path / "psa.sqlite")
    for loops in (2, 3):
        train_grid(store, small_run(archs=("1*4",), modes=("none",), meta_loops=loops), "cpu", 2 << 30, data)
    with pytest.raises(
        PSAError, match=r"2 settings \(meta_loops 2 \(2 trials\); meta_loops 3 \(2 trials\)\).*--meta-loops"
    ):
        export(open_study(store.path), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    export(open_study(store.path), tmp_path / "out", wanted={"meta_loops": 3})
    assert all(len(row.values) == 3 for row in read_series(tmp_path / "out" / "psa_simplemlp_trials_convergence.md"))
    store.close()


def test_export_of_an_empty_store_says_so(tmp_path):
    with pytest.raises(PSAError, match="no complete trials"):
        Store(tmp_path / "empty.sqlite").close()
        export(open_study(tmp_path / "empty.sqlite"), tmp_path / "out")


@pytest.mark.slow
def test_reproduce_leaves_exports_tables_and_figures_from_its_own_store(tmp_path, monkeypatch, capsys):
    """The README's main job, on a tiny grid: sweep, export, LaTeX tables, figures, regimes, in a
    store of its own, untouched by an ad-hoc sweep's."""
    monkeypatch.chdir(tmp_path)
    main(["sweep", "--arch", "1*5", "--trials", "1", "--meta-loops", "2", "--modes", "none"])
    main(["reproduce", "--arch", "1*4,2*3", "--trials", "1", "--meta-loops", "2", "--out", "out"])
    out = tmp_path / "out"
    for name in (
        "psa_simplemlp_summary.md",
        "psa_simplemlp_trials.md",
        "psa_simplemlp_trials_convergence.md",
        "psa_simplemlp_trials_lkg_growth.md",
        "psa_trials.csv",
        "SimpleMLP_Table_Accuracy.tex",
        "SimpleMLP_Testing_Design_Space.png",
        "SimpleMLP_Heatmap_Regimes.png",
        "SimpleMLP_Plot_Convergence.png",
        "SimpleMLP_Plot_Late_Breakthroughs.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert sorted(json.loads((out / "psa_simplemlp_regimes.json").read_text())) == ["1*4", "2*3"]
    assert list(results.read_trials(out / "psa_simplemlp_trials.md")) == ["1*4", "2*3"]  # not the sweep's 1*5
    assert "1*4 &" in (out / "SimpleMLP_Table_Accuracy.tex").read_text()
    main(["reproduce", "--arch", "1*4,2*3", "--trials", "1", "--meta-loops", "2", "--out", "out"])
    assert "12 already complete" in capsys.readouterr().out.replace("\n", " ")
    # psa report --html draws the same files from the store, or from the exports alone.
    made = sorted(p.name for p in out.iterdir() if p.suffix != ".sqlite" and not p.name.startswith("."))
    main(["report", "--store", "out/reproduce.sqlite", "--out", "again", "--html"])
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == made
    tables = sorted(p.name for p in out.iterdir() if p.suffix in (".md", ".csv"))
    (tmp_path / "exports").mkdir()
    for name in tables:
        (tmp_path / "exports" / name).write_bytes((out / name).read_bytes())
    main(["report", "--out", "exports", "--html"])
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == made
    assert (tmp_path / "exports" / "SimpleMLP_Table_Accuracy.tex").read_text() == (
        out / "SimpleMLP_Table_Accuracy.tex"
    ).read_text()


def test_packed_sweep_stores_the_same_trials(tmp_path, mnist):
    """--pack trains small stacks side by side; the store ends up with the same results."""
    data = subset(mnist, train=300, val=200)
    stored = []
    for pack in (1, 3):
        store = Store(tmp_path / f"pack{pack}.sqlite")
        assert (
            train_grid(store, small_run(archs=("1*4", "2*3", "3*2"), meta_loops=2), "cpu", 2 << 30, data, pack=pack)[
                "trained"
            ]
            == 18
        )
        stored.append(
            sorted((r["arch"], r["mode"], r["trial"], r["bounty"], r["test_accuracy"]) for r in store.completed())
        )
        store.close()
    assert stored[0] == stored[1]


def test_trials_committed_at_different_loops_go_on_in_turns(tmp_path, mnist):
    """A sweep stopped after the first of several stacks committed two loops; the next one packs
    the architecture's trials into one stack, trains those from loop 3 and the rest from loop 1."""
    from psa.engine.batched.grouping import chunk_size
    from psa.engine.batched.stack import Layout

    data = subset(mnist, train=300, val=200)
    run = small_run(archs=("1*6",), modes=("none", "full"), trials=2)
    specs = run.grid().specs
    per_trial = Layout.of(Architecture.parse("1*6"), "simplemlp").memory_per_trial(100, 1000, 4)
    assert chunk_size(specs, 2 * per_trial) == 2

    def stop(stacks, loop, records):
        if loop == 2:
            raise KeyboardInterrupt

    store = Store(tmp_path / "psa.sqlite")
    with pytest.raises(KeyboardInterrupt):
        train_grid(store, run, "cpu", 2 * per_trial, data, checkpoint_every=0, log=stop)
    assert sorted(loops for _, loops in store.status(specs, 3).values()) == [2, 2]
    assert train_grid(store, run, "cpu", 2 << 30, data) == {"total": 4, "trained": 4, "loops": 1 + 1 + 3 + 3, "left": 0}
    assert store.counts() == {"complete": 4} and all(len(store.history(r["id"])) == 3 for r in store.completed())
    store.close()


def test_a_sweep_sharing_its_store_counts_the_grid_and_never_calls_it_complete_early(tmp_path, mnist, capsys):
    """Trials another live sweep holds are left to it: this sweep trains the rest, and reports
    them as still training elsewhere, not the grid as complete."""
    data = subset(mnist, train=300, val=200)
    store = Store(tmp_path / "psa.sqlite")
    run = small_run(archs=("1*4", "2*3"), modes=("none",), trials=2, meta_loops=2)
    theirs = [spec for spec in run.grid().specs if str(spec.arch) == "2*3"]
    other = f"{socket.gethostname()}:{os.getppid()}"  # a live process on this host: a live claim
    assert claim(store, store.start_sweep("other", {}), theirs, 2, {}, other) is not None
    done = train_grid(store, run, "cpu", 2 << 30, data, wait=False)
    assert done == {"total": 4, "trained": 2, "loops": 4, "left": 2}
    assert "about " in capsys.readouterr().out  # the preview's estimate from the cost model
