"""Agents that say more: Message replies, rejected, auth-required, whole replies, memory."""

from __future__ import annotations

from typing import Any

from pflambda.a2a.agent import Agent
from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, rpc


def send(agent: Agent, text: str, principal: str = "alice", **extra: Any) -> dict[str, Any]:
    out = rpc(agent, "SendMessage", {"message": msg_v1(text, **extra)}, V1, principal=principal)
    return out["result"]  # type: ignore[no-any-return]


def test_public_types() -> None:
    import pflambda
    from pflambda.a2a import model, signals

    assert (pflambda.Artifact, pflambda.Part, pflambda.Message) == (
        model.Artifact,
        model.Part,
        model.Message,
    )
    assert (pflambda.Rejected, pflambda.AuthRequired) == (signals.Rejected, signals.AuthRequired)


def test_a_flow_can_answer_with_a_message() -> None:
    agent = make_agent("tests.flows.speaking:message_reply")
    result = send(agent, "bob", contextId="ctx-9")
    assert "task" not in result
    reply = result["message"]
    assert reply["role"] == "ROLE_AGENT"
    assert reply["parts"] == [{"text": "hi bob"}]
    assert reply["metadata"] == {"mood": "glad"}
    assert reply["contextId"] == "ctx-9"
    task = rpc(agent, "GetTask", {"id": reply["taskId"]}, V1, principal="alice")["result"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["status"]["message"]["messageId"] == reply["messageId"]
    assert "artifacts" not in task or task["artifacts"] == []
    legacy = rpc(
        agent,
        "message/send",
        {"message": {"messageId": "m1", "role": "user", "parts": [{"kind": "text", "text": "x"}]}},
        principal="alice",
    )["result"]
    assert legacy["kind"] == "message"
    assert legacy["parts"] == [{"kind": "text", "text": "hi x"}]


def test_rejected_and_auth_required() -> None:
    agent = make_agent("tests.flows.speaking:gate")
    rejected = send(agent, "forbidden")["task"]
    assert rejected["status"]["state"] == "TASK_STATE_REJECTED"
    assert rejected["status"]["message"]["parts"] == [{"text": "I do not answer that."}]
    asked = send(agent, "hello")["task"]
    assert asked["status"]["state"] == "TASK_STATE_AUTH_REQUIRED"
    assert asked["status"]["message"]["parts"] == [{"text": "Send your token"}]

    def listed(state: str) -> dict[str, Any]:
        params = {"status": state}
        return rpc(agent, "ListTasks", params, V1, principal="alice")["result"]  # type: ignore[no-any-return]

    assert [t["id"] for t in listed("TASK_STATE_REJECTED")["tasks"]] == [rejected["id"]]
    assert listed("TASK_STATE_FAILED")["tasks"] == []
    assert [t["id"] for t in listed("TASK_STATE_AUTH_REQUIRED")["tasks"]] == [asked["id"]]
    assert listed("TASK_STATE_INPUT_REQUIRED")["totalSize"] == 0
    done = send(agent, "tok-1", taskId=asked["id"])["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"
    assert done["artifacts"][0]["parts"] == [{"text": "welcome tok-1"}]


def test_replies_reach_the_flow_whole() -> None:
    seen: list[Any] = []

    def to_reply(message: Any) -> str:
        seen.append((message.message_id, message.metadata, len(message.parts)))
        return f"{message.text} ({message.metadata['lang']})"

    agent = make_agent("tests.flows.chat:greet", to_reply=to_reply)
    asked = send(agent, "q")["task"]
    reply = msg_v1("Ada", taskId=asked["id"], metadata={"lang": "en"})
    reply["parts"].append({"data": {"x": 1}})
    done = rpc(agent, "SendMessage", {"message": reply}, V1, principal="alice")["result"]["task"]
    assert done["artifacts"][0]["parts"] == [{"text": "Hello, Ada (en)! You asked: q"}]
    assert seen == [(reply["messageId"], {"lang": "en"}, 2)]


def test_context_memory() -> None:
    agent = make_agent("tests.flows.speaking:counter", context_memory=True)

    def answer(text: str, principal: str = "alice", **extra: Any) -> str:
        task = send(agent, text, principal, **extra)["task"]
        return task["artifacts"][0]["parts"][0]["text"]  # type: ignore[no-any-return]

    assert answer("a", contextId="c1") == "1: a"
    assert answer("b", contextId="c1") == "2: b"
    assert answer("c", contextId="c2") == "1: c"
    assert answer("d", "bob", contextId="c1") == "1: d"  # another principal's context
    assert answer("e") == "1: e"  # no context given: a new one
    assert answer("f", contextId="c1") == "3: f"
    kept = make_agent("tests.flows.speaking:counter", context_memory=lambda s: {"count": 10})
    send(kept, "a", contextId="k")
    assert send(kept, "b", contextId="k")["task"]["artifacts"][0]["parts"][0]["text"] == "11: b"
    plain = make_agent("tests.flows.speaking:counter")
    send(plain, "a", contextId="c1")
    assert send(plain, "b", contextId="c1")["task"]["artifacts"][0]["parts"][0]["text"] == "1: b"
