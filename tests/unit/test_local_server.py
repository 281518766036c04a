"""The local API server and SQS poller (pflambda.local.server / poller), over loopback."""

from __future__ import annotations

import base64
import http.client
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from pflambda.aws.http import parse_event
from pflambda.clock import FakeClock
from pflambda.errors import ConfigError, InputRequired
from pflambda.http import HttpResponse
from pflambda.local.emulator import free_port
from pflambda.local.server import (
    LocalContext,
    LocalServer,
    SqsPoller,
    discover_agents,
    serve,
    sqs_event,
)
from pflambda.queues.memory import MemoryQueue

EVENTS = Path(__file__).resolve().parents[1] / "events"


class FakeAgent:
    """Echoes the request as parse_event sees it; ``.../stream`` answers with SSE."""

    def __init__(self, name: str = "echo") -> None:
        self.name = name
        self.first_read = threading.Event()
        self.produced: list[tuple[str, bool]] = []
        """(event, whether the client had read the first event when it was produced)."""

    def http(self, event: dict[str, Any], context: Any) -> HttpResponse:
        request = parse_event(event, context)
        if request.path.endswith("/boom"):
            raise RuntimeError("boom")
        if request.path.endswith("/stream"):
            return HttpResponse(200, {"Content-Type": "text/event-stream"}, self._events())
        doc = asdict(request)
        doc.update(
            body=base64.b64encode(request.body).decode(),
            context=context.get_remaining_time_in_millis(),
            event_is_base64=event["isBase64Encoded"],
        )
        return HttpResponse(200, {"Content-Type": "application/json"}, json.dumps(doc).encode())

    def worker_handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"batchItemFailures": []}

    def _events(self) -> Iterator[bytes]:
        for n in (1, 2, 3):
            if n > 1:
                self.first_read.wait(5)  # a buffering server would never let this happen
                time.sleep(0.02)
            self.produced.append((f"event {n}", self.first_read.is_set()))
            yield f"data: event {n}\n\n".encode()


@pytest.fixture
def agent() -> FakeAgent:
    return FakeAgent()


@pytest.fixture
def server(agent: FakeAgent) -> Iterator[LocalServer]:
    local = LocalServer({agent.name: agent}, port=free_port(), max_body_bytes=1000).start()
    yield local
    local.stop()


def request(
    server: LocalServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# -- HTTP ---------------------------------------------------------------------------------


def test_request_becomes_a_rest_event_parse_event_understands(server: LocalServer) -> None:
    body = json.dumps({"jsonrpc": "2.0", "method": "message/send"}).encode()
    status, headers, raw = request(
        server,
        "POST",
        "/agents/echo/?A2A-Version=0.3&x=1",
        body,
        {"Content-Type": "application/json", "X-Custom": "yes"},
    )
    assert status == 200
    assert headers["Content-Length"] == str(len(raw))
    seen = json.loads(raw)
    assert seen["method"] == "POST"
    assert seen["path"] == "/agents/echo/"
    assert seen["query"] == {"A2A-Version": "0.3", "x": "1"}
    assert seen["headers"]["x-custom"] == "yes"
    assert seen["headers"]["content-type"] == "application/json"
    assert base64.b64decode(seen["body"]) == body
    assert seen["base_url"] == f"http://127.0.0.1:{server.port}"
    assert seen["base_url"] + seen["path"] == server.agent_url("echo")
    assert seen["source_ip"] == "127.0.0.1"
    assert seen["principal"] is None
    assert 28_000 < seen["context"] <= 29_000  # API Gateway's 29 s, counting down


def test_binary_body_travels_base64(server: LocalServer) -> None:
    status, _, raw = request(server, "POST", "/agents/echo/x", b"\x00\xff\xfe")
    seen = json.loads(raw)
    assert status == 200
    assert seen["event_is_base64"] is True
    assert base64.b64decode(seen["body"]) == b"\x00\xff\xfe"
    assert seen["path"] == "/agents/echo/x"


def test_stream_reaches_the_client_as_it_is_produced(server: LocalServer, agent: FakeAgent) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", "/agents/echo/stream", body=b"{}")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.getheader("Content-Type") == "text/event-stream"
        assert response.readline() == b"data: event 1\n"
        assert agent.produced == [("event 1", False)]  # the rest is not made yet
        agent.first_read.set()
        rest = response.read()
    finally:
        conn.close()
    assert rest == b"\ndata: event 2\n\ndata: event 3\n\n"
    assert agent.produced == [("event 1", False), ("event 2", True), ("event 3", True)]


def test_index_lists_agents_with_their_cards(server: LocalServer) -> None:
    status, _, raw = request(server, "GET", "/")
    assert status == 200
    base = f"http://127.0.0.1:{server.port}"
    assert json.loads(raw) == {
        "agents": [
            {
                "name": "echo",
                "url": f"{base}/agents/echo/",
                "card": f"{base}/agents/echo/.well-known/agent-card.json",
            }
        ]
    }


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/agents/nobody/", "no agent named 'nobody'"),
        ("/elsewhere", "agents are at /agents/<name>/"),
    ],
)
def test_not_found_is_json_that_says_where_to_go(server: LocalServer, path: str, says: str) -> None:
    status, headers, raw = request(server, "GET", path)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert says in json.loads(raw)["error"]


def test_oversize_body_is_refused_before_it_is_read(server: LocalServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.putrequest("POST", "/agents/echo/")
        conn.putheader("Content-Length", str(50 * 1024 * 1024))
        conn.endheaders()  # and no body: the server must answer without waiting for it
        response = conn.getresponse()
        assert response.status == 413
        assert "limit 1000 bytes" in json.loads(response.read())["error"]
    finally:
        conn.close()


def test_agent_crash_is_a_json_500(server: LocalServer) -> None:
    status, _, raw = request(server, "GET", "/agents/echo/boom")
    assert status == 500
    assert "boom" not in raw.decode()


def test_local_context_counts_down() -> None:
    clock = FakeClock()
    context = LocalContext(29.0, "f", clock)
    assert context.get_remaining_time_in_millis() == 29_000
    clock.advance(28.5)
    assert context.get_remaining_time_in_millis() == 500
    clock.advance(5)
    assert context.get_remaining_time_in_millis() == 0
    assert context.function_name == "f"


# -- SQS ----------------------------------------------------------------------------------


class FakeWorker:
    """Fails the message with body "bad" on its first delivery; records every event."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.remaining: list[int] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        self.remaining.append(context.get_remaining_time_in_millis())
        failures = [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if r["body"] == "bad" and r["attributes"]["ApproximateReceiveCount"] == "1"
        ]
        return {"batchItemFailures": failures}


def test_sqs_event_has_the_shape_lambda_delivers() -> None:
    queue = MemoryQueue(FakeClock())
    queue.send(["hello"])
    record = sqs_event(queue.receive())["Records"][0]
    fixture = json.loads((EVENTS / "sqs_continue.json").read_text())["Records"][0]
    assert set(record) == set(fixture)
    assert set(record["attributes"]) == set(fixture["attributes"])
    assert record["body"] == "hello"
    assert record["eventSource"] == "aws:sqs"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


def test_failed_records_are_redelivered_and_the_rest_acked() -> None:
    clock = FakeClock()
    queue = MemoryQueue(clock)
    queue.send(["one", "bad", "two"])
    worker = FakeWorker()
    poller = SqsPoller(queue, worker, visibility_timeout=5, wait_seconds=0)
    assert poller.poll_once() == 3
    assert queue.approximate_size() == 1  # "one" and "two" acked
    assert poller.poll_once() == 0  # "bad" is hidden until its visibility timeout
    clock.advance(5)
    assert poller.poll_once() == 1
    redelivered = worker.events[-1]["Records"]
    assert [r["body"] for r in redelivered] == ["bad"]
    assert redelivered[0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert queue.approximate_size() == 0
    assert 899_000 < worker.remaining[0] <= 900_000  # the worker's 15 minutes


@pytest.mark.parametrize(
    "answer",
    [RuntimeError("worker crashed"), {"batchItemFailures": [{"itemIdentifier": "nope"}]}, "?"],
)
def test_a_crash_or_nonsense_redelivers_the_whole_batch(answer: Any) -> None:
    queue = MemoryQueue(FakeClock())
    queue.send(["a", "b"])

    def worker(event: dict[str, Any], context: Any) -> Any:
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert SqsPoller(queue, worker, wait_seconds=0).poll_once() == 2
    assert queue.approximate_size() == 2
    assert queue.in_flight() == 2


def test_poller_thread_survives_errors_and_stops() -> None:
    queue = MemoryQueue()
    queue.send(["one", "two"])
    calls: list[int] = []
    second = threading.Event()

    def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("first batch fails")
        second.set()
        return {"batchItemFailures": []}

    poller = SqsPoller(queue, worker, visibility_timeout=0, wait_seconds=0.05).start()
    try:
        assert second.wait(5)
    finally:
        poller.stop()  # returns once the batch in hand is acked
    assert calls[:2] == [2, 2]
    assert queue.approximate_size() == 0


@pytest.mark.parametrize(
    "raised", [InputRequired("a question"), GeneratorExit(), RuntimeError("boom")]
)
def test_poller_thread_survives_anything_the_worker_raises(raised: BaseException) -> None:
    """Lambda fails the batch whatever the handler raises; the local trigger must too,
    and go on polling (an InputRequired from a fanned-out item used to kill the thread)."""
    queue = MemoryQueue()
    queue.send(["one"])
    calls: list[str] = []
    done = threading.Event()

    def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["Records"][0]["body"])
        if len(calls) == 1:
            raise raised
        done.set()
        return {"batchItemFailures": []}

    poller = SqsPoller(queue, worker, visibility_timeout=0, wait_seconds=0.05).start()
    try:
        assert done.wait(5)
    finally:
        poller.stop()
    assert calls[:2] == ["one", "one"]  # redelivered, and the thread lived to deliver it
    assert queue.approximate_size() == 0


def test_serve_starts_and_stops_server_and_poller(agent: FakeAgent) -> None:
    queue = MemoryQueue()
    worker = FakeWorker()
    local = serve({"echo": agent}, worker, queue, port=free_port())
    try:
        queue.send(["hi"])
        deadline = time.monotonic() + 5
        while queue.approximate_size() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert queue.approximate_size() == 0
        assert request(local, "GET", "/")[0] == 200
    finally:
        local.stop()
    assert worker.events[0]["Records"][0]["body"] == "hi"


# -- discovery ------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project directory; packages made in it are forgotten afterwards."""
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


AGENT_MODULE = """
class A:
    def __init__(self, name): self.name = name
    def http(self, event, context): ...
    def worker_handler(self, event, context): ...
agent = A({name!r})
handler = agent.http
"""


def make_package(root: Path, package: str, modules: dict[str, str]) -> None:
    folder = root / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name, text in modules.items():
        (folder / f"{name}.py").write_text(text)


def test_discover_agents_by_name(project: Path) -> None:
    make_package(
        project,
        "handlers_ok",
        {
            "one": AGENT_MODULE.format(name="one"),
            "two": AGENT_MODULE.format(name="two"),
            "again": "from handlers_ok.one import agent\n",  # the same agent twice is fine
            "worker": "handler = lambda event, context: {}\n",
        },
    )
    agents = discover_agents("handlers_ok", str(project))
    assert sorted(agents) == ["one", "two"]
    assert agents["one"].name == "one"


def test_discover_agents_duplicate_names(project: Path) -> None:
    make_package(
        project,
        "handlers_dup",
        {"a": AGENT_MODULE.format(name="same"), "b": AGENT_MODULE.format(name="same")},
    )
    with pytest.raises(ConfigError, match="two agents are named 'same'"):
        discover_agents("handlers_dup", str(project))


def test_discover_agents_reports_import_errors(project: Path) -> None:
    make_package(project, "handlers_bad", {"broken": "import no_such_module_here\n"})
    with pytest.raises(ConfigError, match=r"cannot import handlers_bad\.broken: ModuleNotFound"):
        discover_agents("handlers_bad", str(project))
    with pytest.raises(ConfigError, match="cannot import the 'no_handlers_here' package"):
        discover_agents("no_handlers_here", str(project))


def test_banner_says_where_the_agents_are_and_how_to_ask(agent: FakeAgent) -> None:
    from pflambda.local.session import LocalSession

    local = LocalServer({"echo": agent}, port=free_port())
    try:
        banner = LocalSession(local, {"echo": agent}, None, "http://127.0.0.1:4566").banner()
    finally:
        local.stop()
    url = f"http://127.0.0.1:{local.port}/agents/echo/"
    assert f"echo         {url}" in banner
    assert f"card {url}.well-known/agent-card.json" in banner
    assert f'pflambda send {url} "your question"' in banner
    assert f"curl -s {url} -H 'Content-Type: application/json' -d '{{\"jsonrpc\"" in banner
    assert "Runs live at http://127.0.0.1:4566" in banner
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:4566 PFLAMBDA_STORE=dynamodb" in banner
    assert ".pflambda/" in banner


def test_banner_says_runs_in_the_embedded_emulator_end_with_it(agent: FakeAgent) -> None:
    from types import SimpleNamespace

    from pflambda.local.session import LocalSession

    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:5999", "PFLAMBDA_STORE": "dynamodb"}
    emulator = SimpleNamespace(env=lambda: env, stop=lambda: None)
    local = LocalServer({"echo": agent}, port=free_port())
    try:
        session = LocalSession(local, {"echo": agent}, emulator, "http://127.0.0.1:5999")  # type: ignore[arg-type]
        banner = session.banner()
    finally:
        local.stop()
    assert "Runs live in the embedded emulator at http://127.0.0.1:5999, in memory" in banner
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:5999 PFLAMBDA_STORE=dynamodb" in banner


# -- hostile browsers and the origin's own card ------------------------------------------


def test_cross_site_posts_are_refused(server: LocalServer, agent: FakeAgent) -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}}'
    plain = {"Content-Type": "text/plain"}
    for headers in (
        {**plain, "Origin": "https://evil.example"},
        {**plain, "Origin": "null"},
        {**plain, "Sec-Fetch-Site": "cross-site"},
        {"Content-Type": "application/json", "Origin": "http://localhost:1234"},
    ):
        status, _, raw = request(server, "POST", "/agents/echo/", body, headers)
        assert status == 403, headers
        assert b"cross-site" in raw
    same = {"Origin": f"http://127.0.0.1:{server.port}", "Content-Type": "application/json"}
    assert request(server, "POST", "/agents/echo/", body, same)[0] == 200
    assert (
        request(server, "POST", "/agents/echo/", body, {"Content-Type": "application/json"})[0]
        == 200
    )
    status, _, _ = request(
        server, "GET", "/agents/echo/x", None, {"Origin": "https://evil.example"}
    )
    assert status == 200  # reads are the browser's to protect (no CORS headers are sent)


def test_the_only_agents_card_is_at_the_origin_too(server: LocalServer) -> None:
    for path, headers, expected in (
        ("/.well-known/agent-card.json", {}, "/agents/echo/.well-known/agent.json"),
        ("/.well-known/agent.json", {}, "/agents/echo/.well-known/agent.json"),
        (
            "/.well-known/agent-card.json",
            {"A2A-Version": "1.0"},
            "/agents/echo/.well-known/agent-card.json",
        ),
    ):
        status, _, raw = request(server, "GET", path, None, headers)
        assert status == 200
        assert json.loads(raw)["path"] == expected


def test_with_several_agents_the_origin_has_no_card() -> None:
    local = LocalServer({"a": FakeAgent("a"), "b": FakeAgent("b")}, port=free_port()).start()
    try:
        status, _, raw = request(local, "GET", "/.well-known/agent-card.json")
        assert status == 404
        assert len(json.loads(raw)["cards"]) == 2
    finally:
        local.stop()


def test_the_console_is_mounted_on_the_same_port(agent: FakeAgent) -> None:
    from pflambda.blobs.memory import MemoryBlobStore
    from pflambda.console.app import EVERYONE, Console
    from pflambda.engine.runner import Engine
    from pflambda.local.session import LocalSession
    from pflambda.stores.memory import MemoryStore

    console = Console(Engine(MemoryStore(), MemoryBlobStore()), operators={EVERYONE})
    local = LocalServer({"echo": agent}, port=free_port(), console=console).start()
    try:
        banner = LocalSession(local, {"echo": agent}, None, None).banner()
        conn = http.client.HTTPConnection("127.0.0.1", local.port, timeout=10)
        conn.request("GET", "/console/")
        page = conn.getresponse()
        assert page.status == 200
        assert b'<table id="runs"' in page.read()
        conn.request("GET", "/console/api/runs")
        assert json.loads(conn.getresponse().read())["runs"] == []
        conn.request("GET", "/")
        assert json.loads(conn.getresponse().read())["console"] == local.console_url()
        conn.close()
    finally:
        local.stop()
    assert f"Run console: http://127.0.0.1:{local.port}/console/" in banner
