"""MNIST for the jobs, as their `training` input channel: uploaded once from the local copy (found
and verified as for training) under a folder named by the files' content hashes, each object
checked after upload by its MD5 (S3's ETag of a single-part upload). Jobs never download MNIST
from the public mirrors."""

import gzip
import hashlib

from psa.clusters.sagemaker import layout
from psa.clusters.sagemaker.aws import Cloud
from psa.errors import PSAError
from psa.trial.data import SHA256, locate


def upload_mnist(cloud: Cloud, bucket: str, prefix: str, data_dir=None) -> None:
    """Upload the MNIST files that the folder lacks, and check each one uploaded."""
    folder = layout.mnist_folder(prefix)
    for name, digest in SHA256.items():
        key = f"{folder}/{name}.gz"
        present = cloud.head(bucket, key)
        if present and present.get("Metadata", {}).get("sha256") == digest:
            continue
        # Verified content, the same bytes every time; the fastest level: the best would take 13 s
        # for 55 MB that S3 stores either way.
        body = gzip.compress(locate(name, data_dir), compresslevel=1, mtime=0)
        cloud.write(bucket, key, body, {"sha256": digest})
        written = cloud.head(bucket, key)
        if written is None or written["ETag"].strip('"') != hashlib.md5(body).hexdigest():
            raise PSAError(f"upload of s3://{bucket}/{key} did not arrive intact; run the launch again")
