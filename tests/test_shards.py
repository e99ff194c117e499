"""Shards anywhere: the balanced split, `psa sweep --shard K/N` into a store per shard, and
`psa merge` of the shards' stores, which exports what one unsharded sweep exports."""

import shutil
import sqlite3
from pathlib import Path

import pytest

from helpers import exported, subset
from psa import published
from psa.cli import main
from psa.engine.batched import engine_version
from psa.sweeps import shards
from psa.sweeps.settings import RunSettings
from psa.trial.architecture import read_configurations

ARCHS = "1*4,2*3,1*6,3*2"
GRID = ["--arch", ARCHS, "--modes", "none,hidden", "--trials", "2", "--meta-loops", "2", "--device", "cpu"]
GRID += ["--lr", "0.002", "--checkpoint-every", "0"]


@pytest.fixture
def small_mnist(mnist, monkeypatch, tmp_path):
    monkeypatch.setattr("psa.sweeps.sweep.load_mnist", lambda data_dir=None: subset(mnist, train=600, val=300))
    monkeypatch.chdir(tmp_path)


def test_the_split_shares_every_architecture_once_balanced_and_the_same_every_time():
    archs = tuple(read_configurations(published.CONFIGURATIONS))
    run = RunSettings(archs, ("none", "full"), 10, 100)
    split = shards.split(run, 5)
    assert sorted(str(a) for shard in split.shards for a in shard) == sorted(map(str, archs))
    assert max(split.seconds) / min(split.seconds) < 1.2
    assert shards.split(run, 5) == split
    assert [shards.shard_run(run, k, 5) for k in (1, 2)] == [
        RunSettings(split.shards[0], ("none", "full"), 10, 100),
        RunSettings(split.shards[1], ("none", "full"), 10, 100),
    ]
    # A shard keeps its architectures in the grid's order.
    assert all(list(shard) == sorted(shard, key=archs.index) for shard in split.shards)


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_a_bad_shard_is_one_line_and_nothing_is_written(text, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["sweep", *GRID, "--shard", text])
    assert exit.value.code == 2 and "K/N" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_more_shards_than_architectures_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["sweep", *GRID, "--shard", "5/5"])
    assert exit.value.code == 2 and "only 4 architectures" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def trials(store: str) -> list[tuple]:
    db = sqlite3.connect(store)
    try:
        return db.execute(
            "SELECT arch, mode, trial, seed, bounty, test_accuracy FROM trials ORDER BY 1, 2, 3"
        ).fetchall()
    finally:
        db.close()


def test_three_shards_merged_export_what_one_sweep_exports(small_mnist, capsys):
    for k in (1, 2, 3):
        main(["sweep", *GRID, "--shard", f"{k}/3"])
    stores = [str(shards.store_name(k, 3)) for k in (1, 2, 3)]
    assert sum(len(trials(s)) for s in stores) == 16 and all(trials(s) for s in stores)
    main(["sweep", *GRID, "--store", "whole.sqlite"])
    capsys.readouterr()
    main(["merge", *stores, "--into", "merged.sqlite"])
    assert "16 trials added to merged.sqlite" in capsys.readouterr().out
    assert exported("merged.sqlite", "merged") == exported("whole.sqlite", "whole")
    assert len(exported("merged.sqlite", "merged")["psa_trials.csv"]) == 16

    before = trials("merged.sqlite")
    main(["merge", *stores, "--into", "merged.sqlite"])  # idempotent
    assert "0 trials added" in capsys.readouterr().out and trials("merged.sqlite") == before

    # A fourth store with one trial of other results: refused, nothing written anywhere.
    shutil.copyfile(stores[0], "conflict.sqlite")
    db = sqlite3.connect("conflict.sqlite")
    with db:
        db.execute("UPDATE trials SET bounty = bounty - 1 WHERE id = (SELECT MIN(id) FROM trials)")
    db.close()
    for into in ("merged.sqlite", "new.sqlite"):
        with pytest.raises(SystemExit) as exit:
            main(["merge", *stores, "conflict.sqlite", "--into", into])
        error = capsys.readouterr().err
        assert exit.value.code == 2 and "conflict.sqlite" in error and "bounty" in error
        assert len(error.strip().splitlines()) == 1
    assert trials("merged.sqlite") == before and not Path("new.sqlite").exists()

    # Trials of another engine version: refused too.
    shutil.copyfile(stores[1], "engine.sqlite")
    db = sqlite3.connect("engine.sqlite")
    with db:
        db.execute("UPDATE trials SET engine = 99")
    db.close()
    with pytest.raises(SystemExit) as exit:
        main(["merge", stores[0], "engine.sqlite", "--into", "other.sqlite"])
    assert exit.value.code == 2 and f"engine versions [{engine_version('cpu')}, 99]" in capsys.readouterr().err.replace(
        "\n", " "
    )
    assert not Path("other.sqlite").exists()


def test_merge_of_a_missing_store_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["merge", "nowhere.sqlite", "--into", "merged.sqlite"])
    assert exit.value.code == 2 and "nowhere.sqlite not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
