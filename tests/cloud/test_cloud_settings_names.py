from pathlib import Path

import pytest
from cloud_helpers import JOBS, SECRET, run_cli

from psa.clusters.sagemaker import layout
from psa.clusters.sagemaker.aws import Cloud, load_config
from psa.errors import PSAError
from psa.trial.architecture import Architecture

pytestmark = pytest.mark.moto  # every test talks to the moto server (conftest.py)


def test_clients_follow_aws_endpoint_url(aws):
    cloud = Cloud("us-east-1")
    assert {cloud.s3.meta.endpoint_url, cloud.sagemaker.meta.endpoint_url, cloud.logs.meta.endpoint_url} == {aws}


def test_dotenv_fills_what_the_environment_lacks(monkeypatch, tmp_path):
    monkeypatch.delenv("S3_PREFIX")
    monkeypatch.delenv("INSTANCE_TYPE", raising=False)
    Path("aws/sagemaker").mkdir(parents=True)
    Path("aws/sagemaker/.env").write_text("S3_PREFIX=from-dotenv\nS3_BUCKET_NAME=ignored\nUSE_SPOT_INSTANCES=no\n")
    settings = load_config()
    assert (settings.prefix, settings.bucket, settings.use_spot) == ("from-dotenv", "psa-test-bucket", False)
    assert settings.max_wait_seconds == 2 * settings.max_run_seconds
    (tmp_path / "other.env").write_text("INSTANCE_TYPE=ml.m5.large\n")
    assert load_config(tmp_path / "other.env").instance_type == "ml.m5.large"
    with pytest.raises(PSAError, match="settings file not found"):
        load_config(tmp_path / "absent.env")


def test_malformed_settings_are_named(monkeypatch):
    monkeypatch.setenv("USE_SPOT_INSTANCES", "maybe")
    monkeypatch.setenv("MAX_RUN_SECONDS", "1h")
    settings = load_config()
    with pytest.raises(PSAError, match="USE_SPOT_INSTANCES must be true or false"):
        _ = settings.use_spot
    with pytest.raises(PSAError, match="MAX_RUN_SECONDS must be a whole number"):
        _ = settings.max_run_seconds
    monkeypatch.delenv("AWS_SAGEMAKER_ROLE")
    with pytest.raises(PSAError, match="missing setting AWS_SAGEMAKER_ROLE"):
        _ = settings.role_arn


def test_no_credential_is_ever_printed(published, monkeypatch, capsys, tmp_path):
    Path("configs.txt").write_text("1*4\n")
    run_cli("cloud", "launch", "--configs", "configs.txt", "--dry-run")
    run_cli("cloud", "results")
    run_cli("cloud", "logs", "--reconstruct-jobs")
    monkeypatch.setenv("S3_BUCKET_NAME", "no-such-bucket")
    assert run_cli("cloud", "reconstruct-jobs") == 2
    out = capsys.readouterr()
    assert "NoSuchBucket" in out.err
    assert SECRET not in out.out + out.err + "".join(
        p.read_text() for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".log", ".md", ".txt")
    )


def test_job_names_round_trip_and_reject_paths():
    arch = Architecture.parse("4*4,2*8")
    name = layout.cell_job_name(arch, "hidden", "2025-08-11-20-56-40-261")
    assert name == "psa-4x4-2x8-hidden-2025-08-11-20-56-40-261"
    assert layout.cell(name) == ("4*4,2*8", "hidden")
    assert layout.cell(JOBS["none"]) == ("1*4", "none")
    for bad in (
        "psa-1x4-none-2025-08-11-19-46-41-617/../x",
        "../psa-1x4-none-2025-08-11-19-46-41-617",
        "psa-1x4-sideways-2025-08-11-19-46-41-617",
        "psa-1x4-none",
        "x" * 64,
    ):
        with pytest.raises(PSAError, match="invalid job name"):
            layout.check(bad)
    with pytest.raises(PSAError, match="invalid job name"):
        layout.cell_job_name(
            Architecture.parse(",".join(f"1*{w}" for w in range(10, 25))), "none", "2025-08-11-20-56-40-261"
        )


def test_latest_job_per_cell_goes_by_the_timestamp_in_the_name():
    old, new = "psa-1x4-none-2025-08-11-19-46-41-617", "psa-1x4-none-2025-08-12-01-00-00-000"
    other = "psa-1x4-full-2025-08-10-00-00-00-000"
    assert layout.latest_per_cell([new, other, old]) == {("1*4", "none"): new, ("1*4", "full"): other}
    assert len(layout.timestamp()) == len("2025-08-11-19-46-41-617")
