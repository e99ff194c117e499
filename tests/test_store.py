"""The results store under attack: kill -9 mid-sweep, two sweeps on one store, damaged files.
Sweeps run as real `psa sweep` processes on small stacks of the whole MNIST training set, so a
meta-loop lasts a fraction of a second and a kill lands between, or inside, commits."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from psa.engine.batched import engine_version
from psa.errors import PSAError
from psa.store import Store

SWEEP = [
    "--arch",
    "1*8,2*8",
    "--modes",
    "none,full",
    "--trials",
    "3",
    "--meta-loops",
    "6",
    "--device",
    "cpu",
    "--checkpoint-every",
    "0",
    "--threads",
    "1",
]
TRIALS, LOOPS = 12, 6
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def start(store, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "psa", "sweep", *SWEEP, "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**ENV, **env},
    )


def holds_open(proc, path) -> bool:
    """Whether the process has the file open (Linux's /proc)."""
    target = os.path.realpath(path)
    try:
        return any(os.path.realpath(fd) == target for fd in Path(f"/proc/{proc.pid}/fd").iterdir())
    except OSError:  # a descriptor closed while listed
        return False


def query(store, sql: str) -> list:
    db = sqlite3.connect(store, timeout=30)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # the tables do not exist yet
        return []
    finally:
        db.close()


def outcome(store) -> dict:
    """Every trial's bounty, test accuracy and loop records, as the store holds them."""
    trials = query(store, "SELECT id, arch, mode, trial, status, bounty, bounty_loop, test_accuracy FROM trials")
    loops = query(store, "SELECT trial_id, loop, score, lkg, bounty, improved, ablated FROM loops ORDER BY loop")
    return {
        (arch, mode, trial): (status, bounty, bounty_loop, test, [row[1:] for row in loops if row[0] == trial_id])
        for trial_id, arch, mode, trial, status, bounty, bounty_loop, test in trials
    }


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    store = tmp_path_factory.mktemp("unbroken") / "psa.sqlite"
    assert start(store).wait(timeout=300) == 0
    result = outcome(store)
    assert len(result) == TRIALS and all(
        status == "complete" and len(loops) == LOOPS for status, *_, loops in result.values()
    )
    return result


def kill_when(proc, condition, deadline: float = 120) -> None:
    ends = time.time() + deadline
    while proc.poll() is None and time.time() < ends and not condition():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_after_two_committed_loops_resumes_there(tmp_path, unbroken):
    store = tmp_path / "psa.sqlite"
    proc = start(store)
    kill_when(proc, lambda: max([done for (done,) in query(store, "SELECT loops_done FROM trials")], default=0) >= 2)
    committed = dict(query(store, "SELECT id, loops_done FROM trials WHERE status = 'running'"))
    assert committed and max(committed.values()) >= 2
    rerun = subprocess.run(
        [sys.executable, "-m", "psa", "sweep", *SWEEP, "--store", str(store)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resuming from the store" in " ".join(rerun.stdout.split())
    # The rerun (the second sweep) trained only the loops that were not committed.
    second = query(store, "SELECT MAX(id) FROM sweeps")[0][0]
    for trial_id, done in committed.items():
        trained = [
            row[0]
            for row in query(store, f"SELECT loop FROM loops WHERE trial_id = {trial_id} AND sweep_id = {second}")
        ]
        assert sorted(trained) == list(range(done + 1, LOOPS + 1))
    assert outcome(store) == unbroken
    assert query(store, "SELECT COUNT(*) FROM weights") == [(0,)]  # dropped once complete


@pytest.mark.slow
def test_kills_at_random_moments_lose_nothing_and_change_nothing(tmp_path, unbroken):
    store, chance = tmp_path / "psa.sqlite", random.Random(20261201)
    for _ in range(4):
        proc = start(store)
        deadline = time.time() + chance.uniform(2.5, 6.0)  # after start-up, mid-training
        kill_when(proc, lambda deadline=deadline: time.time() > deadline)
    proc = start(store)
    assert proc.wait(timeout=300) == 0
    assert outcome(store) == unbroken


@pytest.mark.slow
def test_two_sweeps_on_one_store_train_every_trial_once(tmp_path, unbroken):
    store = tmp_path / "psa.sqlite"
    Store(store).close()  # both find the tables
    # Both start together: each waits at its first write to the store until both have opened it.
    # Else one that starts a second or two later may find the other done (the grid trains in one).
    lock = sqlite3.connect(store, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    procs = [start(store), start(store)]
    deadline = time.time() + 120
    while not all(holds_open(proc, store) for proc in procs) and time.time() < deadline:
        time.sleep(0.1)
    lock.execute("ROLLBACK")
    lock.close()
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    # The work each did, from each one's own account: trial-loops run, committed or not.
    work = [int(" ".join(out.split()).split("trial-loops")[0].rsplit("(", 1)[1]) for out in outputs]
    assert sum(work) == TRIALS * LOOPS and all(work), work
    per_sweep = query(store, "SELECT sweep_id, COUNT(*) FROM loops GROUP BY sweep_id")
    assert sorted(count for _, count in per_sweep) == sorted(work)
    assert outcome(store) == unbroken


@pytest.mark.slow
def test_a_damaged_store_is_a_clear_error_and_stays_as_it_was(tmp_path, unbroken):
    path = tmp_path / "psa.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PSAError, match=f"results store {path} is damaged or unreadable"):
        Store(path)
    assert path.read_bytes() == b"this is not a database" * 100

    store = tmp_path / "real.sqlite"
    assert start(store).wait(timeout=300) == 0
    query(store, "PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(store.read_bytes())
    page = 4096
    data[3 * page : 4 * page] = bytes(range(256)) * (page // 256)  # one page of the trials' b-trees
    store.write_bytes(bytes(data))
    done = subprocess.run(
        [sys.executable, "-m", "psa", "export", "--store", str(store), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"results store {store} is damaged or unreadable" in " ".join(done.stderr.split())
    assert store.read_bytes() == bytes(data) and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_store_of_the_previous_schema_opens_upgraded_and_resumes(tmp_path, fixtures):
    """A schema-2 store (written by psa before threads, engine and loss were recorded), left by a
    sweep killed after three of six loops of its 1*8 trials, which engine version 1 began: this
    psa's fused CPU kernels (version 4) refuse to finish them with one line that says how, and
    under PSA_FUSED=0 (version 1) they resume to an unbroken version-1 sweep's results."""
    store = tmp_path / "old.sqlite"
    store.write_bytes((fixtures / "store-v2-interrupted.sqlite").read_bytes())
    assert query(store, "PRAGMA user_version") == [(2,)]
    assert {row for row in query(store, "SELECT arch, status, loops_done FROM trials")} == {("1*8", "running", 3)}
    if engine_version("cpu") == 4:
        refused = start(store)
        assert refused.wait(timeout=300) == 2
        message = refused.stdout.read()
        assert "begun by engine version 1, this psa runs version 4 here (PSA_FUSED=0" in " ".join(message.split())
        assert {row for row in query(store, "SELECT arch, status, loops_done FROM trials")} == {("1*8", "running", 3)}
    assert start(store, PSA_FUSED="0").wait(timeout=300) == 0
    assert query(store, "PRAGMA user_version") == [(4,)]
    unbroken = tmp_path / "unbroken.sqlite"
    assert start(unbroken, PSA_FUSED="0").wait(timeout=300) == 0
    assert outcome(store) == outcome(unbroken)
    assert set(query(store, "SELECT threads, engine FROM trials WHERE arch = '2*8'")) == {(1, 1)}
