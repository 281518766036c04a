"""The TCK conformance agent (tests/tck) acts out the scenarios the TCK keys on message ids."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pflambda.a2a.agent import Agent
from tests.unit.test_a2a_dispatcher import V1, make_agent, rpc, sse

TCK = Path(__file__).resolve().parents[1] / "tck"


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Agent:
    monkeypatch.syspath_prepend(str(TCK))
    monkeypatch.delitem(sys.modules, "tck_flow", raising=False)
    import tck_flow

    return make_agent(
        "tck_flow:create_flow",
        to_shared=tck_flow.shared_for,
        to_artifacts=tck_flow.artifacts_for,
        to_reply=tck_flow.reply_for,
    )


def send(agent: Agent, message_id: str, **extra: Any) -> dict[str, Any]:
    message = {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": "hi"}], **extra}
    out = rpc(agent, "SendMessage", {"message": message}, V1, principal="tck")
    return out["result"]  # type: ignore[no-any-return]


def test_message_response_answers_with_a_bare_message(agent: Agent) -> None:
    """DM-MSG-001: SendMessage returns a Message with the scenario's text part."""
    result = send(agent, "tck-message-response-1")
    assert "task" not in result
    assert result["message"]["role"] == "ROLE_AGENT"
    assert result["message"]["parts"] == [{"text": "Direct message response"}]


def test_reject_task_ends_rejected(agent: Agent) -> None:
    task = send(agent, "tck-reject-task-1")["task"]
    assert task["status"]["state"] == "TASK_STATE_REJECTED"
    assert task["status"]["message"]["parts"] == [{"text": "rejected"}]


def test_input_required_then_a_reply_completes(agent: Agent) -> None:
    task = send(agent, "tck-input-required-1")["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    done = send(agent, "tck-complete-task-2", taskId=task["id"])["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"


def test_streamed_artifact_scenario(agent: Agent) -> None:
    message = {"messageId": "tck-stream-001-x", "role": "ROLE_USER", "parts": [{"text": "hi"}]}
    body = {"jsonrpc": "2.0", "id": "1", "method": "SendStreamingMessage"}
    from tests.unit.test_a2a_dispatcher import request

    resp = agent.dispatcher.handle(
        request({**body, "params": {"message": message}}, V1, principal="tck")
    )
    events = [e["result"] for e in sse(resp)]
    artifacts = [e["artifactUpdate"] for e in events if "artifactUpdate" in e]
    assert [a["artifact"]["parts"] for a in artifacts] == [[{"text": "Stream hello from TCK"}]]
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_chunked_artifact_streams_two_chunks_while_the_run_goes_on(agent: Agent) -> None:
    message = {"messageId": "tck-stream-artifact-chunked-1", "role": "ROLE_USER"}
    body = {"jsonrpc": "2.0", "id": "1", "method": "SendStreamingMessage"}
    from tests.unit.test_a2a_dispatcher import request

    params = {"message": {**message, "parts": [{"text": "hi"}]}}
    resp = agent.dispatcher.handle(request({**body, "params": params}, V1, principal="tck"))
    events = [e["result"] for e in sse(resp)]
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "task"
    chunks = [e["artifactUpdate"] for e in events if "artifactUpdate" in e]
    got = [(c["artifact"]["parts"], c.get("append", False), c.get("lastChunk")) for c in chunks]
    assert got == [([{"text": "chunk-1 "}], False, False), ([{"text": "chunk-2"}], True, True)]
    assert kinds.index("artifactUpdate") < kinds.index("statusUpdate")  # while the run goes on
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    task_id = events[0]["task"]["id"]
    task = rpc(agent, "GetTask", {"id": task_id}, V1, principal="tck")["result"]
    assert [a["parts"] for a in task["artifacts"]] == [[{"text": "chunk-1 "}, {"text": "chunk-2"}]]
