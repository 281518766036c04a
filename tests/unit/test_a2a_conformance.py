"""A2A conformance fixes: ErrorInfo, snake_case params, history slices, error codes, hostile text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pflambda.a2a.agent import Agent
from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, request, rpc


@pytest.fixture
def agent() -> Agent:
    return make_agent()


def raw_rpc(agent: Agent, body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
    resp = agent.dispatcher.handle(request(body, headers))
    assert resp.status == 200
    assert isinstance(resp.body, bytes)
    return json.loads(resp.body)  # type: ignore[no-any-return]


# -- error.data carries a google.rpc.ErrorInfo (1.0) -----------------------------------


def test_v1_a2a_errors_carry_error_info(agent: Agent) -> None:
    out = rpc(agent, "GetTask", {"id": "nope"}, V1)
    assert out["error"]["code"] == -32001
    assert out["error"]["data"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "TASK_NOT_FOUND",
            "domain": "a2a-protocol.org",
        }
    ]


def test_v03_errors_keep_their_shape(agent: Agent) -> None:
    out = rpc(agent, "tasks/get", {"id": "nope"})
    assert out["error"]["code"] == -32001
    assert "data" not in out["error"]


def test_version_error_has_its_reason(agent: Agent) -> None:
    out = rpc(agent, "SendMessage", {"message": msg_v1("hi")}, {"a2a-version": "0.3"})
    assert out["error"]["code"] == -32009
    assert out["error"]["data"][0]["reason"] == "VERSION_NOT_SUPPORTED"


# -- snake_case params (1.0) -----------------------------------------------------------


def test_v1_params_in_snake_case(agent: Agent) -> None:
    message = {"message_id": "m-snake", "role": "ROLE_USER", "parts": [{"text": "hi"}]}
    params = {"message": message, "configuration": {"history_length": 0}}
    task = rpc(agent, "SendMessage", params, V1)["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert "history" not in task
    got = rpc(agent, "GetTask", {"id": task["id"], "history_length": 1}, V1)["result"]
    assert len(got["history"]) == 1
    listed = rpc(agent, "ListTasks", {"context_id": task["contextId"], "page_size": 5}, V1)
    assert [t["id"] for t in listed["result"]["tasks"]] == [task["id"]]
    push = {"task_id": task["id"], "url": "https://example.com/hook"}
    made = rpc(make_agent(allow_private=True), "CreateTaskPushNotificationConfig", push, V1)
    assert made["error"]["code"] == -32001  # another agent's store: read as task_id, not missing


def test_snake_case_keeps_free_form_values(agent: Agent) -> None:
    message = msg_v1("hi", metadata={"my_key": 1}, contextId="ctx-1")
    message["parts"] = [{"data": {"some_field": True}}]
    task = rpc(agent, "SendMessage", {"message": message}, V1)["result"]["task"]
    sent = task["history"][0]
    assert sent["metadata"] == {"my_key": 1}
    assert sent["parts"] == [{"data": {"some_field": True}}]


def test_a_field_under_both_names_is_invalid(agent: Agent) -> None:
    out = rpc(agent, "GetTask", {"id": "x", "historyLength": 1, "history_length": 2}, V1)
    assert out["error"]["code"] == -32602
    assert "twice" in out["error"]["message"]


# -- historyLength longer than the history -----------------------------------------------


@pytest.mark.parametrize("length", [3, 4, 5, 50])
def test_history_length_beyond_the_history(length: int) -> None:
    agent = make_agent("tests.flows.chat:greet")
    config = {"historyLength": length}
    first = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]
    reply = {"message": msg_v1("Ada", taskId=first["id"]), "configuration": config}
    task = rpc(agent, "SendMessage", reply, V1)["result"]["task"]
    assert [m["role"] for m in task["history"]] == ["ROLE_USER", "ROLE_AGENT", "ROLE_USER"]
    got = rpc(agent, "GetTask", {"id": task["id"], "historyLength": length}, V1)["result"]
    assert len(got["history"]) == 3
    listed = rpc(agent, "ListTasks", {"historyLength": length}, V1)["result"]["tasks"]
    assert len(listed[0]["history"]) == 3
    assert (
        len(
            rpc(agent, "tasks/get", {"id": task["id"], "historyLength": length})["result"][
                "history"
            ]
        )
        == 3
    )
    two = rpc(agent, "GetTask", {"id": task["id"], "historyLength": 2}, V1)["result"]["history"]
    assert [m["role"] for m in two] == ["ROLE_AGENT", "ROLE_USER"]


# -- the right codes -------------------------------------------------------------------


def test_bad_page_token_is_invalid_params(agent: Agent) -> None:
    rpc(agent, "SendMessage", {"message": msg_v1("hi")}, V1)
    for token in ("not-a-token", "!!!", 5):
        out = rpc(agent, "ListTasks", {"pageToken": token}, V1)
        assert out["error"]["code"] == -32602, token


@pytest.mark.parametrize("value", ["3", -1, 1.5, True])
def test_bad_history_length_is_invalid_params(agent: Agent, value: Any) -> None:
    task = rpc(agent, "SendMessage", {"message": msg_v1("hi")}, V1)["result"]["task"]
    assert rpc(agent, "ListTasks", {"historyLength": value}, V1)["error"]["code"] == -32602
    out = rpc(agent, "GetTask", {"id": task["id"], "historyLength": value}, V1)
    assert out["error"]["code"] == -32602


def test_a_message_over_the_record_limit_goes_by_reference(agent: Agent) -> None:
    from pflambda.stores._item import item_size, run_item

    big = "x" * 450_000  # larger than a whole DynamoDB item: the message goes to blobs
    agent.max_body_bytes = 2_000_000
    out = rpc(agent, "SendMessage", {"message": msg_v1(big)}, V1)
    task = out["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["history"][0]["parts"][0]["text"] == big
    (record,) = agent.engine.store.list_runs().runs
    assert item_size(run_item(record)) < 2_000


def test_v01_send_with_another_principals_task_id_is_not_found(agent: Agent) -> None:
    params = {
        "id": "shared-id-1",
        "message": {"role": "user", "parts": [{"type": "text", "text": "hi"}]},
    }
    assert rpc(agent, "tasks/send", params, principal="alice")["result"]["id"] == "shared-id-1"
    out = rpc(agent, "tasks/send", params, principal="bob")
    assert out["error"]["code"] == -32001
    assert "exists" not in out["error"]["message"]
    assert rpc(agent, "tasks/get", {"id": "shared-id-1"}, principal="bob")["error"] == out["error"]


# -- text that is not Unicode ----------------------------------------------------------


def test_lone_surrogate_in_metadata_is_refused_and_not_stored(agent: Agent) -> None:
    body = (
        b'{"jsonrpc": "2.0", "id": "1", "method": "SendMessage", "params": {"message": '
        b'{"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}], '
        b'"metadata": {"k": "\\ud800"}}}}'
    )
    out = raw_rpc(agent, body, V1)
    assert out["error"]["code"] == -32602
    assert "surrogate" in out["error"]["message"]
    assert agent.engine.store.list_runs().runs == []
    assert rpc(agent, "ListTasks", {}, V1)["result"]["tasks"] == []


@pytest.mark.parametrize("version", ["1.0", "0.3"])
def test_lone_surrogate_in_the_id_is_an_error_not_a_500(agent: Agent, version: str) -> None:
    method = "GetTask" if version == "1.0" else "tasks/get"
    body = b'{"jsonrpc": "2.0", "id": "\\udc00", "method": "%s", "params": {"id": "x"}}' % (
        method.encode()
    )
    out = raw_rpc(agent, body, {"a2a-version": version})
    assert out["error"]["code"] == -32600
    assert out["id"] is None


# -- SubscribeToTask on a task waiting for input ------------------------------------------


def test_subscribe_to_a_paused_task_follows_it_to_the_end() -> None:
    import threading

    from tests.unit.test_a2a_dispatcher import sse

    agent = make_agent("tests.flows.chat:greet")
    agent.poll_seconds = 0.05
    task = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]
    body = {"jsonrpc": "2.0", "id": "s", "method": "SubscribeToTask", "params": {"id": task["id"]}}
    resp = agent.dispatcher.handle(request(body, V1))
    reply = {"message": msg_v1("Ada", taskId=task["id"])}
    answer = threading.Timer(0.3, lambda: rpc(agent, "SendMessage", reply, V1))
    answer.start()
    events = [e["result"] for e in sse(resp)]
    answer.join()
    assert events[0]["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


# -- push configs given with a send --------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"url": "http://example.com/hook"},  # not https
        {"url": "https://127.0.0.1/hook"},  # private
        {"url": "https://example.com/hook", "token": "a\r\nX-Evil: 1"},
        {
            "url": "https://example.com/hook",
            "authentication": {"scheme": "Bearer", "credentials": "x\ny"},
        },
    ],
)
def test_push_config_in_a_send_is_checked_like_set(agent: Agent, config: dict[str, Any]) -> None:
    params = {"message": msg_v1("hi"), "configuration": {"taskPushNotificationConfig": config}}
    out = rpc(agent, "SendMessage", params, V1)
    assert out["error"]["code"] == -32602
    assert agent.engine.store.list_runs().runs == []


def test_tokens_with_line_breaks_are_refused_by_set() -> None:
    agent = make_agent("tests.flows.chat:greet", allow_private=True)
    task = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]
    params = {"taskId": task["id"], "url": "http://127.0.0.1:9/hook", "token": "t\r\n"}
    out = rpc(agent, "CreateTaskPushNotificationConfig", params, V1)
    assert out["error"]["code"] == -32602
    assert "control characters" in out["error"]["message"]
    assert rpc(agent, "ListTaskPushNotificationConfigs", {"taskId": task["id"]}, V1)["result"] == {
        "configs": [],
        "nextPageToken": "",
    }


def test_stream_states_never_go_back(agent: Agent) -> None:
    from tests.unit.test_a2a_dispatcher import sse

    order = ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_COMPLETED"]
    for _ in range(5):  # the run races the stream: it is often done before the first event
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage"}
        body["params"] = {"message": msg_v1("hi")}
        events = [e["result"] for e in sse(agent.dispatcher.handle(request(body, V1)))]
        states = [(e.get("task") or e.get("statusUpdate") or {}).get("status") for e in events]
        ranks = [order.index(s["state"]) for s in states if s is not None]
        assert ranks == sorted(ranks), ranks
        assert ranks[-1] == 2


# -- streaming errors, per version ----------------------------------------------------------


def test_v03_stream_errors_are_an_sse_error_event(agent: Agent) -> None:
    from tests.unit.test_a2a_dispatcher import sse

    body = {"jsonrpc": "2.0", "id": "s1", "method": "message/stream", "params": {"message": {}}}
    resp = agent.dispatcher.handle(request(body))
    assert resp.status == 200
    events = sse(resp)
    assert events == [{"jsonrpc": "2.0", "id": "s1", "error": events[0]["error"]}]
    assert events[0]["error"]["code"] == -32602
    missing = {"jsonrpc": "2.0", "id": 2, "method": "tasks/resubscribe", "params": {"id": "nope"}}
    assert sse(agent.dispatcher.handle(request(missing)))[0]["error"]["code"] == -32001
