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


def test_delete_prefix_deletes_one_folder_and_nothing_beside_it(blobs: BlobStore) -> None:
    for key in ("runs/a/1", "runs/a/2", "runs/a/text-3", "runs/ab/1", "runs/b/1", "shapes/f"):
        blobs.put(key, key.encode())
    assert blobs.delete_prefix("runs/a/") == 3
    for key in ("runs/a/1", "runs/a/2", "runs/a/text-3"):
        with pytest.raises(BlobNotFound):
            blobs.get(key)
    assert [blobs.get(k) for k in ("runs/ab/1", "runs/b/1", "shapes/f")] == [
        b"runs/ab/1",
        b"runs/b/1",
        b"shapes/f",
    ]


def test_delete_prefix_of_nothing_is_zero_and_a_folder_can_be_refilled(blobs: BlobStore) -> None:
    assert blobs.delete_prefix("runs/none/") == 0
    blobs.put("runs/a/1", b"x")
    assert blobs.delete_prefix("runs/a/") == 1
    assert blobs.delete_prefix("runs/a/") == 0
    blobs.put("runs/a/1", b"y")
    assert blobs.get("runs/a/1") == b"y"


@pytest.mark.parametrize("prefix", ["", "runs/a", "/runs/a/", "runs//"])
def test_delete_prefix_refuses_what_is_not_a_folder(blobs: BlobStore, prefix: str) -> None:
    blobs.put("runs/a/1", b"x")
    with pytest.raises(ValueError, match="ending in '/'"):
        blobs.delete_prefix(prefix)
    assert blobs.get("runs/a/1") == b"x"


def test_delete_prefix_pages_through_many_keys(
    blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pflambda.blobs.s3.LIST_PAGE", 4)
    for n in range(11):
        blobs.put(f"runs/big/{n:05d}", b"")
    blobs.put("runs/big2/keep", b"k")
    assert blobs.delete_prefix("runs/big/") == 11
    assert blobs.delete_prefix("runs/big/") == 0
    assert blobs.get("runs/big2/keep") == b"k"


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


def test_delete_prefix_lists_and_deletes_page_by_page(
    s3: S3Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pflambda.blobs import s3 as s3_module
    from tests.contract.conftest import count_calls

    assert s3_module.LIST_PAGE == 1000  # DeleteObjects takes at most 1,000 keys
    monkeypatch.setattr(s3_module, "LIST_PAGE", 10)
    for n in range(15):
        s3.blobs.put(f"runs/r/{n}", b"")
    calls = count_calls(s3.client, "s3.*")
    assert s3.blobs.delete_prefix("runs/r/") == 15
    assert calls == {"ListObjectsV2": 2, "DeleteObjects": 2}
    assert "Contents" not in s3.client.list_objects_v2(Bucket=BUCKET, Prefix="state/runs/r/")


def test_delete_prefix_raises_for_keys_s3_refused(s3: S3Kit) -> None:
    s3.blobs.put("runs/r/1", b"")

    def refuse(parsed: dict, **_: object) -> None:
        parsed["Errors"] = [{"Key": "state/runs/r/1", "Code": "SlowDown", "Message": "busy"}]

    s3.client.meta.events.register("after-call.s3.DeleteObjects", refuse)
    with pytest.raises(RetryableError, match=r"1 key\(s\) not deleted.*SlowDown busy"):
        s3.blobs.delete_prefix("runs/r/")


def test_delete_prefix_with_the_store_prefix_stays_inside_it(s3: S3Kit) -> None:
    s3.client.put_object(Bucket=BUCKET, Key="runs/r/outside", Body=b"")
    s3.blobs.put("runs/r/inside", b"")
    assert s3.blobs.delete_prefix("runs/r/") == 1
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == ["runs/r/outside"]
