"""S3BlobStore: blobs as S3 objects under an optional key prefix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from pflambda.blobs.base import BlobNotFound, check_prefix
from pflambda.errors import ConfigError, RetryableError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3BlobStore", "create_bucket"]

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_RETRYABLE = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
    }
)

LIST_PAGE = 1000
"""Keys per ListObjectsV2 page, and so per DeleteObjects (its limit is 1,000)."""


def create_bucket(client: S3Client, bucket: str) -> None:
    """Create ``bucket`` in the client's region if it is not there yet.

    S3 refuses a ``LocationConstraint`` of us-east-1 and requires one everywhere else.
    """
    region = client.meta.region_name
    config: dict[str, Any] = {}
    if region and region != "us-east-1":
        config["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(Bucket=bucket, **config)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Throttling, 5xx and network failures become RetryableError; the rest goes through."""
    try:
        yield
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _RETRYABLE or status >= 500:
            raise RetryableError(f"S3 {what}: {err}") from err
        raise
    except (BotoConnectionError, HTTPClientError, IncompleteReadError) as err:
        raise RetryableError(f"S3 {what}: {err}") from err


class S3BlobStore:
    """A :class:`~pflambda.blobs.base.BlobStore` on one S3 bucket.

    ``prefix`` (say ``"pflambda"``) is put before every key, followed by a ``/``.
    """

    def __init__(self, bucket: str, client: S3Client, prefix: str = "") -> None:
        self._bucket = bucket
        self._client = client
        self._prefix = prefix.rstrip("/") + "/" if prefix else ""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` (overwriting is allowed)."""
        with _translated(f"put s3://{self._bucket}/{self._prefix}{key}"):
            self._client.put_object(Bucket=self._bucket, Key=self._prefix + key, Body=data)

    def get(self, key: str) -> bytes:
        """The bytes at ``key``; :class:`BlobNotFound` if there is no such object."""
        where = f"s3://{self._bucket}/{self._prefix}{key}"
        with _translated(f"get {where}"):
            try:
                response = self._client.get_object(Bucket=self._bucket, Key=self._prefix + key)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") not in _NOT_FOUND:
                    raise
                raise BlobNotFound(f"no blob at {where}") from None
            return response["Body"].read()

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the folder ``prefix``: ListObjectsV2 pages of up to
        1,000 keys, each deleted with one DeleteObjects; how many there were.

        A key S3 refuses to delete raises (RetryableError for throttling and 5xx,
        ConfigError otherwise) after the rest of its page was deleted; a retry deletes
        what is left."""
        where = f"s3://{self._bucket}/{self._prefix}{check_prefix(prefix)}"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket,
            Prefix=self._prefix + prefix,
            PaginationConfig={"PageSize": LIST_PAGE},
        )
        count = 0
        with _translated(f"delete {where}"):
            for page in pages:
                keys: list[Any] = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
                if not keys:
                    continue
                answer = self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True}
                )
                _refused(answer.get("Errors", []), where)
                count += len(keys)
        return count


def _refused(errors: list[Any], where: str) -> None:
    """Raise for the keys a DeleteObjects could not delete (it answers 200 regardless)."""
    if not errors:
        return
    first = errors[0]
    text = f"S3 delete {where}: {len(errors)} key(s) not deleted, e.g. {first.get('Key')!r}: "
    text += f"{first.get('Code')} {first.get('Message', '')}".rstrip()
    if any(error.get("Code") in _RETRYABLE for error in errors):
        raise RetryableError(text)
    raise ConfigError(text)
