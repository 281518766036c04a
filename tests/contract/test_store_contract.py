"""The Store contract (pflambda/stores/base.py), held against memory and DynamoDB on moto."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pflambda.errors import (
    CheckpointConflict,
    ConfigError,
    InvalidRunState,
    PflambdaError,
    RetryableError,
    RunExists,
    RunNotFound,
)
from pflambda.limits import SNAPSHOT_EVERY
from pflambda.stores._item import ITEM_LIMIT, checkpoint_item, item_size
from pflambda.stores.base import Checkpoint, ItemTooLarge, RunRecord, RunStatus, Store
from tests.contract.conftest import TABLE, DynamoKit, ScanForbidden, count_calls, fail_calls

T0 = 1_700_000_000.0


def run(run_id: str = "r1", **fields: object) -> RunRecord:
    base = RunRecord(
        run_id=run_id,
        flow="flows.research.flow:create_flow",
        fingerprint="fp1",
        status=RunStatus.RUNNING,
        created_at=T0,
        updated_at=T0,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def ckpt(
    seq: int, snapshot: bool = False, run_id: str = "r1", body: bytes | None = None
) -> Checkpoint:
    return Checkpoint(
        run_id=run_id,
        seq=seq,
        body=body if body is not None else f"body-{seq}".encode(),
        snapshot=snapshot,
        created_at=T0 + seq,
        node_id=None if seq == 0 else f"node{seq}",
        action=None if seq == 0 else "default",
    )


def write_steps(store: Store, count: int, snapshots: set[int], run_id: str = "r1") -> None:
    for seq in range(count):
        store.put_checkpoint(ckpt(seq, seq in snapshots, run_id))


def expected_load(count: int, snapshots: set[int], at: int | None) -> list[int]:
    top = count - 1 if at is None else min(at, count - 1)
    base = max((s for s in snapshots if s <= top), default=0)
    return list(range(base, top + 1))


# -- runs ---------------------------------------------------------------------------------


def test_create_then_get_round_trips_every_field(store: Store) -> None:
    record = run(
        owner="alice",
        context_id="ctx-1",
        cancel_requested=True,
        error="boom",
        prompt="Which city? ✈",
        input_key="city",
        expires_at=1_800_000_000,
        created_at=1_700_000_000.123456789,
        updated_at=1_700_000_001.1,
        attrs={"history": [{"role": "user", "text": "héllo"}], "n": 0.1, "big": 2**53 + 1},
        agent="research",
        summary={"submitted": True, "n": [1, "ü"]},
    )
    store.create_run(record)
    assert store.get_run("r1") == record


def test_get_unknown_run_raises_run_not_found(store: Store) -> None:
    with pytest.raises(RunNotFound):
        store.get_run("nope")


def test_create_with_a_taken_id_raises_and_keeps_the_first(store: Store) -> None:
    store.create_run(run(flow="a:b"))
    with pytest.raises(RunExists):
        store.create_run(run(flow="c:d"))
    assert store.get_run("r1").flow == "a:b"


def test_update_changes_only_the_named_fields(store: Store) -> None:
    original = run(owner="alice", prompt="q?", attrs={"k": 1})
    store.create_run(original)
    updated = store.update_run("r1", {"status": RunStatus.PAUSED, "updated_at": T0 + 5})
    assert updated == dataclasses.replace(original, status=RunStatus.PAUSED, updated_at=T0 + 5)
    assert store.get_run("r1") == updated


def test_update_every_updatable_field(store: Store) -> None:
    store.create_run(run())
    changes = {
        "status": RunStatus.FAILED,
        "updated_at": T0 + 1.5,
        "cancel_requested": True,
        "error": "it broke",
        "prompt": "why?",
        "input_key": "why",
        "expires_at": 1_900_000_000,
        "attrs": {"a": [1, 2.5, None, "x"]},
        "fingerprint": "fp2",
        "summary": {"s": "x"},
    }
    updated = store.update_run("r1", changes)
    assert updated == dataclasses.replace(run(), **changes)  # type: ignore[arg-type]
    assert store.get_run("r1") == updated


def test_update_to_none_removes_the_field(store: Store) -> None:
    store.create_run(run(error="boom", prompt="q?", input_key="k", expires_at=1_800_000_000))
    updated = store.update_run("r1", {"error": None, "prompt": None, "expires_at": None})
    assert (updated.error, updated.prompt, updated.expires_at) == (None, None, None)
    assert updated.input_key == "k"
    assert store.get_run("r1") == updated


def test_update_with_expected_status_applies(store: Store) -> None:
    store.create_run(run(status=RunStatus.PAUSED))
    updated = store.update_run(
        "r1",
        {"status": RunStatus.RUNNING},
        expect_status={RunStatus.PAUSED, RunStatus.RUNNING},
    )
    assert updated.status is RunStatus.RUNNING


def test_update_with_unexpected_status_is_refused_naming_the_status(store: Store) -> None:
    store.create_run(run(status=RunStatus.COMPLETED))
    with pytest.raises(InvalidRunState, match="completed"):
        store.update_run(
            "r1", {"status": RunStatus.RUNNING, "error": "x"}, expect_status=[RunStatus.PAUSED]
        )
    assert store.get_run("r1") == run(status=RunStatus.COMPLETED)


def test_update_with_no_acceptable_status_is_refused(store: Store) -> None:
    store.create_run(run())
    with pytest.raises(InvalidRunState, match="running"):
        store.update_run("r1", {"error": "x"}, expect_status=())


@pytest.mark.parametrize("expect", [None, [RunStatus.RUNNING]])
def test_update_unknown_run_raises_run_not_found(
    store: Store, expect: list[RunStatus] | None
) -> None:
    with pytest.raises(RunNotFound):
        store.update_run("nope", {"status": RunStatus.FAILED}, expect_status=expect)
    with pytest.raises(RunNotFound):
        store.get_run("nope")


def test_update_with_no_changes_returns_the_record(store: Store) -> None:
    store.create_run(run())
    assert store.update_run("r1", {}) == run()
    with pytest.raises(InvalidRunState):
        store.update_run("r1", {}, expect_status=[RunStatus.PAUSED])


def test_a_concurrent_cancel_request_is_never_undone(store: Store) -> None:
    store.create_run(run())
    seen_by_runner = store.get_run("r1")
    store.update_run("r1", {"cancel_requested": True})  # the API, meanwhile
    store.update_run("r1", {"status": RunStatus.PAUSED, "updated_at": T0 + 1})  # the runner
    after = store.get_run("r1")
    assert not seen_by_runner.cancel_requested
    assert after.cancel_requested
    assert after.status is RunStatus.PAUSED


@pytest.mark.parametrize(
    "changes", [{"run_id": "other"}, {"owner": "mallory"}, {"status": None}, {"attrs": None}]
)
def test_update_refuses_fields_it_may_not_change(store: Store, changes: dict[str, object]) -> None:
    store.create_run(run(owner="alice"))
    with pytest.raises(ConfigError):
        store.update_run("r1", changes)
    assert store.get_run("r1") == run(owner="alice")


def test_an_oversize_run_is_refused(store: Store) -> None:
    with pytest.raises(ItemTooLarge, match="r1"):
        store.create_run(run(attrs={"blob": "x" * ITEM_LIMIT}))
    with pytest.raises(RunNotFound):
        store.get_run("r1")
    store.create_run(run())
    with pytest.raises(ItemTooLarge):
        store.update_run("r1", {"attrs": {"blob": "x" * (ITEM_LIMIT + 10_000)}})
    assert store.get_run("r1") == run()


# -- copies ---------------------------------------------------------------------------------


def test_reads_and_writes_are_copies(store: Store) -> None:
    attrs = {"history": [1, 2]}
    store.create_run(run(attrs=attrs))
    attrs["history"].append(3)  # the caller's dict, after the write
    first = store.get_run("r1")
    first.attrs["history"].append(4)  # a returned record
    assert store.get_run("r1").attrs == {"history": [1, 2]}
    updated = store.update_run("r1", {"attrs": {"x": [1]}})
    updated.attrs["x"].append(2)
    assert store.get_run("r1").attrs == {"x": [1]}


def test_checkpoint_bodies_are_copied(store: Store) -> None:
    body = bytearray(b"original")
    store.put_checkpoint(dataclasses.replace(ckpt(0, True), body=body))  # type: ignore[arg-type]
    body[:] = b"changed!"
    (loaded,) = store.load_checkpoints("r1")
    assert loaded.body == b"original"
    assert type(loaded.body) is bytes


# -- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_round_trips_every_field(store: Store) -> None:
    checkpoint = Checkpoint(
        run_id="r1",
        seq=0,
        body=bytes(range(256)) * 4,
        snapshot=True,
        created_at=1_700_000_000.987654321,
        node_id="decide",
        action="search",
        expires_at=1_800_000_000,
    )
    store.put_checkpoint(checkpoint)
    assert store.load_checkpoints("r1") == [checkpoint]
    empty = Checkpoint(run_id="r2", seq=0, body=b"", snapshot=True, created_at=T0)
    store.put_checkpoint(empty)
    assert store.load_checkpoints("r2") == [empty]


def test_second_put_of_a_step_conflicts_and_changes_nothing(store: Store) -> None:
    store.put_checkpoint(ckpt(0, True))
    store.put_checkpoint(ckpt(1, body=b"winner"))
    with pytest.raises(CheckpointConflict):
        store.put_checkpoint(ckpt(1, snapshot=True, body=b"loser"))
    loaded = store.load_checkpoints("r1")
    assert [c.body for c in loaded] == [b"body-0", b"winner"]
    assert not loaded[1].snapshot


def test_same_step_of_another_run_does_not_conflict(store: Store) -> None:
    store.put_checkpoint(ckpt(0, True, run_id="a"))
    store.put_checkpoint(ckpt(0, True, run_id="b"))
    assert [c.run_id for c in store.load_checkpoints("b")] == ["b"]


def test_load_without_checkpoints_is_empty(store: Store) -> None:
    assert store.load_checkpoints("nope") == []
    assert store.load_checkpoints("nope", at=3) == []
    store.create_run(run())
    assert store.load_checkpoints("r1") == []


@pytest.mark.parametrize(
    ("count", "snapshots"),
    [(1, {0}), (30, {0}), (30, {0, 7, 20}), (30, {0, 29}), (30, {0, 1, 2, 3}), (12, set())],
)
def test_load_returns_latest_snapshot_and_later_deltas(
    store: Store, count: int, snapshots: set[int]
) -> None:
    write_steps(store, count, snapshots)
    for at in [None, -1, 0, 1, 6, 7, 8, 19, 20, 21, count - 2, count - 1, count + 5]:
        loaded = store.load_checkpoints("r1", at=at)
        want = [] if at is not None and at < 0 else expected_load(count, snapshots, at)
        assert [c.seq for c in loaded] == want, f"at={at}"
        assert loaded == [ckpt(seq, seq in snapshots) for seq in want]


def test_load_ignores_other_runs(store: Store) -> None:
    write_steps(store, 5, {0}, run_id="a")
    write_steps(store, 3, {0, 2}, run_id="b")
    assert [c.seq for c in store.load_checkpoints("a")] == [0, 1, 2, 3, 4]
    assert [(c.run_id, c.seq) for c in store.load_checkpoints("b")] == [("b", 2)]


def boundary_body_length(checkpoint: Checkpoint) -> int:
    """The body length that makes ``checkpoint``'s item exactly :data:`ITEM_LIMIT` bytes.

    The stored ``size`` number grows with the body, so converge rather than subtract once.
    """
    length = ITEM_LIMIT - 2_000
    for _ in range(5):
        probe = dataclasses.replace(checkpoint, body=bytes(length))
        length += ITEM_LIMIT - item_size(checkpoint_item(probe))
    return length


def test_checkpoint_bodies_up_to_the_item_limit_round_trip(store: Store) -> None:
    template = Checkpoint("r1", 7, b"", True, T0, node_id="n", action="a", expires_at=1_800_000_000)
    length = boundary_body_length(template)
    assert length > 395_000
    fits = dataclasses.replace(
        template, body=bytes(range(256)) * (length // 256) + b"z" * (length % 256)
    )
    assert item_size(checkpoint_item(fits)) == ITEM_LIMIT
    store.put_checkpoint(fits)
    assert store.load_checkpoints("r1") == [fits]
    assert [i.size for i in store.list_checkpoints("r1")] == [length]


def test_a_checkpoint_one_byte_over_the_limit_is_refused(store: Store) -> None:
    template = Checkpoint("r1", 7, b"", True, T0, node_id="n", action="a", expires_at=1_800_000_000)
    too_big = dataclasses.replace(template, body=b"x" * (boundary_body_length(template) + 1))
    with pytest.raises(ItemTooLarge) as refused:
        store.put_checkpoint(too_big)
    message = str(refused.value)
    assert "checkpoint 7 of run r1" in message
    assert str(ITEM_LIMIT + 1) in message
    assert store.load_checkpoints("r1") == []
    store.put_checkpoint(dataclasses.replace(template, body=b"fine"))  # the step is still free


def test_list_checkpoints_oldest_first_without_bodies(store: Store) -> None:
    write_steps(store, 6, {0, 4})
    infos = list(store.list_checkpoints("r1"))
    assert [i.seq for i in infos] == [0, 1, 2, 3, 4, 5]
    assert [i.snapshot for i in infos] == [True, False, False, False, True, False]
    assert [i.size for i in infos] == [len(f"body-{s}") for s in range(6)]
    assert [i.node_id for i in infos] == [None, "node1", "node2", "node3", "node4", "node5"]
    assert [i.action for i in infos] == [None] + ["default"] * 5
    assert [i.created_at for i in infos] == [T0 + s for s in range(6)]
    assert [i.seq for i in store.list_checkpoints("r1", after=3)] == [4, 5]
    assert list(store.list_checkpoints("r1", after=5)) == []
    assert list(store.list_checkpoints("nope")) == []


def test_checkpoints_keep_duration_and_retries(store: Store) -> None:
    write_steps(store, 1, {0})
    timed = Checkpoint("r1", 1, b"x", False, T0 + 1, "n", "default", duration_ms=12.5, retries=2)
    store.put_checkpoint(timed)
    infos = list(store.list_checkpoints("r1"))
    assert [(i.duration_ms, i.retries) for i in infos] == [(None, 0), (12.5, 2)]
    (_, loaded) = store.load_checkpoints("r1")
    assert (loaded.duration_ms, loaded.retries) == (12.5, 2)


def test_last_checkpoint_is_the_newest_without_its_body(store: Store) -> None:
    assert store.last_checkpoint("r1") is None
    write_steps(store, 3, {0})
    store.put_checkpoint(Checkpoint("r1", 3, b"xyz", False, T0 + 3, "n3", "go", position="n4"))
    last = store.last_checkpoint("r1")
    assert last is not None
    assert (last.seq, last.node_id, last.action, last.size, last.position) == (
        3,
        "n3",
        "go",
        3,
        "n4",
    )
    assert [i.position for i in store.list_checkpoints("r1")] == [None, None, None, "n4"]


# -- listing runs: see test_store_listing.py ------------------------------------------------


# -- DynamoDB only: the access patterns ------------------------------------------------------


def items_read(aws_client: Any) -> list[int]:
    """Items each Query of ``aws_client`` read (ScannedCount: what DynamoDB charges for)."""
    counts: list[int] = []

    def hook(parsed: Any, **_: Any) -> None:
        counts.append(parsed.get("ScannedCount", 0))

    aws_client.meta.events.register("after-call.dynamodb.Query", hook)
    return counts


def with_bases(count: int, snapshots: set[int]) -> list[Checkpoint]:
    """Checkpoints 0..count-1 that name their base snapshot, as the engine writes them."""
    out, base = [], 0
    for seq in range(count):
        base = seq if seq in snapshots else base
        out.append(dataclasses.replace(ckpt(seq, seq in snapshots), base=base))
    return out


def test_checkpoints_keep_their_base(store: Store) -> None:
    for checkpoint in with_bases(4, {0, 2}):
        store.put_checkpoint(checkpoint)
    assert [c.base for c in store.load_checkpoints("r1")] == [2, 2]
    assert store.load_checkpoints("r1", at=1) == with_bases(2, {0})


def test_load_reads_only_what_it_returns(dynamo: DynamoKit) -> None:
    for checkpoint in with_bases(200, {0, 50, 100, 150}):
        dynamo.store.put_checkpoint(checkpoint)
    read = items_read(dynamo.client)
    assert [c.seq for c in dynamo.store.load_checkpoints("r1")] == list(range(150, 200))
    assert read == [1, 49]  # the newest step, then its base snapshot up to the step before
    read.clear()
    assert [c.seq for c in dynamo.store.load_checkpoints("r1", at=120)] == list(range(100, 121))
    assert read == [1, 20]
    read.clear()
    assert [c.seq for c in dynamo.store.load_checkpoints("r1", at=150)] == [150]
    assert read == [1]


def test_load_without_bases_pages_back_to_a_snapshot(dynamo: DynamoKit) -> None:
    page = SNAPSHOT_EVERY + 1  # what one Query reads when paging back
    write_steps(dynamo.store, 2 * page + 5, {0})  # checkpoints written before ``base``
    queries = count_calls(dynamo.client, "dynamodb.Query")
    assert [c.seq for c in dynamo.store.load_checkpoints("r1")] == list(range(2 * page + 5))
    assert queries["Query"] == 4  # the newest, then three pages back


def test_nothing_scans(dynamo: DynamoKit) -> None:
    with pytest.raises(ScanForbidden):  # the guard every moto store test runs under
        dynamo.client.scan(TableName=TABLE)
    calls = count_calls(dynamo.client, "dynamodb.*")
    store = dynamo.store
    store.create_run(run(context_id="c", owner="o"))
    store.get_run("r1")
    store.update_run("r1", {"status": RunStatus.PAUSED}, expect_status=[RunStatus.RUNNING])
    write_steps(store, 5, {0})
    store.load_checkpoints("r1")
    list(store.list_checkpoints("r1"))
    store.list_runs(context_id="c", owner="o", limit=1)
    store.list_runs(limit=1)
    store.count_runs(owner="o", agent="a")
    assert "Scan" not in calls
    assert set(calls) == {"PutItem", "GetItem", "UpdateItem", "Query"}


def test_update_is_a_single_write(dynamo: DynamoKit) -> None:
    dynamo.store.create_run(run())
    calls = count_calls(dynamo.client, "dynamodb.*")
    dynamo.store.update_run("r1", {"error": "x"}, expect_status=[RunStatus.RUNNING])
    with pytest.raises(InvalidRunState):
        dynamo.store.update_run("r1", {"error": "y"}, expect_status=[RunStatus.PAUSED])
    assert dict(calls) == {"UpdateItem": 2}


def test_items_carry_the_ttl_and_the_table_expires_them(dynamo: DynamoKit) -> None:
    dynamo.store.create_run(run(expires_at=1_800_000_000))
    dynamo.store.put_checkpoint(dataclasses.replace(ckpt(0, True), expires_at=1_800_000_001))
    key = {"pk": {"S": "RUN#r1"}}
    meta = dynamo.client.get_item(TableName=TABLE, Key=key | {"sk": {"S": "META"}})["Item"]
    step = dynamo.client.get_item(TableName=TABLE, Key=key | {"sk": {"S": "CKPT#000000000000"}})
    assert meta["ttl"] == {"N": "1800000000"}
    assert step["Item"]["ttl"] == {"N": "1800000001"}
    described = dynamo.client.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert described == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


def test_create_table_is_idempotent(dynamo: DynamoKit) -> None:
    from pflambda.stores.dynamodb import create_table

    create_table(dynamo.client, TABLE)
    indexes = dynamo.client.describe_table(TableName=TABLE)["Table"]["GlobalSecondaryIndexes"]
    assert sorted(i["IndexName"] for i in indexes) == [
        "gsi3",
        "runs-all",
        "runs-by-context",
        "runs-by-owner",
        "runs-by-status",
    ]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
        ("InternalServerError", 500),
        ("ServiceUnavailable", 503),
    ],
)
def test_throttling_and_server_errors_are_retryable(
    dynamo: DynamoKit, code: str, status: int
) -> None:
    fail_calls(dynamo.client, "dynamodb.PutItem", code, status)
    with pytest.raises(RetryableError, match=code):
        dynamo.store.put_checkpoint(ckpt(0, True))
    dynamo.store.put_checkpoint(ckpt(0, True))  # the next try goes through


def test_a_size_validation_error_is_item_too_large(dynamo: DynamoKit) -> None:
    dynamo.store.create_run(run())
    message = "Item size to update has exceeded the maximum allowed size"
    fail_calls(dynamo.client, "dynamodb.UpdateItem", "ValidationException", message=message)
    with pytest.raises(ItemTooLarge):
        dynamo.store.update_run("r1", {"attrs": {"a": 1}})


def test_other_errors_are_not_disguised(dynamo: DynamoKit) -> None:
    fail_calls(dynamo.client, "dynamodb.GetItem", "AccessDeniedException")
    with pytest.raises(Exception, match="AccessDenied") as raised:
        dynamo.store.get_run("r1")
    assert not isinstance(raised.value, PflambdaError)
