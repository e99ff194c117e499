"""`psa slurm` against a real one-node Slurm on localhost: munged, slurmctld and slurmd started for
the session in a temporary folder (the simplest plugins, no cgroups, no accounting) and stopped
after. Missing Slurm skips these tests here, and fails them in CI, where .ci/run installs slurm-wlm
and munge."""

import contextlib
import getpass
import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from helpers import WHEN, exported, need
from psa.cli import main
from psa.cli.slurm import minutes
from psa.clusters.sagemaker.launch import source_archive
from psa.clusters.slurm import survey

pytestmark = pytest.mark.slurm

GRID = ["--arch", "1*4,2*3,3*2", "--modes", "none,hidden", "--trials", "2", "--meta-loops", "2"]
GRID += ["--lr", "0.002", "--device", "cpu", "--threads", "1"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(what: str, ready, seconds: float, logs: list[Path], fail: bool = True) -> None:
    ends = time.time() + seconds
    while time.time() < ends:
        if ready():
            return
        time.sleep(0.5)
    if not fail:
        return
    tails = "\n".join(f"--- {log}\n{log.read_text()[-3000:] if log.is_file() else '(none)'}" for log in logs)
    pytest.fail(f"{what} not ready after {seconds:.0f} s\n{tails}")


def _queue(env, job: str | None = None) -> str:
    """The states squeue says of the job, or of every job ('' once none is left in the queue)."""
    which = ["-j", job] if job else []
    found = subprocess.run(["squeue", "-h", "-o", "%T", *which], capture_output=True, text=True, env=env)
    return found.stdout.strip()


def slurm_conf(folder: Path) -> str:
    user = getpass.getuser()
    return f"""ClusterName=psatest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={folder}/munge.sock
CredType=cred/munge
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A one-node cluster on localhost for the session; SLURM_CONF points sbatch and submitit at it."""
    # The daemons live in sbin, which a user's PATH may lack.
    where = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    tools = {tool: shutil.which(tool, path=where) for tool in ("munged", "slurmctld", "slurmd", "sinfo")}
    missing = [tool for tool, path in tools.items() if path is None]
    need(not missing, f"{', '.join(missing)} not found: install slurm-wlm and munge (as .ci/run does)")
    folder = tmp_path_factory.mktemp("slurm")
    for name in ("state", "spool"):
        (folder / name).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = []
    logs = [folder / f"{name}.log" for name in ("munged", "slurmctld", "slurmd")]

    def start(command: list[str], log: Path):
        daemons.append(subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env))

    munge = [tools["munged"], "-F", "-f", f"--key-file={key}", f"--socket={folder}/munge.sock"]
    munge += [f"--pid-file={folder}/munged.pid", f"--seed-file={folder}/munged.seed", f"--log-file={logs[0]}"]
    start(munge, folder / "munged.out")
    try:
        _wait("munged", (folder / "munge.sock").exists, 30, logs)
        start([tools["slurmctld"], "-D", "-c", "-f", str(conf)], logs[1])
        start([tools["slurmd"], "-D", "-N", "localhost", "-f", str(conf)], logs[2])

        def idle() -> bool:
            found = subprocess.run([tools["sinfo"], "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            return found.stdout.strip() == "idle"

        _wait("slurmd", idle, 60, logs)
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(conf)
        yield folder
    finally:
        # A job still running would outlive its daemons: cancelled first, given a moment to end.
        if len(daemons) == 3:
            subprocess.run(["scancel", "--user", getpass.getuser()], env=env, check=False)
            _wait("cancelled jobs", lambda: not _queue(env), 60, logs, fail=False)
        for daemon in reversed(daemons):
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        if "previous" in locals():
            os.environ.pop("SLURM_CONF")
            if previous is not None:
                os.environ["SLURM_CONF"] = previous


@pytest.mark.slow
def test_every_front_end_gives_the_same_exports(slurm, tmp_path, monkeypatch, capsys, mnist_dir):
    """One run path (psa.sweeps.sweep.run_grid) behind every front end: the grid as a three-task
    Slurm array, as a SageMaker job (the source archive's entry script, run as the training image
    runs it) and as one local `psa sweep` gives the same exports."""
    monkeypatch.chdir(tmp_path)
    main(["slurm", "submit", "--shards", "3", "--folder", "shared", "--time", "20", "--checkpoint-every", "0", *GRID])
    assert "submitted Slurm job array" in capsys.readouterr().out

    def complete() -> bool:
        _, found = survey(Path("shared"))
        return sum(s.done for s in found) == 12

    _wait("the array's stores", complete, 900, sorted(Path("shared/logs").glob("*")) + [slurm / "slurmd.log"])
    main(["slurm", "status", "--folder", "shared"])
    assert "12 of 12 trials complete" in " ".join(capsys.readouterr().out.split())
    copied = 0  # each shard's .sqlite file alone, as a copy of the folder takes it, holds its trials
    for k in (1, 2, 3):
        copy = shutil.copyfile(f"shared/psa-shard-{k}-of-3.sqlite", tmp_path / f"copy-{k}.sqlite")
        db = sqlite3.connect(copy)
        copied += db.execute("SELECT COUNT(*) FROM trials WHERE status = 'complete'").fetchone()[0]
        db.close()
    assert copied == 12
    main(["slurm", "collect", "--folder", "shared", "--store", "merged.sqlite"])
    assert "12 trials added to merged.sqlite" in " ".join(capsys.readouterr().out.split())
    main(["slurm", "collect", "--folder", "shared", "--store", "merged.sqlite"])
    assert "0 trials added" in capsys.readouterr().out

    code = tmp_path / "code"
    with tarfile.open(fileobj=io.BytesIO(source_archive())) as tar:
        tar.extractall(code, filter="data")
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}  # the archive's own psa
    env |= {"SM_MODEL_DIR": str(tmp_path / "model"), "SM_CHANNEL_TRAINING": str(mnist_dir)}
    job = [sys.executable, "psa_entry.py", *GRID, "--checkpoint-dir", str(tmp_path / "checkpoints")]
    done = subprocess.run(job, cwd=code, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr

    main(["sweep", *GRID, "--store", "whole.sqlite"])
    ignore = WHEN | {"job"}  # merged trials name the array task that trained them
    whole = exported("whole.sqlite", "whole", ignore)
    assert exported("merged.sqlite", "merged", ignore) == whole
    assert exported(str(tmp_path / "model" / "psa.sqlite"), "job", ignore) == whole


@pytest.mark.slow  # Slurm starts a requeued task again after about two minutes
def test_a_requeued_task_goes_on_from_its_store(slurm, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    grid = ["--arch", "1*4", "--modes", "none", "--trials", "2", "--meta-loops", "16", "--lr", "0.002"]
    grid += ["--device", "cpu", "--threads", "1"]
    main(["slurm", "submit", "--shards", "1", "--folder", "shared", "--checkpoint-every", "0", *grid])
    job = json.loads(Path("shared/plan.json").read_text())["job"]
    store = Path("shared") / "psa-shard-1-of-1.sqlite"

    def progress() -> tuple[int, str | None]:
        """The fewest loops a trial has in the task's store, and the task's process (its claim)."""
        if not store.is_file():
            return 0, None
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COALESCE(MIN(loops_done), 0), MAX(owner) FROM trials").fetchone()
        finally:
            db.close()

    logs = sorted(Path("shared/logs").glob("*")) + [slurm / "slurmd.log"]
    _wait("a first commit", lambda: progress()[0] >= 1, 600, logs)
    loops, owner = progress()
    assert loops < 16 and owner
    # Preemption: Slurm requeues the task; the task's process dies at once (submitit ignores the
    # SIGTERM, and a fast machine could finish the shard within Slurm's KillWait).
    subprocess.run(["scontrol", "requeue", job], check=True, env=os.environ)  # the array, of one task
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(owner.rpartition(":")[2]), signal.SIGKILL)
    # Slurm starts the requeued task again after a couple of minutes (its old credential revoked).

    def ended() -> bool:
        return not _queue(os.environ, job) and survey(Path("shared"))[1][0].done == 2

    _wait("the requeued task", ended, 600, logs)
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    sweeps = db.execute("SELECT COUNT(DISTINCT sweep_id) FROM loops").fetchone()[0]
    db.close()
    assert sweeps == 2  # the loops before the requeue, and the rest after it
    main(["slurm", "collect", "--folder", "shared", "--store", "merged.sqlite"])
    main(["sweep", *grid, "--store", "whole.sqlite"])
    ignore = WHEN | {"job"}
    assert exported("merged.sqlite", "merged", ignore) == exported("whole.sqlite", "whole", ignore)


def test_another_grid_in_the_same_folder_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("shared").mkdir()
    Path("shared/plan.json").write_text('{"archs": ["1*4"], "modes": [], "settings": {}, "shards": []}\n')
    with pytest.raises(SystemExit) as exit:
        main(["slurm", "submit", "--shards", "3", "--folder", "shared", *GRID])
    assert exit.value.code == 2 and "another grid" in capsys.readouterr().err


def test_time_limits_read_as_slurm_writes_them():
    assert [minutes(text) for text in ("90", "1:30", "2-0:00", "0:05")] == [90, 90, 2880, 5]
    for bad in ("0", "1:2:3", "2-5", "x"):
        with pytest.raises(Exception, match="expected|at least"):
            minutes(bad)
