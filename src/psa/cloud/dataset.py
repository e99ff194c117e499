"""MNIST for the jobs, as their `training` input channel: uploaded once from the local copy (found
and verified as for training) under a folder named by the files' content hashes, each object
checked after upload by its MD5 (S3's ETag of a single-part upload). Jobs never download MNIST
from the public mirrors."""

import gzip
import hashlib

from psa import PSAError
from psa.cloud import layout
from psa.cloud.aws import Cloud
from psa.data import SHA256, locate


def upload_mnist(cloud: Cloud, bucket: str, prefix: str, data_dir=None) -> None:
    """Upload the MNIST files that the folder lacks, and check each one uploaded."""
    folder = layout.mnist_folder(prefix)
    for name, digest in SHA256.items():
        key = f"{folder}/{name}.gz"
        present = cloud.head(bucket, key)
        if present and present.get("Metadata", {}).get("sha256") == digest:
            continue
        body = gzip.compress(locate(name, data_dir), mtime=0)  # verified content, the same bytes every time
        cloud.write(bucket, key, body, {"sha256": digest})
        written = cloud.head(bucket, key)
        if written is None or written["ETag"].strip('"') != hashlib.md5(body).hexdigest():
            raise PSAError(f"upload of s3://{bucket}/{key} did not arrive intact; run the launch again")
