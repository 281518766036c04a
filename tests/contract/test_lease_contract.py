"""The Store contract for leases, atomic starts, steps with a status change, and step markers."""

from __future__ import annotations

import dataclasses

import pytest

from pflambda.errors import CheckpointConflict, InvalidRunState, RetryableError, RunExists
from pflambda.stores._item import ITEM_LIMIT
from pflambda.stores.base import ItemTooLarge, LeaseHeld, RunStatus, Store
from tests.contract.conftest import DynamoKit, count_calls, fail_calls
from tests.contract.test_store_contract import T0, ckpt, run


def test_start_run_writes_record_and_checkpoint_0_together(store: Store) -> None:
    store.start_run(run(), ckpt(0, True))
    assert store.get_run("r1").status == RunStatus.RUNNING
    assert [c.seq for c in store.load_checkpoints("r1")] == [0]
    with pytest.raises(RunExists):
        store.start_run(run(flow="other:flow"), ckpt(0, True, body=b"other"))
    assert store.get_run("r1").flow == run().flow  # the second start changed nothing
    assert store.load_checkpoints("r1")[0].body == b"body-0"


def test_an_oversize_start_writes_nothing(store: Store) -> None:
    big = ckpt(0, True, body=b"x" * (ITEM_LIMIT + 1))
    with pytest.raises(ItemTooLarge):
        store.start_run(run(), big)
    with pytest.raises(Exception, match="no run"):
        store.get_run("r1")
    store.start_run(run(), ckpt(0, True))  # the id is still free


def test_commit_step_puts_the_step_and_changes_the_run_together(store: Store) -> None:
    store.start_run(run(), ckpt(0, True))
    store.commit_step(ckpt(1), {"status": RunStatus.COMPLETED}, expect_status={RunStatus.RUNNING})
    assert store.get_run("r1").status == RunStatus.COMPLETED
    assert [c.seq for c in store.list_checkpoints("r1")] == [0, 1]


def test_a_refused_commit_step_changes_nothing(store: Store) -> None:
    store.start_run(run(status=RunStatus.PAUSED), ckpt(0, True))
    with pytest.raises(InvalidRunState, match="paused"):
        store.commit_step(
            ckpt(1), {"status": RunStatus.COMPLETED}, expect_status={RunStatus.RUNNING}
        )
    assert [c.seq for c in store.list_checkpoints("r1")] == [0]  # the step stays free
    store.put_checkpoint(ckpt(1))
    with pytest.raises(CheckpointConflict):
        store.commit_step(ckpt(1), {"status": RunStatus.RUNNING}, expect_status={RunStatus.PAUSED})
    assert store.get_run("r1").status == RunStatus.PAUSED


def test_a_commit_step_over_the_item_limit_changes_nothing(store: Store) -> None:
    store.start_run(run(status=RunStatus.PAUSED), ckpt(0, True))
    with pytest.raises(ItemTooLarge):
        store.commit_step(
            ckpt(1),
            {"status": RunStatus.RUNNING, "prompt": "q" * (ITEM_LIMIT + 1)},
            expect_status={RunStatus.PAUSED},
        )
    assert store.get_run("r1").status == RunStatus.PAUSED
    assert [c.seq for c in store.list_checkpoints("r1")] == [0]


def test_a_lease_is_granted_once_until_it_lapses(store: Store) -> None:
    store.start_run(run(), ckpt(0, True))
    got = store.acquire_lease("r1", "a", T0 + 60, now=T0)
    assert (got.lease_owner, got.lease_until) == ("a", T0 + 60)
    with pytest.raises(LeaseHeld, match="driven by a"):
        store.acquire_lease("r1", "b", T0 + 90, now=T0 + 30)
    assert store.acquire_lease("r1", "a", T0 + 120, now=T0 + 30).lease_until == T0 + 120
    assert store.acquire_lease("r1", "b", T0 + 200, now=T0 + 121).lease_owner == "b"


def test_a_queued_lease_may_be_taken_over(store: Store) -> None:
    store.start_run(run(), ckpt(0, True))
    store.acquire_lease("r1", "queued", T0 + 900, now=T0)
    got = store.acquire_lease("r1", "worker", T0 + 60, now=T0 + 1, takeover={"queued"})
    assert got.lease_owner == "worker"


def test_a_lease_needs_the_expected_status(store: Store) -> None:
    store.start_run(run(status=RunStatus.FAILED), ckpt(0, True))
    with pytest.raises(InvalidRunState, match="failed"):
        store.acquire_lease("r1", "a", T0 + 60, now=T0)
    got = store.acquire_lease(
        "r1",
        "a",
        T0 + 60,
        now=T0,
        expect_status={RunStatus.FAILED},
        changes={"status": RunStatus.RUNNING, "error": None},
    )
    assert got.status == RunStatus.RUNNING
    assert got.lease_owner == "a"


def test_stalled_runs_come_from_the_lease_index(store: Store) -> None:
    for i, until in enumerate([T0 + 10, T0 + 50, T0 + 30]):
        store.start_run(run(f"r{i}"), ckpt(0, True, run_id=f"r{i}"))
        store.acquire_lease(f"r{i}", "a", until, now=T0)
    store.start_run(run("unleased"), ckpt(0, True, run_id="unleased"))
    assert [r.run_id for r in store.list_stalled(T0 + 40)] == ["r0", "r2"]
    assert [r.run_id for r in store.list_stalled(T0 + 40, limit=1)] == ["r0"]
    store.update_run("r0", {"status": RunStatus.COMPLETED})  # a finished run drops its lease
    assert store.get_run("r0").lease_until is None
    assert [r.run_id for r in store.list_stalled(T0 + 100)] == ["r2", "r1"]
    store.update_run("r2", {"lease_owner": None, "lease_until": None})
    assert [r.run_id for r in store.list_stalled(T0 + 100)] == ["r1"]


def test_a_claimed_step_stops_the_driver_and_stays_invisible(store: Store) -> None:
    store.start_run(run(), ckpt(0, True))
    store.put_checkpoint(ckpt(1))
    assert store.claim_step("r1") == 2
    assert store.claim_step("r1") == 2  # claiming again finds the same marker
    with pytest.raises(CheckpointConflict):
        store.put_checkpoint(ckpt(2))
    assert [c.seq for c in store.list_checkpoints("r1")] == [0, 1]
    assert [c.seq for c in store.load_checkpoints("r1")] == [0, 1]
    assert [c.seq for c in store.load_checkpoints("r1", 5)] == [0, 1]


def test_one_request_each(dynamo: DynamoKit) -> None:
    dynamo.store.create_run(run("r0"))  # a process records its listing shard count once, first
    calls = count_calls(dynamo.client, "dynamodb")
    dynamo.store.start_run(run(), ckpt(0, True))
    dynamo.store.acquire_lease("r1", "a", T0 + 60, now=T0)
    done = {"status": "completed", "updated_at": T0 + 1}  # as the engine's status changes are
    dynamo.store.commit_step(ckpt(1), done, expect_status={RunStatus.RUNNING})
    assert dict(calls) == {"TransactWriteItems": 2, "UpdateItem": 1}


def test_a_throttled_transaction_is_retryable_and_changes_nothing(dynamo: DynamoKit) -> None:
    fail_calls(dynamo.client, "dynamodb.TransactWriteItems", "ThrottlingException")
    with pytest.raises(RetryableError):
        dynamo.store.start_run(run(), ckpt(0, True))
    dynamo.store.start_run(run(), ckpt(0, True))
    assert dataclasses.replace(dynamo.store.get_run("r1")) == run()


def test_a_transaction_conflict_is_retryable(dynamo: DynamoKit) -> None:
    dynamo.store.start_run(run(), ckpt(0, True))

    def conflict(**_: object) -> object:
        from types import SimpleNamespace

        reasons = [{"Code": "TransactionConflict"}, {"Code": "None"}]
        error = {
            "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
            "CancellationReasons": reasons,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        dynamo.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", conflict)
        return SimpleNamespace(status_code=400), error

    dynamo.client.meta.events.register("before-call.dynamodb.TransactWriteItems", conflict)
    with pytest.raises(RetryableError):
        dynamo.store.commit_step(ckpt(1), {}, expect_status={RunStatus.RUNNING})
    dynamo.store.commit_step(ckpt(1), {"error": None}, expect_status={RunStatus.RUNNING})
