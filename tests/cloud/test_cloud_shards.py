"""The sharded plan against moto: launch, relaunch, collect and status; and a shard's job run on
this CPU, killed, and resumed from its checkpoint folder."""

import contextlib
import gzip
import hashlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from cloud_helpers import BUCKET, PREFIX, model_archive, run_cli, sagemaker_jobs

from helpers import subset
from psa import published
from psa.cli import main
from psa.clusters.sagemaker import sharded
from psa.clusters.sagemaker.layout import MNIST_FOLDER as FOLDER
from psa.engine import costmodel
from psa.store import Store
from psa.sweeps.settings import RunSettings
from psa.trial.architecture import read_configurations
from psa.trial.data import SHA256

pytestmark = pytest.mark.moto  # every test talks to the moto server (conftest.py)

GRID = ["--modes", "none,hidden", "--trials", "2", "--meta-loops", "2", "--retry-wait", "0"]


@pytest.fixture
def configs(tmp_path) -> Path:
    path = tmp_path / "configurations.txt"
    path.write_text("1*4\n2*3\n3*2\n")
    return path


def launched(configs, *extra) -> dict:
    assert run_cli("cloud", "launch", "--configs", str(configs), "--shards", "3", *GRID, *extra) == 0
    return {name: boto3.client("sagemaker").describe_training_job(TrainingJobName=name) for name in sagemaker_jobs()}


def test_the_balanced_split_puts_the_costliest_architectures_apart():
    archs = read_configurations(published.CONFIGURATIONS)
    run = RunSettings(tuple(archs), ("none", "full"), 10, 100, seed=0)
    plan = sharded.split(run, 4, 1.0)
    assert sorted(a for shard in plan.shards for a in shard) == sorted(str(a) for a in archs)
    assert max(plan.seconds) / min(plan.seconds) < 1.2  # balanced within 20%
    heaviest = {"115*115", "91*91", "4*632", "2*939"}
    assert all(len(heaviest & set(shard)) == 1 for shard in plan.shards)
    assert plan.id == sharded.split(run, 4, 0.1).id  # the split is not the id
    assert plan.id != sharded.split(run, 3, 1.0).id
    # The model reproduces the H100 full-grid estimate it was fitted to (3,044 s measured).
    assert 2900 < sum(costmodel.arch_seconds(a, 60, 100, 1.0) for a in archs) < 3200


def test_launch_shards_once_with_data_channel_and_checkpoints(configs):
    jobs = launched(configs)
    assert len(jobs) == 3
    plan_id = {name.split("-")[2] for name in jobs}.pop()
    by_shard = {name.split("-")[3]: job for name, job in jobs.items()}
    assert {job["HyperParameters"]["arch"] for job in jobs.values()} == {"1*4", "2*3", "3*2"}
    for k, job in by_shard.items():
        assert job["HyperParameters"]["modes"] == "none,hidden" and job["HyperParameters"]["seeding"] == "independent"
        assert job["CheckpointConfig"] == {
            "S3Uri": f"s3://{BUCKET}/{PREFIX}/checkpoints/{plan_id}/shard-{k}",
            "LocalPath": "/opt/ml/checkpoints",
        }
        channel = job["InputDataConfig"][0]
        assert channel["ChannelName"] == "training"
        assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/{PREFIX}/data/{FOLDER}/"
    # MNIST uploaded once, content-addressed: the decompressed content hashes as the loader expects.
    s3 = boto3.client("s3")
    for name, digest in SHA256.items():
        body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/data/{FOLDER}/{name}.gz")["Body"].read()
        assert hashlib.sha256(gzip.decompress(body)).hexdigest() == digest

    assert launched(configs).keys() == jobs.keys()  # all running or done: nothing new
    failed = next(name for name in jobs if "-2-of-3-" in name)
    sagemaker_jobs()[failed].training_job_status = "Failed"
    new = set(launched(configs)) - set(jobs)
    assert len(new) == 1 and "-2-of-3-" in new.pop()  # the failed shard alone, the same shard (checkpoints)


def run_shard(job: dict, folder: Path, mnist, monkeypatch) -> Path:
    """The job's own arguments, as SageMaker passes them, run here on a slice of MNIST."""
    args = [f"--{k}={v}" for k, v in job["HyperParameters"].items() if not k.startswith("sagemaker_")]
    with monkeypatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setattr("psa.sweeps.sweep.load_mnist", lambda data_dir=None: subset(mnist, train=600, val=300))
        main(
            [
                "cloud",
                "job",
                *args,
                "--device",
                "cpu",
                "--model-dir",
                str(folder / "model"),
                "--checkpoint-dir",
                str(folder / "checkpoints"),
            ]
        )
    return folder


def test_collect_merges_finished_and_running_shards_once(configs, tmp_path, mnist, monkeypatch, capsys):
    jobs = launched(configs)
    plan_id = next(iter(jobs)).split("-")[2]
    s3 = boto3.client("s3")
    for name, job in jobs.items():
        folder = run_shard(job, tmp_path / name, mnist, monkeypatch)
        if "-3-of-3-" in name:  # still running: its last checkpoint is all there is
            sagemaker_jobs()[name].training_job_status = "InProgress"
            s3.put_object(
                Bucket=BUCKET,
                Key=f"{PREFIX}/checkpoints/{plan_id}/shard-3/psa.sqlite",
                Body=(folder / "checkpoints" / "psa.sqlite").read_bytes(),
            )
        else:
            s3.put_object(
                Bucket=BUCKET, Key=f"{PREFIX}/{name}/output/model.tar.gz", Body=model_archive(folder / "model")
            )
    capsys.readouterr()
    assert run_cli("cloud", "collect", "--plan", plan_id, "--store", "merged.sqlite") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "12 trials added" in out and "12 of 12 trials complete" in out
    first = (
        sqlite3.connect("merged.sqlite")
        .execute("SELECT arch, mode, trial, seed, bounty, test_accuracy, job FROM trials ORDER BY arch, mode, trial")
        .fetchall()
    )
    assert {row[-1] for row in first} == set(jobs) and len(first) == 12
    assert run_cli("cloud", "collect", "--plan", plan_id, "--store", "merged.sqlite") == 0
    assert "0 trials added" in " ".join(capsys.readouterr().out.split())
    db = sqlite3.connect("merged.sqlite")
    assert (
        db.execute(
            "SELECT arch, mode, trial, seed, bounty, test_accuracy, job FROM trials ORDER BY arch, mode, trial"
        ).fetchall()
        == first
    )
    assert db.execute("SELECT COUNT(*) FROM loops").fetchone() == (12 * 2,)
    assert run_cli("export", "--store", "merged.sqlite", "--out", "exported") == 0
    assert Path("exported/psa_simplemlp_trials_convergence.md").is_file()
    assert run_cli("cloud", "status", "--plan", plan_id) == 0
    assert "InProgr" in capsys.readouterr().out  # shard 3, its store from the checkpoint


@pytest.mark.slow
def test_a_killed_shard_resumes_from_its_checkpoint_folder(tmp_path):
    def job(name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "psa",
                "cloud",
                "job",
                "--arch",
                "1*8,2*8",
                "--mode",
                "none,full",
                "--trials",
                "3",
                "--meta-loops",
                "6",
                "--device",
                "cpu",
                "--checkpoint-every",
                "0",
                "--model-dir",
                str(tmp_path / name / "model"),
                "--checkpoint-dir",
                str(tmp_path / name / "checkpoints"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    assert job("whole").wait(timeout=300) == 0
    snapshot = tmp_path / "killed" / "checkpoints" / "psa.sqlite"
    proc, ends = job("killed"), time.time() + 120

    def loops_done() -> int:
        if not snapshot.is_file():
            return 0
        db = sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COALESCE(MAX(loops_done), 0) FROM trials").fetchone()[0]
        finally:
            db.close()

    while proc.poll() is None and time.time() < ends and loops_done() < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= loops_done() < 6 and not (tmp_path / "killed" / "model").exists()
    assert sorted(p.name for p in snapshot.parent.iterdir()) == ["psa.sqlite"]  # one plain file, no WAL beside it
    resumed = job("killed")
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0 and "resuming from" in log

    def results(name: str) -> list:
        store = Store(tmp_path / name / "model" / "psa.sqlite")
        try:
            return sorted(
                (
                    r["arch"],
                    r["mode"],
                    r["trial"],
                    r["seed"],
                    r["bounty"],
                    r["test_accuracy"],
                    tuple((h.loop, h.score, h.lkg_score) for h in store.history(r["id"])),
                )
                for r in store.completed()
            )
        finally:
            store.close()

    assert len(results("whole")) == 12 and results("killed") == results("whole")
    assert (tmp_path / "killed" / "model" / "results" / "psa_simplemlp_trials.md").is_file()
