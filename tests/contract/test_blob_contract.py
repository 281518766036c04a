"""The BlobStore contract (pflambda/blobs/base.py), held against memory and S3 on moto."""

from __future__ import annotations

import os

import pytest

from pflambda.blobs.base import BlobNotFound, BlobStore
from pflambda.blobs.s3 import create_bucket
from pflambda.errors import PflambdaError, RetryableError
from tests.contract.conftest import BUCKET, S3Kit, fail_calls


def test_put_then_get(blobs: BlobStore) -> None:
    blobs.put("runs/r1/abc", b"hello \x00\xff")
    assert blobs.get("runs/r1/abc") == b"hello \x00\xff"


def test_missing_key_raises_blob_not_found(blobs: BlobStore) -> None:
    with pytest.raises(BlobNotFound, match="runs/r1/missing"):
        blobs.get("runs/r1/missing")


def test_overwrite_replaces_and_is_idempotent(blobs: BlobStore) -> None:
    blobs.put("k", b"first")
    blobs.put("k", b"second")
    blobs.put("k", b"second")
    assert blobs.get("k") == b"second"


def test_empty_and_unicode_keys(blobs: BlobStore) -> None:
    blobs.put("runs/r1/empty", b"")
    blobs.put("runs/ré/ünï", b"x")
    assert blobs.get("runs/r1/empty") == b""
    assert blobs.get("runs/ré/ünï") == b"x"


def test_keys_are_distinct(blobs: BlobStore) -> None:
    blobs.put("runs/r1/a", b"a")
    blobs.put("runs/r1/ab", b"ab")
    assert (blobs.get("runs/r1/a"), blobs.get("runs/r1/ab")) == (b"a", b"ab")
    with pytest.raises(BlobNotFound):
        blobs.get("runs/r1")


def test_five_megabytes_round_trip(blobs: BlobStore) -> None:
    data = os.urandom(5 * 1024 * 1024)
    blobs.put("runs/r1/big", data)
    assert blobs.get("runs/r1/big") == data


def test_what_was_put_is_a_copy(blobs: BlobStore) -> None:
    data = bytearray(b"original")
    blobs.put("k", data)  # type: ignore[arg-type]
    data[:] = b"changed!"
    got = blobs.get("k")
    assert got == b"original"
    assert type(got) is bytes


# -- S3 only ---------------------------------------------------------------------------------


def test_keys_live_under_the_prefix(s3: S3Kit) -> None:
    s3.blobs.put("runs/r1/abc", b"x")
    listed = s3.client.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [o["Key"] for o in listed] == ["state/runs/r1/abc"]


def test_create_bucket_outside_us_east_1_is_idempotent(s3: S3Kit) -> None:
    from pflambda.aws.clients import client

    eu = client("s3", region="eu-west-1")
    create_bucket(eu, "pflambda-contract-eu")
    create_bucket(eu, "pflambda-contract-eu")
    location = eu.get_bucket_location(Bucket="pflambda-contract-eu")["LocationConstraint"]
    assert location == "eu-west-1"
    create_bucket(s3.client, BUCKET)  # us-east-1, again


@pytest.mark.parametrize(
    ("code", "status"), [("SlowDown", 503), ("InternalError", 500), ("ServiceUnavailable", 503)]
)
def test_throttling_and_server_errors_are_retryable(s3: S3Kit, code: str, status: int) -> None:
    s3.blobs.put("k", b"v")
    fail_calls(s3.client, "s3.GetObject", code, status)
    with pytest.raises(RetryableError, match=code):
        s3.blobs.get("k")
    fail_calls(s3.client, "s3.PutObject", code, status)
    with pytest.raises(RetryableError):
        s3.blobs.put("k", b"w")
    assert s3.blobs.get("k") == b"v"


def test_access_denied_is_not_disguised(s3: S3Kit) -> None:
    fail_calls(s3.client, "s3.GetObject", "AccessDenied", 403)
    with pytest.raises(Exception, match="AccessDenied") as raised:
        s3.blobs.get("k")
    assert not isinstance(raised.value, PflambdaError)
