"""A stream follows a run that its own request could not finish (the deadline came, or a
retryable store failure) until a worker finishes it: it must not end with ``working``.

This was the flake of tests/e2e/test_a2a_sdk.py::test_v1_streaming_send under load: the
moto-backed store answered a write with a retryable error, the engine stopped with
``stopped="retry"`` leaving the run to its lease, and the stream closed at once with
``[task, status_update(working)]``. The engine now gives such a run to the queue
(``driver._retry_later``; tests/unit/test_retry_hand_off.py covers blocking sends), and a
stream follows it, as it follows one handed off at the deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pflambda.a2a.agent import Agent
from pflambda.errors import RetryableError
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.memory import MemoryStore
from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, request, sse
from tests.unit.test_fanout import deliver


@contextmanager
def workers(agent: Agent) -> Iterator[None]:
    """A worker delivering the agent's queue (as the local poller does) while the test runs."""
    engine, stop = agent.engine, threading.Event()
    assert isinstance(engine.queue, MemoryQueue)
    queue = engine.queue

    def loop() -> None:
        while not stop.is_set():
            for message in queue.receive(10):
                deliver(engine, message)
                queue.ack([message.receipt])
            stop.wait(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def stream(agent: Agent, text: str) -> list[dict[str, Any]]:
    body = {"jsonrpc": "2.0", "id": "1", "method": "SendStreamingMessage"}
    req = request({**body, "params": {"message": msg_v1(text)}}, V1, principal="alice")
    with workers(agent):
        return [event["result"] for event in sse(agent.dispatcher.handle(req))]


def assert_finished(events: list[dict[str, Any]]) -> None:
    assert "task" in events[0]
    artifacts = [e["artifactUpdate"] for e in events if "artifactUpdate" in e]
    assert artifacts, events
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_a_stream_follows_a_run_handed_off_at_the_deadline() -> None:
    agent = make_agent()
    agent.api_margin_ms = 60_000  # the request's deadline is "near" before the first step
    assert_finished(stream(agent, "hello"))


class FlakyStore(MemoryStore):
    """The first checkpoint commit fails as a throttled DynamoDB write would."""

    failed = False

    def commit_step(self, *args: Any, **kw: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise RetryableError("DynamoDB commit step: ThrottlingException")
        return super().commit_step(*args, **kw)


def test_a_stream_follows_a_run_a_retryable_failure_stopped() -> None:
    agent = make_agent()
    store = FlakyStore()
    agent.engine.store = store
    events = stream(agent, "hello")
    assert store.failed
    assert_finished(events)
