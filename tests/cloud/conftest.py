"""A moto server on 127.0.0.1 for the whole session, and for every test an empty AWS behind it:
fake credentials, AWS_ENDPOINT_URL pointing at it (boto3's own convention, so the product has no
test switch), the settings of DESIGN.md section 7, and a fresh working folder. Also the one
expensive thing, run once: real `psa cloud job` runs whose outputs and logs the tests publish
into moto where SageMaker would have put them."""

import contextlib
import io
import logging
import os
import urllib.request
from pathlib import Path

import boto3
import pytest
from cloud_helpers import (
    ACCOUNT,
    BUCKET,
    JOBS,
    LOOPS,
    PREFIX,
    REGION,
    SECRET,
    TRIALS,
    model_archive,
    put_archive,
    put_logs,
)
from moto.server import ThreadedMotoServer

from helpers import subset
from psa.cli import main


@pytest.fixture(scope="session")
def moto_url():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws(moto_url, monkeypatch, tmp_path):
    """An empty moto with the study's bucket, and the environment a user would have set."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).close()
    for name in list(os.environ):
        if name.startswith(("AWS_", "S3_")) or name in (
            "INSTANCE_TYPE",
            "USE_SPOT_INSTANCES",
            "MAX_RUN_SECONDS",
            "MAX_WAIT_SECONDS",
            "TRAINING_IMAGE",
            "SM_MODEL_DIR",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # No botocore retries: the launcher's own retries are what the fault tests exercise, at once.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # for the tests' own boto3 clients
    monkeypatch.setenv("AWS_SAGEMAKER_ROLE", "PsaSageMakerRole")
    monkeypatch.setenv("AWS_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("S3_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("S3_PREFIX", PREFIX)
    monkeypatch.chdir(tmp_path)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    return moto_url


@pytest.fixture(scope="session")
def job_runs(tmp_path_factory, mnist) -> dict[str, tuple[Path, list[str]]]:
    """mode -> (model folder, log lines) of a real `psa cloud job` run per job of JOBS, on a
    slice of MNIST so that the real engine trains in a moment."""
    runs = {}
    for mode in JOBS:
        folder = tmp_path_factory.mktemp(f"model-{mode}")
        out = io.StringIO()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
            patch.setattr("psa.sweeps.sweep.load_mnist", lambda data_dir=None: subset(mnist, train=2000, val=1000))
            patch.setenv("SM_MODEL_DIR", str(folder))  # where SageMaker tells the job to write
            main(
                [
                    "cloud",
                    "job",
                    "--arch",
                    "1*4",
                    "--mode",
                    mode,
                    "--trials",
                    str(TRIALS),
                    "--meta-loops",
                    str(LOOPS),
                    "--device",
                    "cpu",
                    "--checkpoint-dir",
                    str(tmp_path_factory.mktemp(f"checkpoints-{mode}")),
                ]
            )
        runs[mode] = folder, out.getvalue().splitlines()
    return runs


@pytest.fixture
def published(job_runs):
    """The two jobs as SageMaker leaves them: created, model.tar.gz in S3, logs in CloudWatch."""
    for mode, job in JOBS.items():
        folder, lines = job_runs[mode]
        put_archive(job, model_archive(folder))
        put_logs(job, {"algo-1-1754945940": lines})
    return job_runs
