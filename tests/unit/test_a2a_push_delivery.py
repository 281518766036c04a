"""Push notifications reach a real webhook on loopback at every state change."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, rpc


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
    reply = msg_v1("Ada", taskId=task["id"])
    rpc(agent, "SendMessage", {"message": reply}, V1)
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
    assert Hook.received[-1][1]["kind"] == "task"
    assert Hook.received[-1][1]["status"]["state"] == "completed"


def test_no_push_without_a_config(hook: str) -> None:
    agent = make_agent(allow_private=True)
    rpc(agent, "SendMessage", {"message": msg_v1("x")}, V1)
    assert Hook.received == []
