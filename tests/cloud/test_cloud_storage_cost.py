import json
from pathlib import Path

import boto3
import pytest
from cloud_helpers import BUCKET, JOBS, PREFIX, REGION, run_cli, sagemaker_jobs

from psa.clusters.sagemaker.storage import category, human
from psa.published import COST_REPORT

pytestmark = pytest.mark.moto  # every test talks to the moto server (conftest.py)

MISSING = "psa-2x3-none-2025-08-11-19-50-00-000"  # in the jobs file, never run


@pytest.fixture
def jobs_file(published) -> Path:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{JOBS['none']}/output/output.tar.gz", Body=b"x" * 100)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{JOBS['none']}/debug-output/training_job_end.ts", Body=b"y" * 10)
    path = Path("jobs.txt")
    path.write_text("\n".join([*JOBS.values(), MISSING, "psa-../../etc"]) + "\n")
    return path


def sizes(job: str) -> list[tuple[str, int]]:
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{job}/")
    return [(obj["Key"], obj["Size"]) for obj in listing.get("Contents", [])]


def test_storage_report_has_the_published_shape_and_adds_up(jobs_file, fixtures, capsys):
    assert run_cli("cloud", "storage", "--jobs-file", str(jobs_file), "--detailed") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "invalid job name 'psa-../../etc'" in out and f"{MISSING}: nothing stored" in out
    assert "Per job" in out
    report = json.loads(Path("aws/sagemaker/storage_report.json").read_text())
    published = json.loads((fixtures / "storage_report.json").read_text())
    assert report.keys() == published.keys()
    assert report["job_details"][0].keys() == published["job_details"][0].keys()
    assert report["file_types"].keys() >= published["file_types"].keys()
    assert (report["bucket"], report["prefix"], report["total_jobs"]) == (BUCKET, PREFIX, 3)
    objects = sizes(JOBS["none"]) + sizes(JOBS["hidden"])
    assert report["total_storage_bytes"] == sum(size for _, size in objects)
    assert report["total_files"] == len(objects) == 4
    assert report["file_types"]["model_archives"] == sum(size for key, size in objects if key.endswith(".tar.gz"))
    assert report["file_types"]["other"] == 10
    assert report["total_storage_human"] == human(report["total_storage_bytes"])


def test_file_categories_and_human_sizes():
    assert [category(k) for k in ("a/model.tar.gz", "b.json", "c.txt", "d.log", "e.ts")] == [
        "model_archives",
        "json_files",
        "text_files",
        "log_files",
        "other",
    ]
    assert (human(14136878773), human(14136878773 / 588), human(512)) == ("13.17 GB", "22.93 MB", "512.00 B")


def test_cost_report_prices_billable_time(tmp_path, fixtures, capsys):
    sagemaker = boto3.client("sagemaker")
    for job in JOBS.values():
        sagemaker.create_training_job(
            TrainingJobName=job,
            RoleArn="arn:aws:iam::123456789012:role/r",
            AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
            OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/{PREFIX}"},
            ResourceConfig={"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )
    sagemaker_jobs()[JOBS["none"]].billable_time_in_seconds = 1557
    sagemaker_jobs()[JOBS["hidden"]].billable_time_in_seconds = 3600
    sagemaker_jobs()[JOBS["hidden"]].training_job_status = "Failed"
    Path("jobs.txt").write_text("\n".join([*JOBS.values(), MISSING]) + "\n")

    assert run_cli("cloud", "cost", "--jobs-file", "jobs.txt") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{MISSING}: ValidationException" in out
    report = json.loads(Path("results/sagemaker_cost_report.json").read_text())
    published = json.loads(COST_REPORT.read_text())
    assert report.keys() == published.keys()
    assert report["metadata"].keys() == published["metadata"].keys()
    assert report["breakdown"].keys() == published["breakdown"].keys()
    assert report["breakdown"]["concurrency"].keys() == published["breakdown"]["concurrency"].keys()
    assert report["jobs"][0].keys() == published["jobs"][0].keys()
    assert (report["metadata"]["cost_per_hour"], report["metadata"]["region"]) == (0.7364, REGION)
    assert report["jobs"][0]["cost"] == pytest.approx(0.318493)  # the published 1x2048-none job's figure
    assert report["metadata"]["total_cost"] == pytest.approx((1557 + 3600) / 3600 * 0.7364)
    assert report["breakdown"]["by_status"]["Failed"]["jobs"] == 1
    assert report["breakdown"]["by_architecture_mode"]["1*4-hidden"]["billable_hours"] == 1.0
    assert report["breakdown"]["concurrency"]["max_wall_clock_job"] == JOBS["hidden"]

    assert run_cli("cloud", "cost", "--jobs-file", "jobs.txt", "--instance-type", "ml.p3.2xlarge") == 2
    assert "no price known for ml.p3.2xlarge: pass --price-per-hour" in capsys.readouterr().err
