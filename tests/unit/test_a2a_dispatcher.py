"""The A2A JSON-RPC dispatcher, at the HTTP-request level, on the in-memory ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pflambda.a2a.agent import Agent
from pflambda.a2a.auth import BearerAuth
from pflambda.aws.config import Settings
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import SystemClock
from pflambda.engine.runner import Engine
from pflambda.http import HttpRequest, HttpResponse
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.memory import MemoryStore

V1 = {"a2a-version": "1.0"}


def make_agent(flow: str = "tests.flows.chat:echo", **kw: Any) -> Agent:
    engine = Engine(MemoryStore(), MemoryBlobStore(), MemoryQueue(), clock=SystemClock())
    settings = Settings(backend="memory", allow_private_push=kw.pop("allow_private", False))
    agent = Agent(name="test-agent", flow=flow, engine=engine, settings=settings, **kw)
    agent.ping_seconds = 0.5
    return agent


def request(
    body: Any,
    headers: dict[str, str] | None = None,
    principal: str | None = None,
    method: str = "POST",
    path: str = "/agents/test-agent/",
) -> HttpRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpRequest(
        method=method,
        path=path,
        headers={"content-type": "application/json", **(headers or {})},
        query={},
        body=raw,
        principal=principal,
        claims={},
        base_url="https://api.example.com/prod",
        source_ip="203.0.113.9",
    )


def rpc(
    agent: Agent, method: str, params: Any, headers: dict[str, str] | None = None, **kw: Any
) -> dict[str, Any]:
    resp = agent.dispatcher.handle(
        request({"jsonrpc": "2.0", "id": "1", "method": method, "params": params}, headers, **kw)
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert isinstance(resp.body, bytes)
    return json.loads(resp.body)  # type: ignore[no-any-return]


def sse(resp: HttpResponse) -> list[dict[str, Any]]:
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert not isinstance(resp.body, bytes)
    text = b"".join(resp.body).decode()
    frames = [f for f in text.split("\n\n") if f.startswith("data: ")]
    return [json.loads(f[len("data: ") :]) for f in frames]


def msg_v1(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "messageId": "m-" + text[:8].replace(" ", "-"),
        "role": "ROLE_USER",
        "parts": [{"text": text}],
        **extra,
    }


def msg_v03(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "message",
        "messageId": "m1",
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        **extra,
    }


@pytest.fixture
def agent() -> Iterator[Agent]:
    yield make_agent()


# -- the card ----------------------------------------------------------------------


# The cards: tests/unit/test_a2a_card.py


# -- sending -----------------------------------------------------------------------


def test_v1_send_message_blocks_until_completed(agent: Agent) -> None:
    out = rpc(agent, "SendMessage", {"message": msg_v1("hi"), "configuration": {}}, V1)
    task = out["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["status"]["timestamp"].endswith("Z")
    assert task["artifacts"][0]["parts"] == [{"text": "echo: hi"}]
    assert task["history"][0]["role"] == "ROLE_USER"
    assert "kind" not in task


def test_v1_method_without_version_header_is_refused(agent: Agent) -> None:
    out = rpc(agent, "SendMessage", {"message": msg_v1("hi")})
    assert out["error"]["code"] == -32009
    assert agent.engine.store.list_runs().runs == []


def test_unsupported_major_version(agent: Agent) -> None:
    out = rpc(agent, "message/send", {"message": msg_v03("hi")}, {"a2a-version": "2.0"})
    assert out["error"]["code"] == -32009


def test_v03_message_send(agent: Agent) -> None:
    task = rpc(agent, "message/send", {"message": msg_v03("yo")})["result"]
    assert task["kind"] == "task"
    assert task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"] == [{"kind": "text", "text": "echo: yo"}]
    again = rpc(agent, "tasks/get", {"id": task["id"], "historyLength": 0})["result"]
    assert again["status"] == task["status"]
    assert "history" not in again


def test_v01_tasks_send_as_pocketflow_cookbook_sends_it(agent: Agent) -> None:
    params = {
        "id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "sessionId": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "message": {"role": "user", "parts": [{"type": "text", "text": "What is A2A?"}]},
        "acceptedOutputModes": ["text", "text/plain"],
    }
    task = rpc(agent, "tasks/send", params)["result"]
    assert task["id"] == params["id"]
    assert task["sessionId"] == params["sessionId"]
    assert task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"][0] == {
        "kind": "text",
        "type": "text",
        "text": "echo: What is A2A?",
    }
    got = rpc(agent, "tasks/get", {"id": params["id"]})["result"]
    assert got["sessionId"] == params["sessionId"]


def test_multi_turn_input_required(agent: Agent) -> None:
    agent = make_agent("tests.flows.chat:greet")
    first = rpc(agent, "SendMessage", {"message": msg_v1("where am I?")}, V1)["result"]["task"]
    assert first["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert first["status"]["message"]["parts"] == [{"text": "What is your name?"}]
    reply = msg_v1("Ada", taskId=first["id"], contextId=first["contextId"])
    done = rpc(agent, "SendMessage", {"message": reply}, V1)["result"]["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"
    assert done["artifacts"][0]["parts"][0]["text"] == "Hello, Ada! You asked: where am I?"
    roles = [m["role"] for m in done["history"]]
    assert roles == ["ROLE_USER", "ROLE_AGENT", "ROLE_USER"]
    again = rpc(agent, "SendMessage", {"message": msg_v1("more", taskId=first["id"])}, V1)
    assert again["error"]["code"] == -32004


def test_context_mismatch_is_invalid_params() -> None:
    agent = make_agent("tests.flows.chat:greet")
    first = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]
    bad = rpc(
        agent, "SendMessage", {"message": msg_v1("Ada", taskId=first["id"], contextId="other")}, V1
    )
    assert bad["error"]["code"] == -32602


def test_return_immediately_hands_the_task_to_the_worker(agent: Agent) -> None:
    config = {"returnImmediately": True}
    task = rpc(agent, "SendMessage", {"message": msg_v1("later"), "configuration": config}, V1)[
        "result"
    ]["task"]
    assert task["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert agent.engine.queue is not None
    [message] = agent.engine.queue.receive(10)
    assert json.loads(message.body)["run_id"] == task["id"]


def test_v03_non_blocking(agent: Agent) -> None:
    task = rpc(
        agent, "message/send", {"message": msg_v03("x"), "configuration": {"blocking": False}}
    )["result"]
    assert task["status"]["state"] == "submitted"


# -- reading, listing, cancelling ------------------------------------------------------


def test_tasks_are_private_to_their_principal(agent: Agent) -> None:
    task = rpc(agent, "SendMessage", {"message": msg_v1("mine")}, V1, principal="alice")["result"][
        "task"
    ]
    assert (
        rpc(agent, "GetTask", {"id": task["id"]}, V1, principal="alice")["result"]["id"]
        == task["id"]
    )
    for who in ("bob", None):
        out = rpc(agent, "GetTask", {"id": task["id"]}, V1, principal=who)
        assert out["error"]["code"] == -32001
        assert (
            rpc(agent, "CancelTask", {"id": task["id"]}, V1, principal=who)["error"]["code"]
            == -32001
        )
    assert rpc(agent, "ListTasks", {}, V1, principal="bob")["result"]["tasks"] == []


def test_list_tasks_newest_first_with_filters(agent: Agent) -> None:
    ids = []
    for text in ("a", "b", "c"):
        msg = msg_v1(text, contextId="ctx-1" if text != "c" else "ctx-2")
        ids.append(rpc(agent, "SendMessage", {"message": msg}, V1)["result"]["task"]["id"])
    listed = rpc(agent, "ListTasks", {}, V1)["result"]
    assert {t["id"] for t in listed["tasks"]} == set(ids)
    assert listed["nextPageToken"] == ""
    assert "artifacts" not in listed["tasks"][0]
    by_ctx = rpc(agent, "ListTasks", {"contextId": "ctx-1", "includeArtifacts": True}, V1)["result"]
    assert {t["id"] for t in by_ctx["tasks"]} == set(ids[:2])
    assert by_ctx["tasks"][0]["artifacts"]
    done = rpc(agent, "ListTasks", {"status": "TASK_STATE_WORKING"}, V1)["result"]
    assert done["tasks"] == []
    assert rpc(agent, "ListTasks", {"pageSize": 0}, V1)["error"]["code"] == -32602


def test_cancel_paused_and_terminal_tasks() -> None:
    agent = make_agent("tests.flows.chat:greet")
    task = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]
    cancelled = rpc(agent, "CancelTask", {"id": task["id"]}, V1)["result"]
    assert cancelled["status"]["state"] == "TASK_STATE_CANCELED"
    again = rpc(agent, "CancelTask", {"id": task["id"]}, V1)
    assert again["error"]["code"] == -32002
    assert rpc(agent, "tasks/cancel", {"id": "nope"})["error"]["code"] == -32001


# -- streaming ---------------------------------------------------------------------


def test_v1_stream_task_then_progress_then_artifact_and_final_status() -> None:
    agent = make_agent("tests.flows.chat:slow")
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "SendStreamingMessage",
        "params": {"message": msg_v1("go")},
    }
    events = sse(agent.dispatcher.handle(request(body, V1)))
    assert all(e["id"] == 7 for e in events)
    kinds = [next(iter(e["result"])) for e in events]
    assert kinds[0] == "task"
    assert kinds.count("statusUpdate") == 22  # 20 Slow + 1 Done steps, 1 final
    assert kinds[-2:] == ["artifactUpdate", "statusUpdate"]
    assert events[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    step = events[1]["result"]["statusUpdate"]
    assert step["metadata"] == {"node": "Slow", "step": 1}


def test_v03_stream_marks_the_last_event_final() -> None:
    agent = make_agent("tests.flows.chat:greet")
    body = {
        "jsonrpc": "2.0",
        "id": "s",
        "method": "message/stream",
        "params": {"message": msg_v03("q")},
    }
    events = [e["result"] for e in sse(agent.dispatcher.handle(request(body)))]
    assert events[0]["kind"] == "task"
    assert events[-1]["kind"] == "status-update"
    assert events[-1]["status"]["state"] == "input-required"
    assert events[-1]["final"] is True
    assert all(e.get("final") is False for e in events[1:-1])


def test_v01_send_subscribe_emits_status_updates_only() -> None:
    agent = make_agent()
    params = {"id": "t-01", "message": {"role": "user", "parts": [{"type": "text", "text": "x"}]}}
    body = {"jsonrpc": "2.0", "id": "1", "method": "tasks/sendSubscribe", "params": params}
    events = [e["result"] for e in sse(agent.dispatcher.handle(request(body)))]
    assert all("kind" in e and e["kind"] != "task" for e in events)
    assert events[-1]["final"] is True
    assert events[-1]["id"] == "t-01"


def test_stream_errors_before_start_are_plain_json(agent: Agent) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": "1",
        "method": "SendStreamingMessage",
        "params": {"message": {}},
    }
    resp = agent.dispatcher.handle(request(body, V1))
    assert resp.headers["Content-Type"] == "application/json"
    assert json.loads(resp.body)["error"]["code"] == -32602  # type: ignore[arg-type]


def test_resubscribe_to_a_paused_task_gives_the_task(agent: Agent) -> None:
    agent = make_agent("tests.flows.chat:greet")
    task = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]
    body = {"jsonrpc": "2.0", "id": "1", "method": "SubscribeToTask", "params": {"id": task["id"]}}
    stream = agent.dispatcher.handle(request(body, V1)).body
    assert not isinstance(stream, bytes)
    first = json.loads(next(stream)[len(b"data: ") :])
    stream.close()  # type: ignore[attr-defined]
    assert first["result"]["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    # it then follows the task until it ends: test_a2a_conformance.py


def test_resubscribe_to_a_finished_task_is_unsupported(agent: Agent) -> None:
    task = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]
    body = {"jsonrpc": "2.0", "id": "1", "method": "SubscribeToTask", "params": {"id": task["id"]}}
    out = json.loads(agent.dispatcher.handle(request(body, V1)).body)  # type: ignore[arg-type]
    assert out["error"]["code"] == -32004


# -- push configs ------------------------------------------------------------------


def test_push_config_crud_v1() -> None:
    agent = make_agent("tests.flows.chat:greet", allow_private=True)
    task = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]
    config = {
        "taskId": task["id"],
        "url": "http://127.0.0.1:9/hook",
        "token": "tok",
        "authentication": {"scheme": "Bearer", "credentials": "secret"},
    }
    made = rpc(agent, "CreateTaskPushNotificationConfig", config, V1)["result"]
    assert made["url"] == config["url"]
    assert made["authentication"] == {"scheme": "Bearer"}  # credentials are never echoed
    cid = made["id"]
    got = rpc(agent, "GetTaskPushNotificationConfig", {"taskId": task["id"], "id": cid}, V1)[
        "result"
    ]
    assert got == made
    listed = rpc(agent, "ListTaskPushNotificationConfigs", {"taskId": task["id"]}, V1)["result"]
    assert listed["configs"] == [made]
    assert (
        rpc(agent, "DeleteTaskPushNotificationConfig", {"taskId": task["id"], "id": cid}, V1)[
            "result"
        ]
        is None
    )
    gone = rpc(agent, "GetTaskPushNotificationConfig", {"taskId": task["id"], "id": cid}, V1)
    assert gone["error"]["code"] == -32001


def test_push_to_private_or_plain_http_is_refused_unless_allowed() -> None:
    agent = make_agent("tests.flows.chat:greet")
    task = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]
    for url in ("http://example.com/hook", "https://127.0.0.1/hook", "https://10.1.2.3/hook"):
        out = rpc(agent, "CreateTaskPushNotificationConfig", {"taskId": task["id"], "url": url}, V1)
        assert out["error"]["code"] == -32602, url


def test_push_not_supported() -> None:
    agent = make_agent(push_notifications=False)
    out = rpc(agent, "tasks/pushNotificationConfig/list", {"id": "x"})
    assert out["error"]["code"] == -32003


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b"[]", -32600),
        (b'{"jsonrpc": "1.0", "method": "tasks/get", "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": "tasks/get", "id": {"x": 1}}', -32600),
        (b'{"jsonrpc": "2.0", "method": "nope", "id": 1}', -32601),
        (b'{"jsonrpc": "2.0", "method": "tasks/get", "id": 1, "params": []}', -32602),
        (b'{"jsonrpc": "2.0", "method": "tasks/get", "id": 1, "params": {"id": 5}}', -32602),
        (
            b'{"jsonrpc": "2.0", "method": "message/send", "id": 1, "params": {"message": {"role": "user"}}}',
            -32602,
        ),
        (b'{"jsonrpc": "2.0", "method": "agent/getAuthenticatedExtendedCard", "id": 1}', -32007),
    ],
)
def test_error_codes(agent: Agent, body: bytes, code: int) -> None:
    resp = agent.dispatcher.handle(request(body))
    assert resp.status == 200
    out = json.loads(resp.body)  # type: ignore[arg-type]
    assert out["error"]["code"] == code
    assert "Traceback" not in out["error"]["message"]


def test_oversize_body_is_refused_before_parsing() -> None:
    agent = make_agent(max_body_bytes=1000)
    out = json.loads(agent.dispatcher.handle(request(b"{" + b" " * 2000)).body)  # type: ignore[arg-type]
    assert out["error"]["code"] == -32600
    assert "larger than 1000 bytes" in out["error"]["message"]


def test_wrong_http_methods(agent: Agent) -> None:
    assert agent.dispatcher.handle(request(b"", method="GET")).status == 405
    card = "/.well-known/agent-card.json"
    assert agent.dispatcher.handle(request(b"", method="POST", path=card)).status == 405


def test_bearer_auth_required_when_configured() -> None:
    agent = make_agent(auth=BearerAuth(tokens=["s3cret"]))
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/send",
        "params": {"message": msg_v03("x")},
    }
    assert agent.dispatcher.handle(request(body)).status == 401
    wrong = agent.dispatcher.handle(request(body, {"authorization": "Bearer nope"}))
    assert wrong.status == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    ok = agent.dispatcher.handle(request(body, {"authorization": "Bearer s3cret"}))
    assert json.loads(ok.body)["result"]["status"]["state"] == "completed"  # type: ignore[arg-type]


def test_node_failures_do_not_leak_details() -> None:
    agent = make_agent("tests.flows.sample:failing")
    params = {"message": msg_v03("x")}
    task = rpc(agent, "message/send", params)["result"]
    assert task["status"]["state"] == "failed"
    assert "kaboom" not in json.dumps(task)
    assert (
        task["status"]["message"]["parts"][0]["text"] == "The agent could not complete this task."
    )


def test_auth_auto_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PFLAMBDA_TOKEN", "PFLAMBDA_TOKEN_SECRET", "PFLAMBDA_TOKEN_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    assert make_agent().auth is None
    monkeypatch.setenv("PFLAMBDA_TOKEN", "t0k")
    agent = make_agent()
    assert isinstance(agent.auth, BearerAuth)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/send",
        "params": {"message": msg_v03("x")},
    }
    assert agent.dispatcher.handle(request(body)).status == 401
    assert agent.dispatcher.handle(request(body, {"authorization": "Bearer t0k"})).status == 200
    assert make_agent(auth=None).auth is None
