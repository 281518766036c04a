"""Fan-out over the queue: order, duplicates, crashes, poison, cancel, sizes."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from pflambda.aws.worker import Worker, parse
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine.fanout import run_chunk
from pflambda.engine.flowref import load_flow
from pflambda.engine.runner import Engine, RunOutcome
from pflambda.queues.base import Message
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore


def make_engine(**kw: Any) -> Engine:
    clock = FakeClock()
    return Engine(MemoryStore(), MemoryBlobStore(), MemoryQueue(clock=clock), clock=clock, **kw)


def in_process(ref: str, shared: dict[str, Any]) -> dict[str, Any]:
    flow, state = load_flow(ref), copy.deepcopy(shared)
    if hasattr(flow, "run_async"):
        asyncio.run(flow.run_async(state))
    else:
        flow.run(state)
    return state


def deliver(engine: Engine, message: Message) -> None:
    doc = parse(message.body)
    if doc["kind"] == "fanout":
        run_chunk(engine, doc, message.receive_count)
    else:
        Worker(engine).handle(doc)


def drain(engine: Engine, *, twice: bool = False, limit: int = 10_000) -> int:
    """Deliver every message (each twice with ``twice``) until the queue is empty."""
    assert isinstance(engine.queue, MemoryQueue)
    delivered = 0
    while delivered < limit:
        batch = engine.queue.receive(10)
        if not batch:
            return delivered
        for message in batch:
            deliver(engine, message)
            if twice:
                deliver(engine, message)
            engine.queue.ack([message.receipt])
            delivered += 1
    raise AssertionError("queue never drained")


def final(engine: Engine, outcome: RunOutcome) -> tuple[RunStatus, dict[str, Any]]:
    record = engine.store.get_run(outcome.run_id)
    return record.status, engine.state(outcome.run_id)[0]


def test_items_fan_out_and_come_back_in_order() -> None:
    engine = make_engine()
    shared = {"items": list(range(95))}
    outcome = engine.start("tests.flows.batch:squares", shared)
    assert outcome.stopped == "fanout"
    assert engine.queue.send_calls == 1  # type: ignore[union-attr]  # 10 messages, one batch
    assert engine.queue.approximate_size() == 10  # type: ignore[union-attr]
    drain(engine)
    status, state = final(engine, outcome)
    assert status == RunStatus.COMPLETED
    assert state == in_process("tests.flows.batch:squares", shared)
    assert state["scale"] == 2  # the flow's params reached the workers' nodes


def test_every_message_delivered_twice_changes_nothing() -> None:
    engine = make_engine()
    shared = {"items": list(range(30))}
    outcome = engine.start("tests.flows.batch:squares", shared)
    drain(engine, twice=True)
    status, state = final(engine, outcome)
    assert status == RunStatus.COMPLETED
    assert state == in_process("tests.flows.batch:squares", shared)
    steps = [c.node_id for c in engine.store.list_checkpoints(outcome.run_id)]
    assert steps == [None, "Square", "Square", "Total"]


def test_a_worker_crash_between_recording_and_acknowledging() -> None:
    engine = make_engine()
    queue = engine.queue
    assert isinstance(queue, MemoryQueue)
    outcome = engine.start("tests.flows.batch:squares", {"items": list(range(20))})
    first = queue.receive(1)[0]
    deliver(engine, first)  # recorded ... and then the worker dies before acking
    queue.release(first.receipt)
    drain(engine)
    status, state = final(engine, outcome)
    assert status == RunStatus.COMPLETED
    assert state["squares"] == [i * i for i in range(20)]


def test_a_poison_item_fails_the_run_naming_it() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.batch:squares", {"items": [1, 2, 3, -1, 5]})
    drain(engine)
    record = engine.store.get_run(outcome.run_id)
    assert record.status == RunStatus.FAILED
    assert record.error == "node 'Square' item 0-4 raised ValueError: poison item"


def test_a_poison_item_alone_in_its_message_is_named_exactly() -> None:
    engine = make_engine(items_per_message=1)
    outcome = engine.start("tests.flows.batch:squares", {"items": [1, 2, 3, -1, 5]})
    drain(engine)
    assert (
        engine.store.get_run(outcome.run_id).error
        == "node 'Square' item 3 raised ValueError: poison item"
    )


def test_an_item_that_asks_for_input_fails_the_run_saying_why() -> None:
    """InputRequired is a BaseException: it must not escape the worker (it killed the
    local SQS poller's thread) but end the run with a clear error."""
    engine = make_engine(items_per_message=1)
    outcome = engine.start("tests.flows.batch:squares", {"items": [1, "ask", 3]})
    drain(engine)
    record = engine.store.get_run(outcome.run_id)
    assert record.status == RunStatus.FAILED
    assert record.error == (
        "node 'Square' item 1 raised InputRequired: which square? "
        "(a fanned-out item cannot pause for input: ask in prep or post)"
    )


def test_messages_that_keep_failing_end_the_run_instead_of_hanging() -> None:
    engine = make_engine(max_attempts=3)
    outcome = engine.start("tests.flows.batch:squares", {"items": [1, 2]})
    message = engine.queue.receive(1)[0]  # type: ignore[union-attr]
    run_chunk(engine, parse(message.body), receive_count=4)
    record = engine.store.get_run(outcome.run_id)
    assert record.status == RunStatus.FAILED
    assert record.error == "items 0-1 of node 'Square' failed 3 times"


def test_cancel_mid_fan_out_drops_pending_items() -> None:
    engine = make_engine(items_per_message=2)
    outcome = engine.start("tests.flows.batch:squares", {"items": list(range(10))})
    queue = engine.queue
    assert isinstance(queue, MemoryQueue)
    first = queue.receive(1)[0]
    deliver(engine, first)
    queue.ack([first.receipt])
    engine.cancel(outcome.run_id)
    drain(engine)
    assert engine.store.get_run(outcome.run_id).status == RunStatus.CANCELLED
    assert queue.approximate_size() == 0


def test_zero_items_run_in_process_and_one_item_fans_out() -> None:
    engine = make_engine()
    empty = engine.start("tests.flows.batch:squares", {"items": []})
    assert empty.status == RunStatus.COMPLETED
    assert empty.shared["squares"] == []
    one = engine.start("tests.flows.batch:squares", {"items": [7]})
    assert one.stopped == "fanout"
    assert drain(engine) == 2  # the item, then the continuation
    assert final(engine, one)[1]["squares"] == [49]


def test_items_larger_than_a_message_travel_by_reference() -> None:
    engine = make_engine()
    queue = engine.queue
    assert isinstance(queue, MemoryQueue)
    sent: list[str] = []
    original = queue.send
    queue.send = lambda bodies, **kw: (sent.extend(bodies), original(bodies, **kw))[1]  # type: ignore[method-assign]
    big = [b"x" * 300_000, b"y" * 10, b"z" * 400_000]
    outcome = engine.start("tests.flows.batch:squares", {"items": big})
    assert sent
    assert all(len(body.encode()) < 256 * 1024 for body in sent)
    drain(engine)
    status, state = final(engine, outcome)
    assert status == RunStatus.COMPLETED
    assert state["squares"] == [300_000, 10, 400_000]


def test_async_parallel_batch_node_fans_out() -> None:
    engine = make_engine(items_per_message=3)
    shared = {"items": list(range(10))}
    outcome = engine.start("tests.flows.batch:async_squares", shared)
    assert outcome.stopped == "fanout"
    drain(engine)
    status, state = final(engine, outcome)
    assert status == RunStatus.COMPLETED
    assert state == in_process("tests.flows.batch:async_squares", shared)


def test_threshold_policy_for_nodes_without_a_choice() -> None:
    engine = make_engine(fan_out_threshold=5)
    small = engine.start("tests.flows.batch:by_threshold", {"items": [1, 2, 3, 4]})
    assert small.status == RunStatus.COMPLETED
    big = engine.start("tests.flows.batch:by_threshold", {"items": [1, 2, 3, 4, 5]})
    assert big.stopped == "fanout"
    drain(engine)
    assert final(engine, big)[1]["plus_one"] == [2, 3, 4, 5, 6]


def test_without_a_queue_batches_run_in_process() -> None:
    engine = Engine(MemoryStore(), MemoryBlobStore(), clock=FakeClock())
    outcome = engine.start("tests.flows.batch:squares", {"items": [1, 2, 3]})
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared["total"] == 14


def test_a_crash_before_the_items_were_sent_is_repaired_on_resume() -> None:
    engine = make_engine()
    queue = engine.queue
    assert isinstance(queue, MemoryQueue)
    original = queue.send
    calls = {"n": 0}

    def flaky(bodies: Any, **kw: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("died before sending")
        original(bodies, **kw)

    queue.send = flaky  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        engine.start("tests.flows.batch:squares", {"items": [1, 2, 3]}, run_id="r")
    again = engine.resume("r")
    assert again.stopped == "fanout"
    drain(engine)
    assert final(engine, again)[1]["total"] == 14


def test_an_early_continuation_waits() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.batch:squares", {"items": [1, 2, 3]})
    early = engine.resume(outcome.run_id)
    assert early.stopped == "fanout"
    assert early.status == RunStatus.RUNNING
    drain(engine)
    assert final(engine, outcome)[0] == RunStatus.COMPLETED


def test_fan_out_messages_are_json_with_the_chunk() -> None:
    engine = make_engine(items_per_message=4)
    engine.start("tests.flows.batch:squares", {"items": list(range(10))})
    bodies = [json.loads(m.body) for m in engine.queue.receive(10)]  # type: ignore[union-attr]
    assert sorted(b["chunk"] for b in bodies) == [0, 1, 2]
    assert [len(b["items"]) for b in sorted(bodies, key=lambda b: b["chunk"])] == [4, 4, 2]


def _sqs_event(message: Message) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message.message_id,
                "receiptHandle": message.receipt,
                "body": message.body,
                "attributes": {"ApproximateReceiveCount": str(message.receive_count)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pflambda-work",
            }
        ]
    }


def test_a_throttled_chunk_is_re_queued_and_never_spends_the_runs_attempts() -> None:
    """Throttling is retryable: more throttles than ``max_attempts`` still end in the
    clean run's state, each retry a new delayed message (receive count 1), none failed."""
    from pflambda.errors import RetryableError

    engine = make_engine(max_attempts=2)
    store = engine.store
    real, throttles = store.record_chunk, {"left": 12}  # > 2 deliveries' own retries

    def throttled(*args: Any, **kw: Any) -> bool:
        if throttles["left"]:
            throttles["left"] -= 1
            raise RetryableError("ProvisionedThroughputExceededException (injected)")
        return real(*args, **kw)

    store.record_chunk = throttled  # type: ignore[method-assign]
    outcome = engine.start("tests.flows.batch:squares", {"items": [1, 2, 3]})
    queue = engine.queue
    assert isinstance(queue, MemoryQueue)
    worker, delays, chunk_deliveries = Worker(engine), [], 0
    for _ in range(50):
        batch = queue.receive(1)
        if not batch:
            if queue.approximate_size() == 0:
                break
            engine.clock.advance(1)  # type: ignore[attr-defined]
            delays.append(1)
            continue
        message = batch[0]
        assert message.receive_count == 1
        chunk_deliveries += parse(message.body)["kind"] == "fanout"
        response = worker(_sqs_event(message), None)
        assert response == {"batchItemFailures": []}
        queue.ack([message.receipt])
    assert throttles["left"] == 0
    assert chunk_deliveries == 3 > engine.max_attempts
    assert sum(delays) >= 2 + 4  # the backoff grew with each retry
    status, shared = final(engine, outcome)
    assert status == RunStatus.COMPLETED
    assert shared == in_process("tests.flows.batch:squares", {"items": [1, 2, 3]})
