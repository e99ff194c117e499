"""The one door to AWS (docs/DESIGN.md section 9): its configuration, from the environment or a
`.env` file, and `Cloud`, through which every S3, SageMaker and CloudWatch Logs call of the cloud
tools goes.

The `.env` file is loaded into the environment without overriding what is already set, so boto3
sees its credentials and AWS_ENDPOINT_URL exactly as if they had been exported. The configuration
is read when a tool needs it: a tool that only reads logs does not ask for an IAM role, and
nothing here ever prints a value. Clients come from a plain boto3 session, so credentials,
AWS_ENDPOINT_URL and retry settings (AWS_RETRY_MODE, AWS_MAX_ATTEMPTS) are honoured exactly as
boto3 honours them. Listings are paginated here, so callers always see everything."""

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
from botocore.exceptions import ClientError
from dotenv import load_dotenv

from psa.errors import PSAError

ENV_FILES = (Path(".env"), Path("aws/sagemaker/.env"))  # searched in this order
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def load_config(env_file: Path | str | None = None) -> "AwsConfig":
    if env_file is not None:
        if not Path(env_file).is_file():
            raise PSAError(f"settings file not found: {env_file}")
        load_dotenv(env_file, override=False)
    for path in ENV_FILES:
        if path.is_file():
            load_dotenv(path, override=False)
    return AwsConfig()


class AwsConfig:
    """Each property reads its variable now, and names it when it is missing or malformed."""

    def _get(self, name: str, default: str | None = None) -> str:
        value = os.environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise PSAError(f"missing setting {name}: export it or add it to .env (or aws/sagemaker/.env)")
        return default

    def _int(self, name: str, default: int) -> int:
        text = self._get(name, str(default))
        if not text.isdigit() or int(text) < 1:
            raise PSAError(f"setting {name} must be a whole number of seconds, found {text!r}")
        return int(text)

    @property
    def region(self) -> str:
        return self._get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "").strip() or None)

    @property
    def bucket(self) -> str:
        return self._get("S3_BUCKET_NAME")

    @property
    def prefix(self) -> str:
        return self._get("S3_PREFIX").strip("/")

    @property
    def role_arn(self) -> str:
        role = self._get("AWS_SAGEMAKER_ROLE")
        if role.startswith("arn:"):
            return role
        return f"arn:aws:iam::{self._get('AWS_ACCOUNT_ID')}:role/{role}"

    @property
    def instance_type(self) -> str:
        return self._get("INSTANCE_TYPE", "ml.g4dn.xlarge")

    @property
    def use_spot(self) -> bool:
        text = self._get("USE_SPOT_INSTANCES", "true").lower()
        if text not in _TRUE | _FALSE:
            raise PSAError(f"setting USE_SPOT_INSTANCES must be true or false, found {text!r}")
        return text in _TRUE

    @property
    def max_run_seconds(self) -> int:
        # The longest published job ran 27.9 h; two days leaves room for a slower instance.
        return self._int("MAX_RUN_SECONDS", 2 * 24 * 3600)

    @property
    def max_wait_seconds(self) -> int:
        """Spot jobs: run time plus time spent waiting for capacity."""
        return self._int("MAX_WAIT_SECONDS", 2 * self.max_run_seconds)

    @property
    def training_image(self) -> str | None:
        """An explicit image URI; None means the region's PyTorch training image."""
        return os.environ.get("TRAINING_IMAGE", "").strip() or None


LOG_GROUP = "/aws/sagemaker/TrainingJobs"
THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
}


def error_code(error: Exception) -> str:
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""


def describe(error: Exception) -> str:
    """A one-line account of an AWS failure (botocore's messages carry no credentials)."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Error')}: {info.get('Message', '')}".rstrip(": ")
    return str(error)


class Cloud:
    def __init__(self, region: str):
        self.region = region
        self.session = boto3.session.Session(region_name=region)

    @functools.cached_property
    def s3(self):
        return self.session.client("s3")

    @functools.cached_property
    def sagemaker(self):
        return self.session.client("sagemaker")

    @functools.cached_property
    def logs(self):
        return self.session.client("logs")

    # -------------------------------------------------------------------------------- S3

    def objects(self, bucket: str, prefix: str) -> list[dict]:
        """Every object under `prefix` (Key, Size, ...)."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj for page in pages for obj in page.get("Contents", [])]

    def folders(self, bucket: str, prefix: str) -> list[str]:
        """Names of the 'folders' directly under `prefix` (which ends with '/')."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        return [p["Prefix"][len(prefix) :].rstrip("/") for page in pages for p in page.get("CommonPrefixes", [])]

    def read(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def head(self, bucket: str, key: str) -> dict | None:
        """The object's metadata (ETag, ContentLength, Metadata, ...), or None if there is none."""
        try:
            return self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, bucket: str, key: str) -> bool:
        return self.head(bucket, key) is not None

    def write(self, bucket: str, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})

    # -------------------------------------------------------------------------- SageMaker

    def training_jobs(self, name_contains: str) -> list[dict]:
        """Summaries (TrainingJobName, TrainingJobStatus, CreationTime, ...) of matching jobs."""
        pages = self.sagemaker.get_paginator("list_training_jobs").paginate(NameContains=name_contains)
        return [job for page in pages for job in page["TrainingJobSummaries"]]

    def describe_job(self, name: str) -> dict:
        return self.sagemaker.describe_training_job(TrainingJobName=name)

    def create_job(self, request: dict) -> str:
        return self.sagemaker.create_training_job(**request)["TrainingJobArn"]

    # -------------------------------------------------------------------- CloudWatch Logs

    def log_streams(self, job: str) -> list[str]:
        """Names of the job's log streams (`<job>/algo-1-<epoch>`), oldest name first."""
        pages = self.logs.get_paginator("describe_log_streams").paginate(
            logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/"
        )
        return sorted(s["logStreamName"] for page in pages for s in page["logStreams"])

    def log_events(self, stream: str) -> Iterator[dict]:
        """Every event of a stream, oldest first. GetLogEvents has no paginator: the end is the
        page whose forward token equals the one just sent."""
        request = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
        while True:
            page = self.logs.get_log_events(**request)
            yield from page["events"]
            if page["nextForwardToken"] == request.get("nextToken"):
                return
            request["nextToken"] = page["nextForwardToken"]
