"""The one door to AWS: every S3, SageMaker and CloudWatch Logs call of the cloud tools goes
through a `Cloud`. Clients come from a plain boto3 session, so credentials, AWS_ENDPOINT_URL and
retry settings (AWS_RETRY_MODE, AWS_MAX_ATTEMPTS) are honoured exactly as boto3 honours them.
Listings are paginated here, so callers always see everything."""

import functools
from collections.abc import Iterator

import boto3
from botocore.exceptions import ClientError

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
