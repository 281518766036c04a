"""The reaper Lambda under moto, fed the real-shaped stream event in infra/events/.

moto neither expires items nor emits TTL stream records, so the test does what DynamoDB
does: once the fake clock passes a run's ``ttl``, the ``META`` item is deleted (as the
TTL service would, some time after that) and the stream record of that deletion -- the
fixture, with the run's key -- is handed to the handler.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pflambda.aws.config import Settings
from pflambda.aws.reaper import FILTER, Reaper, expired_run, matches
from pflambda.blobs.s3 import S3BlobStore
from pflambda.clock import FakeClock
from pflambda.engine.runner import Engine
from pflambda.errors import RunNotFound
from pflambda.stores.base import RunStatus
from pflambda.stores.dynamodb import DynamoDBStore
from tests.contract.conftest import fail_calls
from tests.functional.conftest import FakeContext

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400
BIG = b"\x07" * 300_000


def ttl_event(*run_ids: str) -> dict[str, Any]:
    """infra/events/dynamodb_ttl_remove.json, one record per run id."""
    fixture = json.loads((ROOT / "infra/events/dynamodb_ttl_remove.json").read_text())
    template = fixture["Records"][0]
    records = []
    for n, run_id in enumerate(run_ids):
        record = copy.deepcopy(template)
        record["dynamodb"]["Keys"]["pk"]["S"] = f"RUN#{run_id}"
        record["dynamodb"]["SequenceNumber"] = str(int(template["dynamodb"]["SequenceNumber"]) + n)
        record["eventID"] = f"{template['eventID'][:-2]}{n:02d}"
        records.append(record)
    return {"Records": records}


def engine(clock: FakeClock) -> Engine:
    settings = Settings.from_env()
    store = settings.ports.store
    assert isinstance(store, DynamoDBStore)
    return Engine(store, settings.ports.blobs, clock=clock)


def expire(engine: Engine, run_id: str) -> None:
    """What DynamoDB's TTL does once ``ttl`` has passed: delete the record."""
    record = engine.store.get_run(run_id)
    assert record.expires_at is not None
    assert record.expires_at <= engine.clock.now(), "not expired yet"
    settings = Settings.from_env()
    boto3.client("dynamodb").delete_item(
        TableName=settings.table, Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "META"}}
    )


def partition(run_id: str) -> list[dict[str, Any]]:
    settings = Settings.from_env()
    return boto3.client("dynamodb").query(
        TableName=settings.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}},
    )["Items"]


def objects(prefix: str) -> list[str]:
    settings = Settings.from_env()
    listed = boto3.client("s3").list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_the_fixture_is_what_the_filter_lets_through() -> None:
    record = ttl_event("x")["Records"][0]
    assert matches(FILTER, record)
    assert expired_run(record) == "x"
    user_delete = copy.deepcopy(record)
    del user_delete["userIdentity"]
    assert not matches(FILTER, user_delete)
    modify = copy.deepcopy(record) | {"eventName": "MODIFY"}
    assert expired_run(modify) is None
    checkpoint = copy.deepcopy(record)
    checkpoint["dynamodb"]["Keys"]["sk"]["S"] = "CKPT#000000000003"
    assert expired_run(checkpoint) is None


def test_an_expired_run_leaves_nothing_in_the_table_or_the_bucket(aws: None) -> None:
    clock = FakeClock()
    eng = engine(clock)
    done = eng.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}, run_id="gone")
    done = eng.resume("gone", reply="yes")
    kept = eng.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}, run_id="kept")
    assert done.status == RunStatus.COMPLETED
    assert kept.status == RunStatus.PAUSED
    assert objects("runs/gone/")
    assert len(partition("gone")) > 2
    clock.advance(30 * DAY)
    expire(eng, "gone")
    answer = Reaper(eng)(ttl_event("gone"), FakeContext())
    assert answer == {"batchItemFailures": []}
    assert partition("gone") == []
    assert objects("runs/gone/") == []
    with pytest.raises(RunNotFound):
        eng.store.get_run("gone")
    # the paused run is untouched, and resumes with its large value
    assert eng.resume("kept", reply="yes").shared["doc"] == BIG
    assert objects("shapes/")  # shapes are not the reaper's


def test_a_run_paused_45_days_on_dynamodb_still_resumes(aws: None) -> None:
    clock = FakeClock()
    eng = engine(clock)
    eng.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}, run_id="slow")
    clock.advance(45 * DAY)
    with pytest.raises(AssertionError, match="not expired yet"):
        expire(eng, "slow")
    done = eng.resume("slow", reply="yes")
    assert (done.status, done.shared["doc"]) == (RunStatus.COMPLETED, BIG)


def test_a_failing_record_is_reported_and_the_rest_of_the_batch_reaped(aws: None) -> None:
    clock = FakeClock()
    eng = engine(clock)
    for run_id in ("a", "b"):
        eng.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}, run_id=run_id)
        eng.cancel(run_id)
    clock.advance(31 * DAY)
    expire(eng, "a")
    expire(eng, "b")
    blobs = eng.blobs
    assert isinstance(blobs, S3BlobStore)
    fail_calls(blobs._client, "s3.ListObjectsV2", "SlowDown", 503)  # the first record's
    event = ttl_event("a", "b")
    answer = Reaper(eng)(event, FakeContext())
    failed = event["Records"][0]["dynamodb"]["SequenceNumber"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": failed}]}
    assert objects("runs/a/")
    assert partition("a")
    assert objects("runs/b/") == []
    assert partition("b") == []
    # Lambda retries from the failed record: the retry finishes the job
    assert Reaper(eng)(event, FakeContext()) == {"batchItemFailures": []}
    assert objects("runs/a/") == []
    assert partition("a") == []


def test_a_late_record_spares_a_new_run_with_the_same_id(aws: None) -> None:
    clock = FakeClock()
    eng = engine(clock)
    eng.start("tests.flows.sample:approval", {"limit": 1}, run_id="twice")
    eng.cancel("twice")
    clock.advance(31 * DAY)
    expire(eng, "twice")
    event = ttl_event("twice")
    assert Reaper(eng)(event, FakeContext()) == {"batchItemFailures": []}
    eng.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}, run_id="twice")
    # the same stream record again (a retried batch): the new run stays whole
    assert Reaper(eng)(event, FakeContext()) == {"batchItemFailures": []}
    assert eng.state("twice")[0]["doc"] == BIG
    assert eng.store.get_run("twice").status == RunStatus.PAUSED


def test_records_the_filter_would_drop_are_ignored(aws: None) -> None:
    eng = engine(FakeClock())
    eng.start("tests.flows.sample:approval", {"limit": 1}, run_id="alive")
    event = ttl_event("alive")
    event["Records"][0]["userIdentity"] = None
    assert Reaper(eng)(event, FakeContext()) == {"batchItemFailures": []}
    assert eng.store.get_run("alive").status == RunStatus.PAUSED


def test_the_local_sweep_plays_the_ttl_service_and_the_reaper(aws: None) -> None:
    """``pflambda local`` against moto: expired records are deleted as the TTL would, and
    their stream records go through the reaper's filter and handler."""
    from pflambda.local.expiry import expire_table, stream_record
    from pflambda.local.sweeper import SweepThread

    assert matches(FILTER, stream_record("x", 0, "t"))
    clock = FakeClock()
    eng = engine(clock)
    table = Settings.from_env().table
    eng.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}, run_id="old")
    eng.cancel("old")
    clock.advance(20 * DAY)
    eng.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}, run_id="young")
    clock.advance(10 * DAY)
    assert expire_table(eng, boto3.client("dynamodb"), table) == 1
    assert partition("old") == []
    assert objects("runs/old/") == []
    assert eng.store.get_run("young").status == RunStatus.PAUSED
    assert expire_table(eng, boto3.client("dynamodb"), table) == 0
    clock.advance(90 * DAY)
    expired: list[int] = []
    sweeper = SweepThread(
        lambda: eng,
        every=3600,
        expire=lambda e: expired.append(expire_table(e, boto3.client("dynamodb"), table)) or 0,
    )
    sweeper.sweep_once()
    assert expired == [1]
    assert partition("young") == []
    assert objects("runs/young/") == []


def test_the_local_ttl_spares_a_record_refreshed_meanwhile(aws: None) -> None:
    from pflambda.local import expiry

    clock = FakeClock()
    eng = engine(clock)
    eng.start("tests.flows.sample:approval", {"limit": 1}, run_id="r")
    eng.cancel("r")
    clock.advance(31 * DAY)
    dynamodb = boto3.client("dynamodb")
    table = Settings.from_env().table
    assert expiry._due(dynamodb, table, int(clock.now()), 10) == ["r"]
    eng.store.update_run("r", {"expires_at": int(clock.now()) + DAY})  # refreshed meanwhile
    assert expiry._delete(dynamodb, table, "r", int(clock.now())) is False
    assert eng.store.get_run("r").status == RunStatus.CANCELLED


def test_orphan_checks_are_on_with_dynamodb(aws: None) -> None:
    assert Settings.from_env().engine().orphan_checks is True
