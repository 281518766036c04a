"""The HTTP+JSON (REST) binding of A2A 1.0, at the HTTP-request level."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pflambda.a2a.agent import Agent
from pflambda.http import HttpRequest, HttpResponse
from tests.unit.test_a2a_dispatcher import make_agent, msg_v1, sse

ROOT = "/agents/test-agent"


def call(
    agent: Agent,
    verb: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return agent.dispatcher.handle(
        HttpRequest(
            method=verb,
            path=ROOT + path,
            headers={"content-type": "application/json", "a2a-version": "1.0", **(headers or {})},
            query=query or {},
            body=raw,
            base_url="https://api.example.com/prod",
        )
    )


def doc(resp: HttpResponse) -> Any:
    assert isinstance(resp.body, bytes)
    return json.loads(resp.body)


@pytest.fixture
def agent() -> Agent:
    return make_agent("tests.flows.chat:greet")


def test_send_get_list_over_rest(agent: Agent) -> None:
    sent = call(agent, "POST", "/message:send", {"message": msg_v1("q")})
    assert sent.status == 200
    task = doc(sent)["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    got = doc(call(agent, "GET", f"/tasks/{task['id']}", query={"historyLength": "1"}))
    assert got["id"] == task["id"]
    assert len(got["history"]) == 1
    listed = doc(call(agent, "GET", "/tasks", query={"contextId": task["contextId"]}))
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    canceled = doc(call(agent, "POST", f"/tasks/{task['id']}:cancel"))
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"


def test_errors_are_google_rpc_status_with_error_info(agent: Agent) -> None:
    resp = call(agent, "GET", "/tasks/nope")
    assert resp.status == 404
    assert resp.headers["Content-Type"] == "application/json"
    error = doc(resp)["error"]
    assert error["code"] == 404
    assert error["status"] == "NOT_FOUND"
    assert error["details"][0]["reason"] == "TASK_NOT_FOUND"
    assert error["details"][0]["domain"] == "a2a-protocol.org"
    task = doc(call(agent, "POST", "/message:send", {"message": msg_v1("q")}))["task"]
    call(agent, "POST", f"/tasks/{task['id']}:cancel")
    again = call(agent, "POST", f"/tasks/{task['id']}:cancel")
    assert again.status == 409
    assert doc(again)["error"]["details"][0]["reason"] == "TASK_NOT_CANCELABLE"
    bad = call(agent, "GET", "/tasks", query={"pageSize": "0"})
    assert bad.status == 400
    assert call(agent, "DELETE", "/tasks").status == 405
    old = call(agent, "GET", "/tasks", headers={"a2a-version": "0.3"})
    assert doc(old)["error"]["details"][0]["reason"] == "VERSION_NOT_SUPPORTED"


def test_rest_body_must_be_json(agent: Agent) -> None:
    resp = call(
        agent, "POST", "/message:send", b"message=hi", headers={"content-type": "text/plain"}
    )
    assert resp.status == 415
    assert call(agent, "POST", "/message:send", b"{oops").status == 400


def test_streaming_over_rest_is_sse_of_stream_responses() -> None:
    agent = make_agent()
    resp = call(agent, "POST", "/message:stream", {"message": msg_v1("hi")})
    events = sse(resp)
    assert "task" in events[0]
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert all("jsonrpc" not in e for e in events)


def test_push_config_routes(agent: Agent) -> None:
    agent = make_agent("tests.flows.chat:greet", allow_private=True)
    task = doc(call(agent, "POST", "/message:send", {"message": msg_v1("q")}))["task"]
    base = f"/tasks/{task['id']}/pushNotificationConfigs"
    made = doc(call(agent, "POST", base, {"id": "c1", "url": "http://127.0.0.1:9/hook"}))
    assert made == {"taskId": task["id"], "id": "c1", "url": "http://127.0.0.1:9/hook"}
    assert doc(call(agent, "GET", base + "/c1")) == made
    assert doc(call(agent, "GET", base))["configs"] == [made]
    assert call(agent, "DELETE", base + "/c1").status == 200
    assert doc(call(agent, "GET", base))["configs"] == []


def test_json_rpc_still_answers_posts_at_the_root(agent: Agent) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}
    resp = call(agent, "POST", "/", body)
    assert doc(resp)["result"]["tasks"] == []
