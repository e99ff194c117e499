import sys

import pytest

from helpers import subset
from psa.cli import main
from psa.engine.curves import TAGS, Curves, run_dir
from psa.store import Store
from psa.sweeps.grid import train_grid
from psa.sweeps.settings import RunSettings
from psa.trial.architecture import Architecture
from psa.trial.spec import Hyper, TrialSpec

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of a run folder, read back by TensorBoard's own reader."""
    events = event_accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


class Interrupted(Exception):
    pass


def interrupt_at(loop: int):
    def log(stacks, at, records):
        if at == loop:
            raise Interrupted

    return log


def test_sweep_curves_hold_every_trial_loop_as_the_store_does(tmp_path, mnist):
    """Written at every commit (here after every loop), each trial's curves have one step per
    meta-loop, equal to the store's records (TensorBoard keeps float32), across an interrupted
    sweep and the sweep that resumes it."""
    run = RunSettings(
        (Architecture.parse("1*4"), Architecture.parse("2*3")),
        ("none", "hidden"),
        trials=2,
        meta_loops=3,
        seed=11,
        seeding="independent",
        hyper=Hyper(lr=2e-3, batch_size=100),
    )
    store, data = Store(tmp_path / "psa.sqlite"), subset(mnist, train=300, val=200)
    with Curves(tmp_path / "tb") as curves, pytest.raises(Interrupted):
        train_grid(store, run, "cpu", 2 << 30, data, checkpoint_every=0, log=interrupt_at(2), curves=curves)
    with Curves(tmp_path / "tb") as curves:
        assert train_grid(store, run, "cpu", 2 << 30, data, checkpoint_every=0, curves=curves)["trained"] == 8
        assert not curves.writers  # every trial completed, every writer closed
    rows = store.completed()
    assert len(rows) == 8
    files = [len(list(run_dir(tmp_path / "tb", spec).iterdir())) for spec in run.grid().specs]
    assert sorted(files) == [1] * 4 + [2] * 4  # one architecture was interrupted and resumed
    for spec in run.grid().specs:
        (row,) = [r for r in rows if (r["arch"], r["mode"], r["trial"]) == (str(spec.arch), spec.mode, spec.trial)]
        history = store.history(row["id"])
        assert all(h.loss is not None and h.loss > 0 for h in history)
        curves_read = scalars(run_dir(tmp_path / "tb", spec))
        assert set(curves_read) == set(TAGS)
        for tag, field in TAGS.items():
            assert [step for step, _ in curves_read[tag]] == [1, 2, 3]
            assert [value for _, value in curves_read[tag]] == pytest.approx(
                [getattr(h, field) for h in history], rel=1e-6
            )


def test_train_writes_its_curves_and_shows_the_loss(tmp_path, capsys):
    board = tmp_path / "tb"
    argv = ["train", "--arch", "1*4", "--seed", "3", "--meta-loops", "2", "--model-dir", str(tmp_path / "m")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--tensorboard", str(board)])
        raise SystemExit(0)
    assert exit_info.value.code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Loop ")]
    assert len(lines) == 2 and all("| Loss: " in line for line in lines)
    spec = TrialSpec(Architecture.parse("1*4"), "simplemlp", "none", 0, 3)
    curves_read = scalars(run_dir(board, spec))
    losses = [float(line.rsplit("Loss: ", 1)[1]) for line in lines]
    assert [value for _, value in curves_read["loss/train"]] == pytest.approx(losses, abs=5e-5)
    assert [step for step, _ in curves_read["accuracy/bounty"]] == [1, 2]


def test_without_the_package_the_flag_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # an import of it now fails
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--arch", "1*4", "--store", str(tmp_path / "s.sqlite"), "--tensorboard", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "pip install tensorboard" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.sqlite").exists()  # refused before anything was written
