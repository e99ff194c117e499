import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from cloud_helpers import BUCKET, PREFIX, REGION, run_cli, sagemaker_jobs
from moto.sagemaker.exceptions import SagemakerClientError
from moto.sagemaker.models import SageMakerModelBackend

from psa.clusters.sagemaker import launch
from psa.clusters.sagemaker.aws import Cloud, load_config
from psa.clusters.sagemaker.files import read_jobs_file
from psa.sweeps.settings import RunSettings
from psa.trial.architecture import Architecture

pytestmark = pytest.mark.moto  # every test talks to the moto server (conftest.py)

JOBS_FILE = Path("aws/sagemaker/requested-jobs.txt")


@pytest.fixture
def configs(tmp_path) -> Path:
    path = tmp_path / "configurations.txt"
    path.write_text("1*4\n2*3\n")
    return path


def launch_cli(configs: Path, *extra: str) -> int:
    return run_cli(
        "cloud",
        "launch",
        "--configs",
        str(configs),
        "--modes",
        "none,hidden",
        "--trials",
        "2",
        "--meta-loops",
        "2",
        "--retry-wait",
        "0",
        *extra,
    )


def test_launch_skips_what_ran_and_relaunches_only_the_failed_job(configs):
    assert launch_cli(configs) == 0
    first = read_jobs_file(JOBS_FILE)
    assert len(first) == 4 and set(sagemaker_jobs()) == set(first)
    cells = {f"psa-{arch}-{mode}" for arch in ("1x4", "2x3") for mode in ("none", "hidden")}
    assert {name.rsplit("-", 7)[0] for name in first} == cells

    assert launch_cli(configs) == 0  # all Completed: nothing new
    assert read_jobs_file(JOBS_FILE) == first and len(sagemaker_jobs()) == 4

    failed = next(name for name in first if name.startswith("psa-2x3-hidden"))
    sagemaker_jobs()[failed].training_job_status = "Failed"
    assert launch_cli(configs) == 0
    now = read_jobs_file(JOBS_FILE)
    assert now[:4] == first and len(now) == 5 and now[4].startswith("psa-2x3-hidden-")
    assert len(sagemaker_jobs()) == 5

    assert launch_cli(configs, "--force-rerun", "--modes", "none") == 0
    assert len(read_jobs_file(JOBS_FILE)) == 7


def test_job_request_runs_the_packaged_project_on_spot(configs):
    assert launch_cli(configs, "--modes", "output") == 0
    name = read_jobs_file(JOBS_FILE)[0]
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=name)
    hyper = job["HyperParameters"]
    assert {
        k: hyper[k]
        for k in ("arch", "modes", "trials", "meta-loops", "model", "seed", "seeding", "weight-decay", "dropout")
    } == {
        "arch": "1*4",
        "modes": "output",
        "trials": "2",
        "meta-loops": "2",
        "model": "simplemlp",
        "seed": "2025",
        "seeding": "independent",
        "weight-decay": "0.0001",
        "dropout": "0.1",
    }
    assert job["CheckpointConfig"] == {
        "S3Uri": f"s3://{BUCKET}/{PREFIX}/{name}/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert job["InputDataConfig"][0]["ChannelName"] == "training"
    image = job["AlgorithmSpecification"]["TrainingImage"]
    assert image.startswith(f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch-training:")
    assert "-gpu-" in image  # ml.g4dn.xlarge has a T4
    assert job["RoleArn"] == "arn:aws:iam::123456789012:role/PsaSageMakerRole"
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/{PREFIX}"
    assert job["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"]["MaxWaitTimeInSeconds"] >= job["StoppingCondition"]["MaxRuntimeInSeconds"]

    source = hyper["sagemaker_submit_directory"]
    assert source.startswith(f"s3://{BUCKET}/{PREFIX}/source/") and hyper["sagemaker_program"] == "psa_entry.py"
    key = source.removeprefix(f"s3://{BUCKET}/")
    archive = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
    assert {
        "psa_entry.py",
        "requirements.txt",
        "psa/clusters/sagemaker/job.py",
        "psa/engine/batched/loop.py",
        "psa/published/configurations.txt",
    } <= names


def test_packaged_entry_script_runs_the_job_command_without_aws_libraries(tmp_path):
    """The archive SageMaker unpacks into /opt/ml/code runs its own copy of psa, and training
    needs no AWS library: the entry script works with boto3, botocore and dotenv unimportable."""
    code = tmp_path / "code"
    with tarfile.open(fileobj=io.BytesIO(launch.source_archive())) as tar:
        tar.extractall(code, filter="data")
    blocked = (
        "import runpy, sys; sys.modules.update(boto3=None, botocore=None, dotenv=None); "
        "sys.argv = ['psa_entry.py', '--help']; runpy.run_path('psa_entry.py', run_name='__main__')"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", blocked], cwd=code, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--meta-loops" in done.stdout and "--model-dir" in done.stdout
    assert "torch" in (code / "requirements.txt").read_text()


def test_dry_run_launches_nothing(configs, capsys):
    assert launch_cli(configs, "--dry-run") == 0
    assert sagemaker_jobs() == {} and not JOBS_FILE.exists()
    assert "dry run" in capsys.readouterr().out


def _failing(monkeypatch, code: str, failures: dict[str, int]):
    """moto answers CreateTrainingJob for a job of each cell in `failures` with the error `code`,
    that many times (all of them for -1): a real AWS error response from the server."""
    create = SageMakerModelBackend.create_training_job

    def create_or_fail(backend, training_job_name, **kwargs):
        for token, left in failures.items():
            if token in training_job_name and left:
                failures[token] = left - 1
                raise SagemakerClientError(code, "Rate exceeded" if "Throttl" in code else "limit of 4 instances")
        return create(backend, training_job_name, **kwargs)

    monkeypatch.setattr(SageMakerModelBackend, "create_training_job", create_or_fail)


@pytest.mark.filterwarnings("ignore:Exception\\(SagemakerClientError\\)")  # moto: not in SageMaker's model
def test_throttled_job_is_retried_and_launched(monkeypatch):
    _failing(monkeypatch, "ThrottlingException", {"psa-1x4-hidden": 2})
    config, cloud = load_config(), Cloud(REGION)
    steps = launch.look_up(cloud, launch.cell_steps([Architecture.parse("1*4")], ("none", "hidden")), force=False)
    run = RunSettings((Architecture.parse("1*4"),), trials=2, meta_loops=2)
    launch.launch(cloud, config, steps, run, JOBS_FILE, retry_wait=0)
    assert [s.outcome for s in steps] == ["launched", "launched"]
    assert len(sagemaker_jobs()) == 2


def test_a_job_that_stays_limited_is_reported_and_the_batch_completes(configs, capsys):
    with pytest.MonkeyPatch.context() as patch:
        _failing(patch, "ResourceLimitExceeded", {"psa-1x4-hidden": -1})
        assert launch_cli(configs) == 2
    out = capsys.readouterr()
    assert "1*4 hidden: ResourceLimitExceeded: limit of 4 instances" in out.out
    assert "1 of 4 jobs could not be launched" in out.err
    assert len(sagemaker_jobs()) == 3 and len(read_jobs_file(JOBS_FILE)) == 3
    assert launch_cli(configs) == 0  # the quota freed up: only the missing cell is launched
    assert len(sagemaker_jobs()) == 4


def test_a_dry_run_needs_no_credentials_and_asks_aws_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("AWS_", "S3_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    grid = ["--arch", "1*4,2*8,4*4", "--modes", "none,hidden", "--trials", "2", "--meta-loops", "2", "--dry-run"]
    assert run_cli("cloud", "launch", *grid) == 0
    assert run_cli("cloud", "launch", "--shards", "2", *grid) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "shard 2/2" in out and "1*4" in out
    assert not list(tmp_path.iterdir())
