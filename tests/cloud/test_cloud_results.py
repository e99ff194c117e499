import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest
from cloud_helpers import BUCKET, JOBS, PREFIX, model_archive, put_archive, run_cli, sagemaker_jobs

from helpers import subset
from psa.clusters.sagemaker import results
from psa.clusters.sagemaker.files import read_jobs_file
from psa.study.results import read_summary, read_trials

pytestmark = pytest.mark.moto  # every test talks to the moto server (conftest.py)

OLDER = "psa-1x4-none-2025-08-10-08-00-00-000"  # an earlier, failed attempt at the same cell


def bounties(folder: Path) -> list[float]:
    return [float(line) for line in (folder / "results.txt").read_text().split()]


def tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_results_parser_reads_the_latest_job_of_each_cell(published, tmp_path):
    put_archive(OLDER, tar({"results.txt": b"11.35\n11.35\n"}))
    (tmp_path / "configs.txt").write_text("1*4\n")
    assert run_cli("cloud", "results", "--configs", "configs.txt") == 0
    trials = read_trials("results/psa_simplemlp_trials.md")
    assert trials["1*4"]["none"] == bounties(published["none"][0])
    assert trials["1*4"]["hidden"] == bounties(published["hidden"][0])
    assert trials["1*4"]["full"] == [None, None]  # no job: N/A in every trial row
    summary = read_summary("results/psa_simplemlp_summary.md")["1*4"]
    assert summary.parameters == 3190 and set(summary.modes) == {"none", "hidden"}
    assert summary.modes["none"].n == 2


def test_comprehensive_results_win_over_results_txt_and_are_read_not_extracted(tmp_path):
    archive = tar(
        {
            "./comprehensive_results.json": json.dumps(
                [{"bounty": 97.5}, {"best_validation_accuracy": 96.25}]
            ).encode(),
            "results.txt": b"1.00\n",
            "../escaped.txt": b"must not be written anywhere",
        }
    )
    assert results.bounties(archive) == [97.5, 96.25]
    damaged = tar({"comprehensive_results.json": b"{not json", "results.txt": b"90.10\n91.20\n"})
    assert results.bounties(damaged) == [90.1, 91.2]  # falls back to results.txt
    assert not (tmp_path.parent / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_broken_cells_are_reported_and_the_rest_is_tabled(published, capsys):
    boto3.client("sagemaker").create_training_job(
        TrainingJobName=(failed := "psa-2x3-none-2025-08-11-19-50-00-000"),
        AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::1:role/r",
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/{PREFIX}"},
        ResourceConfig={"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    sagemaker_jobs()[failed].training_job_status = "Failed"
    sagemaker_jobs()[failed].failure_reason = "AlgorithmError: CUDA out of memory"
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{failed}/output/failure", Body=b"CUDA out of memory")
    put_archive("psa-2x3-hidden-2025-08-11-19-50-01-000", b"\x1f\x8b not really gzip")
    put_archive("psa-2x3-output-2025-08-11-19-50-03-000", model_archive(published["none"][0])[:60])  # cut short
    put_archive("psa-2x3-full-2025-08-11-19-50-02-000", tar({"results.txt": b"", "history.json": b"[]"}))
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/psa-..-none-x/output/model.tar.gz", Body=b"")

    assert run_cli("cloud", "results") == 0  # no configurations file here: the cells found
    out = " ".join(capsys.readouterr().out.split())
    assert "no model.tar.gz (job Failed: AlgorithmError: CUDA out of memory)" in out
    assert out.count("corrupt model.tar.gz") == 2 and "empty results" in out and "'psa-..-none-x'" in out
    trials = read_trials("results/psa_simplemlp_trials.md")
    assert trials["1*4"]["none"] == bounties(published["none"][0])
    assert trials["2*3"] == {}  # every cell of 2*3 broke: "No successful trials"


def test_reconstruct_jobs_lists_the_job_folders(published):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/source/abc/sourcedir.tar.gz", Body=b"code")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{OLDER}/output/failure", Body=b"spot capacity")
    assert run_cli("cloud", "reconstruct-jobs") == 0
    assert read_jobs_file("aws/sagemaker/requested-jobs.txt") == sorted([*JOBS.values(), OLDER])


def test_results_parser_stops_cleanly_without_its_bucket(monkeypatch, capsys):
    monkeypatch.setenv("S3_BUCKET_NAME", "no-such-bucket")
    assert run_cli("cloud", "results") == 2
    assert "NoSuchBucket" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["S3_BUCKET_NAME", "S3_PREFIX", "AWS_REGION"])
def test_a_missing_setting_is_named(monkeypatch, capsys, missing):
    monkeypatch.delenv(missing)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert run_cli("cloud", "reconstruct-jobs") == 2
    assert f"missing setting {missing}" in capsys.readouterr().err


def test_a_launched_job_runs_as_sagemaker_would_and_its_results_are_read(mnist, monkeypatch, tmp_path):
    """launch -> the job run with the hyperparameters SageMaker holds for it, its model folder
    packed and stored at the job's ModelArtifacts -> results parser."""
    Path("configs.txt").write_text("1*4\n")
    assert (
        run_cli(
            "cloud", "launch", "--configs", "configs.txt", "--modes", "dropout", "--trials", "2", "--meta-loops", "1"
        )
        == 0
    )
    (name,) = read_jobs_file("aws/sagemaker/requested-jobs.txt")
    described = boto3.client("sagemaker").describe_training_job(TrainingJobName=name)
    argv = [
        part
        for key, value in described["HyperParameters"].items()
        if not key.startswith("sagemaker_")
        for part in (f"--{key}", value)
    ]  # how the training toolkit hands them to the entry script
    monkeypatch.setattr("psa.sweeps.sweep.load_mnist", lambda data_dir=None: subset(mnist, train=2000, val=1000))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    assert run_cli("cloud", "job", *argv, "--device", "cpu", "--checkpoint-dir", str(tmp_path / "checkpoints")) == 0
    bucket, key = described["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    assert (bucket, key) == (BUCKET, f"{PREFIX}/{name}/output/model.tar.gz")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=model_archive(tmp_path / "model"))

    assert run_cli("cloud", "results", "--configs", "configs.txt") == 0
    assert read_trials("results/psa_simplemlp_trials.md")["1*4"]["dropout"] == bounties(tmp_path / "model")
