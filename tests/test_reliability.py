"""Nothing lost, nothing misleading: the file a user copies after a sweep, store names that are not
plain, a full disk, a lost -wal, SIGTERM, sweeps that share a store, foreign databases, psa's
checkpoint name on another file, and outputs of two studies in one folder. Sweeps run as real `psa`
processes where exit statuses, signals and files left behind are what is tested."""

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import exported, need, subset
from psa.cli import main
from psa.errors import PSAError, Stopped
from psa.store import Store
from psa.store.claims import claim
from psa.sweeps.grid import train_grid
from psa.sweeps.settings import RunSettings
from psa.sweeps.sweep import run_grid
from psa.trial.architecture import Architecture
from psa.trial.spec import Hyper

GRID = ["--arch", "1*8,2*8", "--modes", "none,full", "--trials", "2", "--meta-loops", "3"]
GRID += ["--threads", "1", "--checkpoint-every", "0"]
TRIALS = 8
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def psa(*argv, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "psa", *argv], capture_output=True, text=True, env=ENV, cwd=cwd)


def complete_in_file_alone(store: Path, tmp_path: Path) -> int:
    """Complete trials in a copy of the store's main file only: what scp, an upload or a backup takes."""
    copy = tmp_path / "copied" / store.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(store, copy)
    db = sqlite3.connect(copy)
    try:
        return db.execute("SELECT COUNT(*) FROM trials WHERE status = 'complete'").fetchone()[0]
    finally:
        db.close()


def beside(store: Path) -> list[str]:
    return sorted(path.name for path in store.parent.glob(store.name + "-*"))


# ------------------------------------------------------------------------------ the file a user copies


@pytest.mark.parametrize(
    "how", [["--device", "cpu"], ["--shard", "2/2"], pytest.param(["--devices", "cpu,cpu"], marks=pytest.mark.slow)]
)
def test_after_a_sweep_the_sqlite_file_alone_holds_every_trial(tmp_path, how):
    store = tmp_path / "solo.sqlite"
    done = psa("sweep", *GRID, *how, "--store", str(store))
    assert done.returncode == 0, done.stderr
    expected = TRIALS // 2 if how[:1] == ["--shard"] else TRIALS
    assert complete_in_file_alone(store, tmp_path) == expected
    assert beside(store) == []  # the log folded into the file, and no connection left open


def test_stores_whose_names_hold_uri_characters_merge_and_stay_as_they_were(tmp_path, mnist):
    data = subset(mnist, train=300, val=200)
    names = ["run#2.sqlite", "s%41.sqlite", "what?.sqlite", "with space.sqlite"]
    for k, name in enumerate(names):
        store = Store(tmp_path / name)
        run = RunSettings((Architecture.parse(f"1*{k + 2}"),), ("none",), 1, 1, hyper=Hyper(lr=2e-3))
        train_grid(store, run, "cpu", 2 << 30, data)
        store.close()
    decoy = Store(tmp_path / "sA.sqlite")  # what `s%41` decodes to, were the name not quoted
    decoy.close()
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    main(["merge", *(str(tmp_path / name) for name in names), "--into", str(tmp_path / "all.sqlite")])
    merged = Store.read(tmp_path / "all.sqlite")
    assert sorted(row["arch"] for row in merged.completed()) == ["1*2", "1*3", "1*4", "1*5"]
    merged.close()
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.name != "all.sqlite"}
    assert after == before  # sources unchanged, nothing beside them (-wal, -shm), no file named `run`


# ------------------------------------------------------------------------------ a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 256 KiB at tmp_path/disk: a real full disk (mounting needs root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    need(mounted.returncode == 0, f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): needs root")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_told_as_such_and_the_same_command_goes_on(tmp_path, small_disk):
    store = small_disk / "psa.sqlite"
    full = psa("sweep", *GRID, "--store", str(store))
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
    assert f"no space left on the disk of results store {store}" in full.stderr and "damaged" not in full.stderr
    assert "run the same command again" in full.stderr
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    again = psa("sweep", *GRID, "--store", str(store))
    assert again.returncode == 0 and "resuming from the store" in again.stdout, again.stdout + again.stderr
    unbroken = psa("sweep", *GRID, "--store", str(tmp_path / "unbroken.sqlite"))
    assert unbroken.returncode == 0
    assert exported(str(store), str(tmp_path / "a")) == exported(str(tmp_path / "unbroken.sqlite"), str(tmp_path / "b"))


def test_an_export_onto_a_full_disk_writes_no_half_set(tmp_path, small_disk, mnist):
    store = Store(tmp_path / "psa.sqlite")
    run = RunSettings(tuple(map(Architecture.parse, ("1*4", "2*4", "3*4"))), ("none", "full"), 4, 25)
    train_grid(store, run, "cpu", 2 << 30, subset(mnist, train=100, val=50))
    store.close()
    out = small_disk / "results"
    (small_disk / "filler").write_bytes(bytes(200 << 10))
    for command in ("export", "report"):
        done = psa(command, "--store", str(tmp_path / "psa.sqlite"), "--out", str(out))
        text = done.stdout + done.stderr
        assert done.returncode == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1, text
        assert "No space left on device" in text and f"nothing was changed in {out}" in text
        assert not out.exists() and sorted(p.name for p in small_disk.iterdir()) == ["filler"]


# ------------------------------------------------------------------------------ a lost log, a signal


def test_a_store_that_lost_its_trials_while_a_sweep_ran_is_never_called_complete(tmp_path, mnist):
    """The file the sweep writes is swapped for an empty store mid-run (as a lost -wal leaves it):
    read back at the end, the grid is not there, and the run says so instead of succeeding."""
    store = tmp_path / "psa.sqlite"
    Store(tmp_path / "empty.sqlite").close()
    run = RunSettings((Architecture.parse("1*4"),), ("none",), 2, 2)

    def lose(stacks, loop, records):
        if loop == 1:
            os.replace(tmp_path / "empty.sqlite", store)

    with pytest.raises(PSAError, match="holds 0 complete trials of the grid, but this run counted 2"):
        run_grid(run, store, log=lose, data=subset(mnist, train=300, val=200))


def test_sigterm_commits_what_was_trained_and_releases_the_claims(tmp_path, mnist):
    store = Store(tmp_path / "psa.sqlite")
    run = RunSettings((Architecture.parse("1*4"),), ("none", "full"), 2, 4)

    def reclaim(stacks, loop, records):
        if loop == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as a spot reclaim or `docker stop` sends it

    data = subset(mnist, train=300, val=200)
    with pytest.raises(Stopped) as stopped:
        train_grid(store, run, "cpu", 2 << 30, data, checkpoint_every=3600, log=reclaim)
    assert stopped.value.signum == signal.SIGTERM
    rows = store.db.execute("SELECT loops_done, owner FROM trials").fetchall()
    assert rows == [(2, None)] * 4  # committed without waiting for the hour, and no claim left
    assert train_grid(store, run, "cpu", 2 << 30, data)["trained"] == 4  # taken over at once
    store.close()


def test_a_sigterm_to_psa_sweep_ends_it_with_one_line_and_status_143(tmp_path):
    store = tmp_path / "psa.sqlite"
    grid = [*GRID, "--meta-loops", "40", "--store", str(store)]
    sweep = subprocess.Popen([sys.executable, "-m", "psa", "sweep", *grid], stderr=subprocess.PIPE, text=True, env=ENV)
    ends = time.time() + 120
    while time.time() < ends and not beside(store):
        time.sleep(0.2)
    time.sleep(2)
    sweep.send_signal(signal.SIGTERM)
    err = sweep.communicate(timeout=120)[1]
    assert sweep.returncode == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err
    db = sqlite3.connect(store)
    assert db.execute("SELECT COUNT(*) FROM trials WHERE owner IS NOT NULL").fetchone() == (0,)
    db.close()


@pytest.mark.slow
def test_a_sweep_waits_for_the_trials_another_sweep_holds_and_takes_over_what_it_abandons(tmp_path):
    """Another live sweep holds part of the grid: with --no-wait this one leaves at once with status
    75; by default it waits, and takes those trials over once that sweep is gone."""
    store = tmp_path / "psa.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        grid = ["--arch", "1*4,2*4", "--modes", "none", "--trials", "2", "--meta-loops", "2", "--threads", "1"]
        store_db = Store(store)
        theirs = [s for s in RunSettings((Architecture.parse("2*4"),), ("none",), 2, 2).grid().specs]
        owner = f"{socket.gethostname()}:{holder.pid}"
        assert claim(store_db, store_db.start_sweep("other", {}), theirs, 2, {}, owner) is not None
        store_db.close()
        left = psa("sweep", *grid, "--store", str(store), "--no-wait")
        assert left.returncode == 75 and "2 trials of the grid are still training in other sweeps" in left.stdout
        waiting = subprocess.Popen(
            [sys.executable, "-m", "psa", "sweep", *grid, "--store", str(store)],
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        said = ""
        for line in waiting.stdout:  # until it says it waits (a busy machine starts it in seconds)
            said += line
            if "waiting for 2 trials" in line:
                break
        assert waiting.poll() is None, said  # still waiting for the holder
        holder.kill()
        holder.wait()  # reaped: a zombie would still answer as a live process
        out = said + waiting.communicate(timeout=120)[0]
        assert waiting.returncode == 0 and "waiting for 2 trials" in out and "the grid is complete" in out, out
    finally:
        holder.kill()


# ------------------------------------------------------------------------------ foreign files


@pytest.mark.slow
def test_a_database_psa_did_not_make_is_never_written(tmp_path):
    foreign = tmp_path / "foreign.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE customers (name TEXT)")
    db.execute("INSERT INTO customers VALUES ('Ada')")
    db.commit()
    db.close()
    before = foreign.read_bytes()
    for argv in (
        ["export", "--store", str(foreign), "--out", str(tmp_path / "out")],
        ["report", "--store", str(foreign), "--out", str(tmp_path / "out")],
        ["sweep", *GRID, "--store", str(foreign)],
        ["merge", str(foreign), "--into", str(tmp_path / "into.sqlite")],
    ):
        done = psa(*argv)
        text = done.stdout + done.stderr
        assert done.returncode == 2 and len(text.strip().splitlines()) == 1 and "Traceback" not in text, text
        assert f"{foreign} is not a psa results store (it holds the tables customers)" in text
        assert foreign.read_bytes() == before and beside(foreign) == [], argv
    assert sorted(path.name for path in tmp_path.iterdir()) == ["foreign.sqlite"]


def test_clean_removes_only_what_psa_made_unless_named(tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    notes = models / "psa_simplemlp_lkg.safetensors"
    notes.write_text("notes\n")
    main(["clean", "--model-dir", str(models)])
    assert notes.read_text() == "notes\n" and "not a readable psa checkpoint" in capsys.readouterr().out
    main(["clean", "--all", "--model-dir", str(models)])
    assert notes.exists()
    main(["clean", "--model-dir", str(models), str(notes)])  # named: the form a damaged checkpoint's error gives
    assert not notes.exists()


# ------------------------------------------------------------------------------ outputs of two studies


def test_a_report_into_a_folder_of_another_study_leaves_nothing_of_it_behind(tmp_path, mnist, capsys):
    data = subset(mnist, train=100, val=50)
    stores = {}
    for name, modes in (("six", None), ("two", ("none", "hidden"))):
        stores[name] = tmp_path / f"{name}.sqlite"
        store = Store(stores[name])
        archs = tuple(map(Architecture.parse, ("1*4", "2*4")))
        run = RunSettings(archs, modes or RunSettings(archs).modes, 2, 2)
        train_grid(store, run, "cpu", 2 << 30, data)
        store.close()
    out = tmp_path / "results"
    (tmp_path / "results").mkdir()
    (out / "mine.txt").write_text("a researcher's own notes\n")
    main(["report", "--store", str(stores["six"]), "--out", str(out)])
    first = {path.name for path in out.iterdir()}
    assert "psa_simplemlp_regimes.json" in first and "SimpleMLP_Heatmap_Regimes.png" in first
    capsys.readouterr()
    main(["report", "--store", str(stores["two"]), "--out", str(out)])
    said = " ".join(capsys.readouterr().out.split())
    assert "left out psa_simplemlp_regimes.json: needs results in all six modes" in said
    second = {path.name for path in out.iterdir()}
    assert "psa_simplemlp_regimes.json" not in second and "SimpleMLP_Heatmap_Regimes.png" not in second
    assert "mine.txt" in second and "psa_simplemlp_trials.md" in second
    main(["report", "--out", str(out)])  # the same study again, from its exports
    assert {path.name for path in out.iterdir()} == second


@pytest.mark.parametrize(
    "argv, message",
    [
        (["reproduce", "--full", "--arch", "1*4"], "--full runs the paper's whole grid: leave out --arch"),
        (["reproduce", "--full", "--trials", "3"], "--full runs the paper's whole grid: leave out --trials"),
        (["export", "--out", "a_file/sub"], "--out a_file/sub: a_file is a file, not a folder"),
        (["report", "--out", "/proc/x"], "--out /proc/x: cannot write there"),
        (["regimes", "--trials-file", "store.sqlite"], "is an SQLite database, not a text file"),
        (["compare", "--trials-file", "store.sqlite"], "is an SQLite database, not a text file"),
        (["sweep", "--arch", ""], "--arch '': no architectures given"),
        (["sweep", "--modes", ""], "--modes '': no modes given"),
        (["sweep", "--arch", "1*4", "--threads", "1000"], "--threads 1000: this process may use"),
        (["sweep", "--seed", "9223372036854775808"], "argument --seed: must be at most 2^63 - 1"),
        (["train", "--arch", "1*4", "--seed", "18446744073709551616"], "argument --seed: must be at most 2^63 - 1"),
        (["sweep", "--checkpoint-every", "inf"], "argument --checkpoint-every: must be a finite number >= 0, not inf"),
    ],
)
def test_nonsense_is_refused_in_one_line_with_nothing_written(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("mine\n")
    Store(tmp_path / "store.sqlite").close()
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as done:
        main(argv)
    text = " ".join(capsys.readouterr().err.split())
    assert done.value.code == 2 and message in text and len(text.splitlines()) == 1, text
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("cell", ["nan%", "-5%", "150.5%", "inf%"])
def test_impossible_bounties_in_a_trials_file_are_refused(tmp_path, monkeypatch, capsys, cell):
    table = tmp_path / "trials.md"
    rows = "\n".join(f"| {t} | " + " | ".join(["90.00%"] * 6) + " |" for t in (1, 2))
    table.write_text(
        "### Architecture: 1*4\n\n| Trial | None | Decay | Dropout | Full | Hidden | Output |\n"
        + "|:-----:|:----:|:----:|:----:|:----:|:----:|:----:|\n"
        + rows.replace("90.00%", cell, 1)
        + "\n"
    )
    for argv in (
        ["regimes", "--trials-file", str(table), "--zeror", "11.02"],
        ["compare", "--trials-file", str(table)],
    ):
        with pytest.raises(SystemExit) as done:
            main(argv)
        text = capsys.readouterr().err
        assert done.value.code == 2 and f"expected a percentage in [0, 100] like 98.22% or N/A, found '{cell}'" in text


def test_a_run_the_cost_model_puts_over_an_hour_says_so_before_it_starts(tmp_path, mnist, capsys):
    store = Store(tmp_path / "psa.sqlite")
    run = RunSettings((Architecture.parse("1*64"),), ("none",), 1, 10**6)

    def first_loop_only(stacks, loop, records):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_grid(store, run, "cpu", 2 << 30, subset(mnist, train=100, val=50), log=first_loop_only)
    store.close()
    said = " ".join(capsys.readouterr().out.split())
    assert re.search(r"a long run: about \d+d", said) and "the same command goes on from the store" in said
