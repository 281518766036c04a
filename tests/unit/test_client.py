"""``pflambda send`` (pflambda.local.client) against a fake A2A JSON-RPC server on loopback."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pflambda.cli import main
from pflambda.local.client import send
from pflambda.local.emulator import free_port

Answer = Callable[[dict[str, Any]], list[dict[str, Any]] | dict[str, Any]]
"""What the fake agent does with a request: SSE results (a list) or one JSON body."""


class FakeAgent(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Answer, streaming: bool = True) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.answer, self.streaming = answer, streaming
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/agents/fake/"


class _Handler(BaseHTTPRequestHandler):
    server: FakeAgent

    def do_GET(self) -> None:
        assert self.path == "/agents/fake/.well-known/agent-card.json"
        card = {"name": "fake", "capabilities": {"streaming": self.server.streaming}}
        self._reply("application/json", json.dumps(card).encode())

    def do_POST(self) -> None:
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((dict(self.headers), doc))
        answer = self.server.answer(doc)
        if isinstance(answer, dict):
            self._reply("application/json", json.dumps({"jsonrpc": "2.0", **answer}).encode())
            return
        docs = [
            r if "error" in r else {"jsonrpc": "2.0", "id": doc["id"], "result": r} for r in answer
        ]
        frames = b": ping\n\n" + b"".join(b"data: %s\n\n" % json.dumps(d).encode() for d in docs)
        self._reply("text/event-stream", frames, length=False)

    def _reply(self, content_type: str, body: bytes, length: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()  # HTTP/1.0: without a length, the body ends when we close
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def start() -> Iterator[Callable[..., FakeAgent]]:
    servers: list[tuple[FakeAgent, threading.Thread]] = []

    def _start(answer: Answer, streaming: bool = True) -> FakeAgent:
        server = FakeAgent(answer, streaming)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append((server, thread))
        return server

    yield _start
    for server, thread in servers:
        server.shutdown()
        thread.join()
        server.server_close()


def task(state: str, text: str = "", **extra: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"state": state}
    if text:
        status["message"] = {
            "kind": "message",
            "messageId": "s1",
            "role": "agent",
            "parts": [{"kind": "text", "text": text}],
        }
    return {"kind": "task", "id": "t1", "contextId": "c1", "status": status, **extra}


def update(state: str, text: str = "", final: bool = False) -> dict[str, Any]:
    status = task(state, text)["status"]
    return {
        "kind": "status-update",
        "taskId": "t1",
        "contextId": "c1",
        "status": status,
        "final": final,
    }


ANSWER = {"artifactId": "t1-answer", "name": "answer", "parts": [{"kind": "text", "text": "42"}]}


def completed(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        task("submitted"),
        update("working"),
        update("working", "Searching the web"),
        {"kind": "artifact-update", "taskId": "t1", "contextId": "c1", "artifact": ANSWER},
        update("completed", "42", final=True),
    ]


def test_completed_stream(
    start: Callable[..., FakeAgent], capsys: pytest.CaptureFixture[str]
) -> None:
    agent = start(completed)
    assert main(["send", agent.url, "What is the answer?", "--token", "s3cret"]) == 0
    out, err = capsys.readouterr()
    assert out == "42\n"
    progress = [
        "task t1",
        "  submitted",
        "  working",
        "  working: Searching the web",
        "  completed",
    ]
    assert err.splitlines() == progress
    headers, doc = agent.requests[0]
    assert doc["method"] == "message/stream"
    message = doc["params"]["message"]
    assert uuid.UUID(message.pop("messageId"))
    assert message == {
        "kind": "message",
        "role": "user",
        "parts": [{"kind": "text", "text": "What is the answer?"}],
    }
    assert headers["Accept"] == "text/event-stream"
    assert headers["Authorization"] == "Bearer s3cret"


def test_input_required_prints_the_question_and_how_to_reply(
    start: Callable[..., FakeAgent],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PFLAMBDA_TOKEN", "from-env")
    agent = start(lambda doc: [task("working"), update("input-required", "Which city?", True)])
    code = main(["send", agent.url, "Book a table", "--task-id", "t1", "--context-id", "c1"])
    assert code == 3
    out, err = capsys.readouterr()
    assert out == "Which city?\n"
    assert err.splitlines()[-1] == (
        f'reply with: pflambda send {agent.url} "your answer" --task-id t1'
    )
    headers, doc = agent.requests[0]
    assert doc["params"]["message"]["taskId"] == "t1"
    assert doc["params"]["message"]["contextId"] == "c1"
    assert headers["Authorization"] == "Bearer from-env"


def test_json_rpc_error_is_one_line(
    start: Callable[..., FakeAgent], capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"id": "x", "error": {"code": -32001, "message": "task t9 not found"}}
    agent = start(lambda doc: error)
    assert main(["send", agent.url, "hello", "--task-id", "t9"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", "error -32001: task t9 not found\n")


def test_error_inside_the_stream(
    start: Callable[..., FakeAgent], capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"jsonrpc": "2.0", "id": "1", "error": {"code": -32603, "message": "internal error"}}
    agent = start(lambda doc: [task("working"), error])
    assert main(["send", agent.url, "hi"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "error -32603: internal error"


def test_a_stream_that_ends_unsettled_with_no_time_to_poll(
    start: Callable[..., FakeAgent],
) -> None:
    agent = start(lambda doc: [task("working")])
    err = io.StringIO()
    assert send(agent.url, "hi", out=io.StringIO(), err=err, max_wait=0) == 1
    assert err.getvalue().splitlines()[-1] == "task t1 working"


def test_no_stream_sends_message_send(
    start: Callable[..., FakeAgent], capsys: pytest.CaptureFixture[str]
) -> None:
    agent = start(lambda doc: {"id": doc["id"], "result": task("completed", artifacts=[ANSWER])})
    assert main(["send", agent.url, "hi", "--no-stream"]) == 0
    assert capsys.readouterr().out == "42\n"
    _, doc = agent.requests[0]
    assert doc["method"] == "message/send"
    assert doc["params"]["configuration"]["blocking"] is True


def test_an_agent_that_does_not_stream_gets_message_send(
    start: Callable[..., FakeAgent], capsys: pytest.CaptureFixture[str]
) -> None:
    agent = start(lambda doc: {"id": doc["id"], "result": task("failed", "no luck")}, False)
    assert main(["send", agent.url, "hi"]) == 1
    assert agent.requests[0][1]["method"] == "message/send"
    assert "task t1 failed: no luck" in capsys.readouterr().err


def test_unsettled_answer_is_polled_with_tasks_get(start: Callable[..., FakeAgent]) -> None:
    def answer(doc: dict[str, Any]) -> Any:
        if doc["method"] == "message/stream":
            return [task("working")]  # e.g. the API's deadline came first
        return {"id": doc["id"], "result": task("completed", artifacts=[ANSWER])}

    agent = start(answer)
    out = io.StringIO()
    assert send(agent.url, "hi", out=out, err=io.StringIO(), poll_seconds=0.01) == 0
    assert out.getvalue() == "42\n"
    assert agent.requests[1][1]["method"] == "tasks/get"
    assert agent.requests[1][1]["params"] == {"id": "t1"}


def test_usage_and_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "ftp://agent", "hi"]) == 2
    assert main(["send", f"http://127.0.0.1:{free_port()}/agents/x/", "hi"]) == 1
    err = capsys.readouterr().err
    assert "usage: pflambda send URL TEXT" in err
    assert "error connection: cannot reach" in err
