"""Orphan checks: a start that put blobs before its first write and then died leaves
blobs no record will ever expire; a worker looks again 15 minutes later and deletes them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pflambda import limits
from pflambda.aws.worker import Worker
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine import retention
from pflambda.engine.runner import Engine
from pflambda.errors import RetryableError
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import Checkpoint, RunRecord
from pflambda.stores.memory import MemoryStore

BIG = {"limit": 1, "doc": b"\x05" * 200_000}


class DyingStore(MemoryStore):
    """Its start_run fails, as a start does when its process dies right before it."""

    def start_run(self, record: RunRecord, checkpoint: Checkpoint) -> None:
        raise RetryableError("the process died here")


def engine(store: MemoryStore | None = None) -> Engine:
    clock = FakeClock()
    made = Engine(store or MemoryStore(), MemoryBlobStore(), MemoryQueue(clock), clock=clock)
    made.orphan_checks = True
    return made


def keys(engine: Engine, run_id: str) -> list[str]:
    blobs = engine.blobs
    assert isinstance(blobs, MemoryBlobStore)
    return [k for k in blobs._blobs if k.startswith(f"runs/{run_id}/")]


def drain(engine: Engine) -> list[dict[str, Any]]:
    """Let the check's delay pass, then have the worker handle every message."""
    queue = engine.queue
    assert isinstance(queue, MemoryQueue)
    assert queue.receive(10) == []  # delayed: not before 15 minutes
    clock = engine.clock
    assert isinstance(clock, FakeClock)
    clock.advance(limits.ORPHAN_CHECK_SECONDS - 1)
    assert queue.receive(10) == []
    clock.advance(1)
    worker = Worker(engine)
    handled = []
    for message in queue.receive(10):
        body = json.loads(message.body)
        handled.append(body)
        worker.kinds[body["kind"]](engine, body, 1)
        queue.ack([message.receipt])
    return handled


def test_a_start_that_died_after_its_blobs_leaves_none_behind() -> None:
    eng = engine(DyingStore())
    with pytest.raises(RetryableError):
        eng.start("tests.flows.sample:approval", dict(BIG), run_id="died")
    assert keys(eng, "died")  # written before the start's one write
    assert drain(eng) == [{"kind": "orphans", "run_id": "died"}]
    assert keys(eng, "died") == []


def test_the_check_spares_a_run_that_got_stored() -> None:
    eng = engine()
    assert eng.start("tests.flows.sample:approval", dict(BIG), run_id="ok").status == "paused"
    assert [m["kind"] for m in drain(eng)] == ["orphans"]
    assert eng.state("ok")[0]["doc"] == BIG["doc"]
    assert keys(eng, "ok")


def test_no_check_without_blobs_or_when_off() -> None:
    eng = engine()
    eng.start("tests.flows.sample:approval", {"limit": 1}, run_id="small")
    assert drain(eng) == []
    off = engine()
    off.orphan_checks = False
    off.start("tests.flows.sample:approval", dict(BIG), run_id="big")
    assert drain(off) == []


def test_a_fork_that_writes_blobs_is_watched_too() -> None:
    eng = engine()
    eng.start("tests.flows.sample:approval", dict(BIG), run_id="src")
    drain(eng)
    fork = eng.fork("src", 0, new_run_id="copy")
    assert [m["run_id"] for m in drain(eng)] == ["copy"]
    assert keys(eng, fork.run_id)


def test_the_check_leaves_a_half_reaped_run_to_the_reaper() -> None:
    store = MemoryStore()
    blobs = MemoryBlobStore()
    clock = FakeClock()
    made = Engine(store, blobs, clock=clock)
    made.start("tests.flows.sample:approval", dict(BIG), run_id="r")
    stored = [k for k in blobs._blobs if k.startswith("runs/r/")]
    assert retention.reap_orphans(store, blobs, "r") is None  # a live run
    store._runs.pop("r")  # the TTL deleted the record; checkpoint 0 is still there
    assert retention.reap_orphans(store, blobs, "r") is None
    assert [k for k in blobs._blobs if k.startswith("runs/r/")] == stored
    assert store.load_checkpoints("r", 0)


def test_the_worker_handles_an_orphan_check_from_sqs() -> None:
    from tests.functional.conftest import FakeContext, load_event

    eng = engine(DyingStore())
    with pytest.raises(RetryableError):
        eng.start("tests.flows.sample:approval", dict(BIG), run_id="died")
    event = load_event("sqs_continue.json")
    event["Records"] = event["Records"][:1]
    event["Records"][0]["body"] = json.dumps({"kind": "orphans", "run_id": "died"})
    assert Worker(eng)(event, FakeContext()) == {"batchItemFailures": []}
    assert keys(eng, "died") == []


def test_orphan_checks_are_on_for_dynamodb_only() -> None:
    from pflambda.aws.config import Settings, reset_memory_ports

    reset_memory_ports()
    assert Settings(backend="memory").engine().orphan_checks is False
    reset_memory_ports()
