"""Push notifications reach a real webhook on loopback at every state change.

They are queued by whoever changes the task and POSTed by the worker: ``deliver`` plays
Lambda's SQS trigger over the agent's memory queue.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from pflambda.a2a.agent import Agent
from pflambda.local.poller import sqs_event
from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, rpc


def deliver(agent: Agent) -> int:
    """Run the agent's worker over everything queued (pushes, continuations) until empty."""
    queue, handled = agent.engine.queue, 0
    assert queue is not None
    while messages := queue.receive(10):
        response = agent.worker(sqs_event(messages), None)
        assert response["batchItemFailures"] == []
        queue.ack([m.receipt for m in messages])
        handled += len(messages)
    return handled


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        Hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_state_changes_are_posted_with_token_and_authorization(hook: str) -> None:
    agent = make_agent("tests.flows.chat:greet", allow_private=True)
    push = {
        "url": hook,
        "token": "tok-1",
        "authentication": {"scheme": "Bearer", "credentials": "c2"},
    }
    params = {"message": msg_v1("q"), "configuration": {"taskPushNotificationConfig": push}}
    task = rpc(agent, "SendMessage", params, V1)["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert Hook.received == []  # queued, not sent by the API call
    reply = msg_v1("Ada", taskId=task["id"])
    rpc(agent, "SendMessage", {"message": reply}, V1)
    assert deliver(agent) == 4
    states = [body["task"]["status"]["state"] for _, body in Hook.received]
    assert states == [
        "TASK_STATE_WORKING",
        "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_WORKING",
        "TASK_STATE_COMPLETED",
    ]
    headers, last = Hook.received[-1]
    assert headers["x-a2a-notification-token"] == "tok-1"
    assert headers["authorization"] == "Bearer c2"
    assert last["task"]["artifacts"][0]["parts"][0]["text"].startswith("Hello, Ada")


def test_v03_pushes_the_bare_task(hook: str) -> None:
    agent = make_agent(allow_private=True)
    msg = {
        "kind": "message",
        "messageId": "m",
        "role": "user",
        "parts": [{"kind": "text", "text": "x"}],
    }
    params = {"message": msg, "configuration": {"pushNotificationConfig": {"url": hook}}}
    rpc(agent, "message/send", params)
    deliver(agent)
    assert Hook.received[-1][1]["kind"] == "task"
    assert Hook.received[-1][1]["status"]["state"] == "completed"


def test_no_push_without_a_config(hook: str) -> None:
    agent = make_agent(allow_private=True)
    rpc(agent, "SendMessage", {"message": msg_v1("x")}, V1)
    assert deliver(agent) == 0
    assert Hook.received == []


def test_return_immediately_pushes_every_status_change(hook: str) -> None:
    """SUBMITTED from the API call, then WORKING and COMPLETED from the worker that runs it."""
    agent = make_agent(allow_private=True)
    config = {"taskPushNotificationConfig": {"url": hook}, "returnImmediately": True}
    task = rpc(agent, "SendMessage", {"message": msg_v1("q"), "configuration": config}, V1)
    assert task["result"]["task"]["status"]["state"] == "TASK_STATE_SUBMITTED"
    deliver(agent)
    states = [body["task"]["status"]["state"] for _, body in Hook.received]
    assert states == ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_COMPLETED"]


def test_the_shared_worker_finds_every_declared_agent(hook: str) -> None:
    """handlers/worker.py lists no agent: it imports the package and finds them all."""
    from pflambda.a2a.agents import declare

    found = declare("handlers")
    assert {"research", "approval", "summarise"} <= set(found)
