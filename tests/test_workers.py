"""`psa sweep --devices`: a worker process per device on one store, sharing the grid out by the
store's claims; tested with two workers on the CPU."""

import os
import re
import sqlite3
import subprocess
import sys

import pytest

from helpers import exported
from psa.cli import main
from psa.sweeps.workers import devices

GRID = ["--arch", "1*4,2*3", "--modes", "none,hidden", "--trials", "2", "--meta-loops", "2"]
GRID += ["--lr", "0.002", "--threads", "1", "--checkpoint-every", "0"]


@pytest.mark.slow
def test_two_cpu_workers_train_each_trial_once_as_one_worker_would(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    two = subprocess.run(
        [sys.executable, "-m", "psa", "sweep", *GRID, "--devices", "cpu,cpu", "--store", "two.sqlite"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert two.returncode == 0, two.stderr[-3000:]
    # Every worker says what it trained: 8 trials between them, each of its 2 loops once.
    trained = [
        (int(n), int(loops)) for n, loops in re.findall(r"trained (\d+) trials \((\d+) trial-loops\)", two.stdout)
    ]
    assert len(trained) == 2 and sum(n for n, _ in trained) == 8 and sum(loops for _, loops in trained) == 16
    db = sqlite3.connect("two.sqlite")
    by_trial = db.execute("SELECT trial_id, COUNT(*), COUNT(DISTINCT sweep_id) FROM loops GROUP BY trial_id").fetchall()
    assert len(by_trial) == 8 and all(count == 2 and sweeps == 1 for _, count, sweeps in by_trial)
    # Which worker trains which architecture is a race (a worker claims the next free group when it
    # is ready); on a busy machine the first may claim both before the second has loaded MNIST.
    db.close()
    main(["sweep", *GRID, "--device", "cpu", "--store", "one.sqlite"])
    assert exported("two.sqlite", "two") == exported("one.sqlite", "one")


def test_devices_are_read_and_checked():
    assert devices("cpu, cpu") == ["cpu", "cpu"] and devices("cuda:0,cuda:1") == ["cuda:0", "cuda:1"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--devices", "gpu"], "--devices gpu"), (["--devices", "cpu", "--device", "cpu"], "not both")],
)
def test_bad_devices_are_one_line_and_nothing_is_written(flags, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["sweep", *GRID, *flags])
    assert exit.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
