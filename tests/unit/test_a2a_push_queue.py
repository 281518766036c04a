"""Pushes go through the work queue: a webhook that never answers delays no API call, the
worker retries it with growing delays, and a push that keeps failing ends in the DLQ."""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from pflambda.a2a.agent import Agent
from pflambda.a2a.notify import PushDelivery, PushUndelivered
from pflambda.a2a.push import PushSender
from pflambda.aws.config import Settings
from pflambda.aws.worker import Worker
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine.runner import Engine
from pflambda.local.poller import sqs_event
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.memory import MemoryStore
from tests.unit.test_a2a_dispatcher import V1, msg_v1, rpc


class Silent:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def kit() -> Iterator[tuple[Agent, MemoryQueue, MemoryQueue, FakeClock]]:
    clock = FakeClock()
    dlq = MemoryQueue(clock)
    queue = MemoryQueue(clock, max_receives=6, dead_letter=dlq)
    engine = Engine(MemoryStore(), MemoryBlobStore(), queue, clock=clock)
    settings = Settings(backend="memory", allow_private_push=True)
    agent = Agent(name="push-agent", flow="tests.flows.chat:echo", engine=engine, settings=settings)
    yield agent, queue, dlq, clock


def quick(private: bool) -> PushSender:
    return PushSender(allow_private=private, max_attempts=1, timeout=0.2)


def work(agent: Agent, queue: MemoryQueue, delivery: PushDelivery) -> list[dict[str, Any]]:
    """One worker invocation over what is visible; the bodies it was given."""
    messages = queue.receive(10)
    if not messages:
        return []
    worker = Worker(agent.engine, kinds={"push": delivery})
    try:
        response = worker(sqs_event(messages), None)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    except BatchProcessingError:  # every record failed: Lambda fails the whole batch
        failed = {m.message_id for m in messages}
    queue.ack([m.receipt for m in messages if m.message_id not in failed])
    return [json.loads(m.body) for m in messages]


def test_an_unresponsive_webhook_delays_no_api_call_and_the_worker_retries_it(
    kit: tuple[Agent, MemoryQueue, MemoryQueue, FakeClock], silent: Silent
) -> None:
    agent, queue, dlq, clock = kit
    push = {"url": silent.url, "token": "secret-token"}
    params = {"message": msg_v1("q"), "configuration": {"taskPushNotificationConfig": push}}
    task = rpc(agent, "SendMessage", params, V1)["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert silent.accepted == []  # the API call never touched the webhook
    queued = [json.loads(m.body) for m in queue.receive(10)]
    assert [m["kind"] for m in queued] == ["push", "push"]  # working, then completed
    assert all("secret-token" not in json.dumps(m) for m in queued)  # secrets stay in the task
    assert [m["payload"]["task"]["status"]["state"] for m in queued] == [
        "TASK_STATE_WORKING",
        "TASK_STATE_COMPLETED",
    ]
    clock.advance(30)  # the receive above hid them; now they are back

    delivery = PushDelivery(agent_lookup(agent), attempts=3, sender=quick, rng=random.Random(1))
    first = work(agent, queue, delivery)
    assert [m["attempt"] for m in first] == [1, 1]
    assert len(silent.accepted) == 2  # the worker POSTed (and timed out)
    assert queue.receive(10) == []  # re-queued with a delay, not visible yet
    clock.advance(2)
    assert [m["attempt"] for m in work(agent, queue, delivery)] == [2, 2]
    clock.advance(4)
    assert [m["attempt"] for m in work(agent, queue, delivery)] == [3, 3]
    # out of attempts: reported failed, SQS redelivers it until its DLQ takes it
    for _ in range(10):
        clock.advance(30)
        work(agent, queue, delivery)
    assert queue.approximate_size() == 0
    dead = [json.loads(m.body) for m in dlq.receive(10)]
    assert [(m["kind"], m["attempt"]) for m in dead] == [("push", 3), ("push", 3)]


def agent_lookup(agent: Agent) -> Any:
    return lambda name: agent if name == agent.name else None


def test_the_last_attempt_raises_for_the_worker_to_report(
    kit: tuple[Agent, MemoryQueue, MemoryQueue, FakeClock], silent: Silent
) -> None:
    agent, queue, _, _ = kit
    params = {
        "message": msg_v1("q"),
        "configuration": {"taskPushNotificationConfig": {"url": silent.url}},
    }
    rpc(agent, "SendMessage", params, V1)
    message = json.loads(queue.receive(1)[0].body)
    delivery = PushDelivery(agent_lookup(agent), attempts=1, sender=quick)
    with pytest.raises(PushUndelivered, match="failed 1 times: timed out"):
        delivery(agent.engine, message)


def test_a_deleted_config_or_a_refused_push_is_dropped(
    kit: tuple[Agent, MemoryQueue, MemoryQueue, FakeClock], silent: Silent
) -> None:
    agent, queue, _, _ = kit
    push = {"url": silent.url, "id": "c1"}
    params = {"message": msg_v1("q"), "configuration": {"taskPushNotificationConfig": push}}
    task = rpc(agent, "SendMessage", params, V1)["result"]["task"]
    rpc(agent, "DeleteTaskPushNotificationConfig", {"taskId": task["id"], "id": "c1"}, V1)
    message = json.loads(queue.receive(1)[0].body)
    PushDelivery(agent_lookup(agent), sender=quick)(agent.engine, message)
    assert silent.accepted == []  # the config is gone: nothing sent, nothing re-queued
    assert queue.approximate_size() == 2  # the two pushes queued at first; nothing re-queued


def test_a_large_payload_travels_by_reference(
    kit: tuple[Agent, MemoryQueue, MemoryQueue, FakeClock],
) -> None:
    agent, queue, _, _ = kit
    received: list[Any] = []

    class Capture(PushSender):
        def send(self, target: Any, payload: Any) -> Any:
            received.append(payload)
            return super().send(target, payload)

    params = {
        "message": msg_v1("q" * 300_000),
        "configuration": {"taskPushNotificationConfig": {"url": "http://127.0.0.1:9/x"}},
    }
    rpc(agent, "SendMessage", params, V1)
    message = json.loads(queue.receive(1)[0].body)
    assert set(message["payload"]) == {"ref"}
    delivery = PushDelivery(
        agent_lookup(agent), sender=lambda p: Capture(allow_private=p, max_attempts=1)
    )
    delivery(agent.engine, message)
    assert received[0]["task"]["history"][0]["parts"][0]["text"] == "q" * 300_000
