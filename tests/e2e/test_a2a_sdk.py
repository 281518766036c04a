"""The official a2a-sdk client against ``pflambda local`` on loopback.

One ``pflambda emulator`` holds the runs; ``pflambda local --endpoint-url`` serves the
example agents from handlers/. The client completes tasks over A2A 1.0 and 0.3
(blocking and streaming), gets and cancels them, holds a multi-turn input-required
conversation -- and finishes one after the local server was killed mid-conversation.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory, create_client
from a2a.helpers import get_stream_response_text, new_text_message
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    CancelTaskRequest,
    GetTaskRequest,
    Role,
    SendMessageRequest,
    TaskState,
)

from pflambda.local.emulator import free_port

ROOT = Path(__file__).resolve().parents[2]
PFLAMBDA = [sys.executable, "-m", "pflambda"]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("AWS_ENDPOINT_URL", "PFLAMBDA_STORE", "PFLAMBDA_QUEUE_URL"):
        env.pop(key, None)
    return env


def _wait_for(url: str, proc: subprocess.Popen[Any], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [*PFLAMBDA, "emulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
        cwd=ROOT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(endpoint, timeout=2).close()
                break
            except OSError as exc:
                if getattr(exc, "code", None):  # an HTTP error means it is up
                    break
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


class Local:
    """A ``pflambda local`` process that can be killed and started again."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint, self.port = endpoint, free_port()
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*PFLAMBDA, "local", "--port", str(self.port), "--endpoint-url", self.endpoint],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(),
            cwd=ROOT,
        )
        _wait_for(self.base + "/", self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def local(emulator: str) -> Iterator[Local]:
    server = Local(emulator)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _client(url: str, *, streaming: bool, v03: bool = False) -> Any:
    http = httpx.AsyncClient(timeout=60)
    config = ClientConfig(streaming=streaming, httpx_client=http)
    if not v03:
        return await create_client(url, config), http
    card = AgentCard(
        name="v03",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3")
        ],
        capabilities=AgentCapabilities(streaming=streaming),
    )
    return ClientFactory(config).create(card), http


async def _send(client: Any, text: str, **ids: Any) -> list[Any]:
    message = new_text_message(text, role=Role.ROLE_USER, **ids)
    return [event async for event in client.send_message(SendMessageRequest(message=message))]


def _final_task(events: list[Any]) -> Any:
    tasks = [e.task for e in events if e.HasField("task")]
    assert tasks, events
    return tasks[-1]


def test_card_is_what_the_sdk_expects(local: Local) -> None:
    url = f"{local.base}/agents/research/.well-known/agent-card.json"
    with urllib.request.urlopen(url, timeout=5) as resp:
        card = json.load(resp)
    interfaces = {(i["protocolBinding"], i["protocolVersion"]) for i in card["supportedInterfaces"]}
    assert interfaces == {("JSONRPC", "1.0"), ("HTTP+JSON", "1.0"), ("JSONRPC", "0.3")}
    assert {i["url"] for i in card["supportedInterfaces"]} == {f"{local.base}/agents/research/"}
    assert card["capabilities"]["streaming"] is True
    legacy = url.replace("agent-card.json", "agent.json")
    with urllib.request.urlopen(legacy, timeout=5) as resp:
        assert json.load(resp)["url"] == f"{local.base}/agents/research/"


def test_v1_blocking_send_completes_a_task(local: Local) -> None:
    async def go() -> Any:
        client, http = await _client(f"{local.base}/agents/research/", streaming=False)
        try:
            task = _final_task(await _send(client, "What is PocketFlow?"))
            fetched = await client.get_task(GetTaskRequest(id=task.id))
            return task, fetched
        finally:
            await client.close()
            await http.aclose()

    task, fetched = run(go())
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert task.artifacts
    assert task.artifacts[0].parts[0].text
    assert fetched.id == task.id
    assert fetched.status.state == TaskState.TASK_STATE_COMPLETED


def test_v1_streaming_send(local: Local) -> None:
    async def go() -> list[Any]:
        client, http = await _client(f"{local.base}/agents/summarise/", streaming=True)
        try:
            return await _send(client, "First paragraph about tides.\n\nSecond about moons.")
        finally:
            await client.close()
            await http.aclose()

    events = run(go())
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds[0] == "task"
    assert "artifact_update" in kinds
    last = events[-1]
    assert last.WhichOneof("payload") == "status_update"
    assert last.status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert any(get_stream_response_text(e) for e in events if e.HasField("artifact_update"))


def test_v1_multi_turn_input_required_and_cancel(local: Local) -> None:
    async def go() -> tuple[Any, Any, Any]:
        client, http = await _client(f"{local.base}/agents/approval/", streaming=False)
        try:
            asked = _final_task(await _send(client, "Plan a team offsite"))
            done = _final_task(
                await _send(client, "yes", task_id=asked.id, context_id=asked.context_id)
            )
            other = _final_task(await _send(client, "Plan a launch party"))
            cancelled = await client.cancel_task(CancelTaskRequest(id=other.id))
            return asked, done, cancelled
        finally:
            await client.close()
            await http.aclose()

    asked, done, cancelled = run(go())
    assert asked.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    assert "yes" in asked.status.message.parts[0].text.lower()
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    assert done.artifacts[0].parts[0].text.startswith("Plan approved")
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED


def test_v03_transport_blocking_and_streaming(local: Local) -> None:
    async def go(streaming: bool) -> list[Any]:
        client, http = await _client(
            f"{local.base}/agents/research/", streaming=streaming, v03=True
        )
        try:
            return await _send(client, "What is A2A?")
        finally:
            await client.close()
            await http.aclose()

    blocking = run(go(False))
    assert _final_task(blocking).status.state == TaskState.TASK_STATE_COMPLETED
    streamed = run(go(True))
    assert streamed[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


def test_raw_v01_tasks_send_like_the_pocketflow_cookbook(local: Local) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": "9f1c",
        "method": "tasks/send",
        "params": {
            "id": "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
            "sessionId": "0123456789abcdef0123456789abcdef",
            "message": {"role": "user", "parts": [{"type": "text", "text": "What is A2A?"}]},
            "acceptedOutputModes": ["text", "text/plain"],
        },
    }
    request = urllib.request.Request(
        f"{local.base}/agents/research/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        result = json.load(resp)["result"]
    assert result["id"] == body["params"]["id"]
    assert result["status"]["state"] == "completed"
    assert result["artifacts"][0]["parts"][0]["type"] == "text"


def test_conversation_survives_a_killed_local_server(emulator: str) -> None:
    server = Local(emulator)
    server.start()
    try:

        async def ask() -> Any:
            client, http = await _client(f"{server.base}/agents/approval/", streaming=False)
            try:
                return _final_task(await _send(client, "Plan the migration"))
            finally:
                await client.close()
                await http.aclose()

        asked = run(ask())
        assert asked.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        server.kill()  # SIGKILL: nothing in memory survives
        server.start()

        async def answer() -> Any:
            client, http = await _client(f"{server.base}/agents/approval/", streaming=False)
            try:
                return _final_task(
                    await _send(client, "yes", task_id=asked.id, context_id=asked.context_id)
                )
            finally:
                await client.close()
                await http.aclose()

        done = run(answer())
        assert done.id == asked.id
        assert done.status.state == TaskState.TASK_STATE_COMPLETED
    finally:
        server.stop()


def test_v1_over_http_json_with_the_sdk(local: Local) -> None:
    async def go() -> Any:
        http = httpx.AsyncClient(timeout=60)
        config = ClientConfig(
            streaming=False, httpx_client=http, supported_protocol_bindings=["HTTP+JSON"]
        )
        client = await create_client(f"{local.base}/agents/research/", config)
        try:
            task = _final_task(await _send(client, "What is PocketFlow?"))
            fetched = await client.get_task(GetTaskRequest(id=task.id))
            return task, fetched
        finally:
            await client.close()
            await http.aclose()

    task, fetched = run(go())
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert task.artifacts[0].parts[0].text
    assert fetched.id == task.id


def test_v1_stream_delivers_artifact_chunks_as_they_are_committed(local: Local) -> None:
    """The research agent streams its notes (one chunk per search, the last one when it
    answers): the SDK sees them in order with their append/lastChunk flags, and GetTask
    shows the notes accumulated, once, beside the final answer."""

    async def go() -> tuple[list[Any], Any]:
        client, http = await _client(f"{local.base}/agents/research/", streaming=True)
        try:
            events = await _send(client, "How do tides work?")
            task_id = events[0].task.id
            return events, await client.get_task(GetTaskRequest(id=task_id))
        finally:
            await client.close()
            await http.aclose()

    events, fetched = run(go())
    notes = [
        e.artifact_update
        for e in events
        if e.HasField("artifact_update")
        and e.artifact_update.artifact.artifact_id == "research-notes"
    ]
    assert notes
    assert [u.append for u in notes] == [False] + [True] * (len(notes) - 1)
    assert [u.last_chunk for u in notes] == [False] * (len(notes) - 1) + [True]
    assert notes[-1].artifact.parts[0].text.startswith("Answered after")
    assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
    ids = [a.artifact_id for a in fetched.artifacts]
    assert ids.count("research-notes") == 1
    assert len(ids) == 2  # the notes, then the answer
    streamed = [p.text for u in notes for p in u.artifact.parts]
    assert [p.text for p in fetched.artifacts[0].parts] == streamed
