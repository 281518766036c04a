"""Store.purge_run and the embedded stores' list_expired (pflambda/stores/base.py).

purge_run deletes every item of a run -- record, checkpoints, markers, fan-out headers
and chunks -- and nothing of another run, in memory, SQLite and DynamoDB (moto).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pflambda.errors import RetryableError, RunNotFound
from pflambda.stores.base import Expiring, FanOut, FanOutNotFound, RunStatus, Store
from pflambda.stores.dynamodb import DynamoDBStore
from pflambda.stores.memory import MemoryStore
from pflambda.stores.sqlite import SQLiteStore
from tests.contract.conftest import TABLE, DynamoKit, count_calls, fail_calls
from tests.contract.test_store_contract import T0, ckpt, run


def _full_run(store: Store, run_id: str, steps: int = 3) -> None:
    """A run with checkpoints, a cancel marker, and a fan-out with two recorded chunks."""
    store.start_run(run(run_id, expires_at=int(T0) + 100), ckpt(0, True, run_id))
    for seq in range(1, steps):
        store.put_checkpoint(ckpt(seq, False, run_id))
    store.create_fanout(FanOut(run_id, 1, "Batch", chunks=3, items=30, created_at=T0))
    store.record_chunk(run_id, 1, 0, b"zero")
    store.record_chunk(run_id, 1, 2, b"two")
    store.claim_step(run_id)


def _gone(store: Store, run_id: str) -> None:
    with pytest.raises(RunNotFound):
        store.get_run(run_id)
    assert store.load_checkpoints(run_id) == []
    assert list(store.list_checkpoints(run_id)) == []
    assert store.last_checkpoint(run_id) is None
    with pytest.raises(FanOutNotFound):
        store.get_fanout(run_id, 1)
    assert store.load_chunks(run_id, 1) == []
    assert run_id not in [r.run_id for r in store.list_runs(limit=50).runs]


def test_purge_deletes_everything_of_the_run_and_nothing_else(store: Store) -> None:
    _full_run(store, "r1")
    _full_run(store, "r10")
    # record + 3 checkpoints + marker + fan-out header + 2 chunks
    assert store.purge_run("r1") == 8
    _gone(store, "r1")
    assert store.get_run("r10").status == RunStatus.RUNNING
    assert [c.seq for c in store.load_checkpoints("r10")] == [0, 1, 2]
    assert store.load_chunks("r10", 1) == [(0, b"zero"), (2, b"two")]


def test_purge_is_idempotent_and_frees_the_id(store: Store) -> None:
    _full_run(store, "r1")
    assert store.purge_run("r1") > 0
    assert store.purge_run("r1") == 0
    assert store.purge_run("never-was") == 0
    store.start_run(run("r1"), ckpt(0, True, "r1"))  # a new run with the same id
    assert [c.seq for c in store.load_checkpoints("r1")] == [0]


def test_purge_of_what_an_expired_record_left(store: Store) -> None:
    """The reaper's case: the record is gone (TTL), its partition is not."""
    _full_run(store, "r1")
    assert store.purge_run("r1") == 8
    _gone(store, "r1")


def test_the_lease_index_forgets_a_purged_run(store: Store) -> None:
    store.start_run(run("r1", lease_owner="inv:a", lease_until=T0 + 5), ckpt(0, True))
    assert [r.run_id for r in store.list_stalled(T0 + 10)] == ["r1"]
    store.purge_run("r1")
    assert store.list_stalled(T0 + 10) == []


# -- the embedded stores' expiry ---------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def embedded(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("sqlite_store")


def test_list_expired_finds_runs_due_soonest_first(embedded: Any) -> None:
    store: Expiring = embedded
    for run_id, ttl in (("late", 300), ("never", None), ("soon", 100), ("mid", 200)):
        expires = None if ttl is None else int(T0) + ttl
        embedded.start_run(run(run_id, expires_at=expires), ckpt(0, True, run_id))
    assert store.list_expired(T0 + 99) == []
    assert store.list_expired(T0 + 100) == ["soon"]
    assert store.list_expired(T0 + 10_000) == ["soon", "mid", "late"]
    assert store.list_expired(T0 + 10_000, limit=2) == ["soon", "mid"]
    embedded.update_run("soon", {"expires_at": int(T0) + 1000})
    assert store.list_expired(T0 + 300) == ["mid", "late"]


def test_sqlite_finds_expired_runs_through_an_index(sqlite_store: SQLiteStore) -> None:
    plan = sqlite_store.db.connection().execute(
        "EXPLAIN QUERY PLAN SELECT run_id FROM runs WHERE "
        "CAST(json_extract(item, '$.ttl.N') AS INTEGER) <= ? ORDER BY "
        "CAST(json_extract(item, '$.ttl.N') AS INTEGER) LIMIT ?",
        (1, 1),
    )
    assert "runs_by_expiry" in " ".join(str(row) for row in plan.fetchall())


# -- DynamoDB only ---------------------------------------------------------------------------


def test_dynamodb_purge_reads_keys_only_and_deletes_25_per_batch(dynamo: DynamoKit) -> None:
    store = dynamo.store
    store.start_run(run("r1"), ckpt(0, True))
    for seq in range(1, 60):
        store.put_checkpoint(ckpt(seq))
    calls = count_calls(dynamo.client, "dynamodb.*")
    projections: list[str] = []
    dynamo.client.meta.events.register(
        "before-parameter-build.dynamodb.Query",
        lambda params, **_: projections.append(params.get("ProjectionExpression", "")),
    )
    assert store.purge_run("r1") == 61
    # 59 checkpoints + META in batches of 25 (25, 25, 10), then checkpoint 0 alone
    assert calls == {"Query": 1, "BatchWriteItem": 4}
    assert projections == ["pk, sk"]
    left = dynamo.client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "RUN#r1"}},
    )
    assert left["Items"] == []


def test_dynamodb_purge_deletes_checkpoint_0_last(dynamo: DynamoKit) -> None:
    store = dynamo.store
    _full_run(store, "r1")
    batches: list[list[str]] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        requests = params["RequestItems"][TABLE]
        batches.append([r["DeleteRequest"]["Key"]["sk"]["S"] for r in requests])

    dynamo.client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", seen)
    store.purge_run("r1")
    assert batches[-1] == ["CKPT#000000000000"]
    assert "CKPT#000000000000" not in [sk for batch in batches[:-1] for sk in batch]


def _last_request(dynamo: DynamoKit) -> list[list[dict[str, Any]]]:
    """The delete requests of each BatchWriteItem, as they are sent."""
    sent: list[list[dict[str, Any]]] = []
    dynamo.client.meta.events.register(
        "before-parameter-build.dynamodb.BatchWriteItem",
        lambda params, **_: sent.append(params["RequestItems"][TABLE]),
    )
    return sent


def test_dynamodb_purge_retries_unprocessed_items(dynamo: DynamoKit) -> None:
    """BatchWriteItem answers 200 with the deletes it did not do (throttled): they are
    sent again, with backoff on the store's clock."""
    from pflambda.clock import FakeClock

    store = dynamo.store
    store.clock = clock = FakeClock()
    _full_run(store, "r1")
    left_over = [2]
    sent = _last_request(dynamo)

    def unprocessed(parsed: dict[str, Any], **_: Any) -> None:
        if left_over[0]:
            left_over[0] -= 1
            parsed["UnprocessedItems"] = {TABLE: sent[-1][:1]}

    calls = count_calls(dynamo.client, "dynamodb.BatchWriteItem")
    dynamo.client.meta.events.register("after-call.dynamodb.BatchWriteItem", unprocessed)
    start = clock.now()
    assert store.purge_run("r1") == 8
    assert calls["BatchWriteItem"] == 4  # the batch, 2 retries of its first delete, ckpt 0
    assert clock.now() - start == pytest.approx(0.05 + 0.1)
    _gone(store, "r1")


def test_dynamodb_purge_that_stays_throttled_raises_retryable(dynamo: DynamoKit) -> None:
    from pflambda.clock import FakeClock

    store = dynamo.store
    store.clock = FakeClock()
    _full_run(store, "r1")
    sent = _last_request(dynamo)

    def unprocessed(parsed: dict[str, Any], **_: Any) -> None:
        parsed["UnprocessedItems"] = {TABLE: sent[-1][:1]}

    dynamo.client.meta.events.register("after-call.dynamodb.BatchWriteItem", unprocessed)
    with pytest.raises(RetryableError, match="unprocessed after 8 tries"):
        store.purge_run("r1")


def test_dynamodb_purge_throttled_query_is_retryable(dynamo: DynamoKit) -> None:
    _full_run(dynamo.store, "r1")
    fail_calls(dynamo.client, "dynamodb.Query", "ThrottlingException")
    with pytest.raises(RetryableError):
        dynamo.store.purge_run("r1")
    assert dynamo.store.purge_run("r1") == 8


def test_dynamodb_store_is_not_expiring() -> None:
    """DynamoDB's TTL service deletes expired records; its store does not look for them."""
    assert not hasattr(DynamoDBStore, "list_expired")
    assert dataclasses.is_dataclass(FanOut)
