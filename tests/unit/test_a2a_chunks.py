"""Streamed artifact chunks over A2A: streams, GetTask, ListTasks, resubscribe, pushes."""

from __future__ import annotations

import json
import threading
from typing import Any

from pflambda.a2a.agent import Agent
from pflambda.a2a.model import Message
from pflambda.aws.config import Settings
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine.runner import Engine
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore
from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v03, msg_v1, request, rpc, sse


def words(message: Message) -> dict[str, Any]:
    return {"words": message.text.split()}


def story_agent(**kw: Any) -> Agent:
    agent = make_agent("tests.flows.chunky:streaming", to_shared=words, **kw)
    agent.poll_seconds = 0.02
    return agent


def stream(agent: Agent, method: str, params: dict[str, Any], headers: Any = None) -> list[Any]:
    body = {"jsonrpc": "2.0", "id": "s", "method": method, "params": params}
    return [e["result"] for e in sse(agent.dispatcher.handle(request(body, headers)))]


def chunks_v1(events: list[dict[str, Any]], art_id: str = "story") -> list[tuple[Any, ...]]:
    out = []
    for event in events:
        update = event.get("artifactUpdate")
        if update and update["artifact"]["artifactId"] == art_id:
            parts = [p.get("text") for p in update["artifact"]["parts"]]
            out.append((parts, update["append"], update["lastChunk"]))
    return out


def test_v1_stream_sends_each_chunk_as_its_step_commits_then_the_final_artifact() -> None:
    agent = story_agent()
    events = stream(agent, "SendStreamingMessage", {"message": msg_v1("a b c")}, V1)
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "task"
    assert "artifacts" not in events[0]["task"]
    # each step: its chunk, then its progress; then the final artifact and status
    assert kinds[1:] == [
        *["artifactUpdate", "statusUpdate"] * 3,
        "statusUpdate",  # Finish
        "artifactUpdate",  # the answer (to_artifacts): not a streamed id
        "statusUpdate",
    ]
    assert chunks_v1(events) == [
        (["a "], False, False),
        (["b "], True, False),
        (["c "], True, True),
    ]
    metas = [e["artifactUpdate"].get("metadata") for e in events if "artifactUpdate" in e]
    assert metas == [
        {"step": 1, "chunk": 0},
        {"step": 2, "chunk": 1},
        {"step": 3, "chunk": 2},
        None,
    ]
    final = events[-2]["artifactUpdate"]
    assert final["artifact"]["parts"] == [{"text": "3 chunks"}]
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    task_id = events[0]["task"]["id"]
    got = rpc(agent, "GetTask", {"id": task_id}, V1)["result"]
    assert [a["artifactId"] for a in got["artifacts"]] == ["story", f"{task_id}-answer"]
    assert got["artifacts"][0]["parts"] == [{"text": "a "}, {"text": "b "}, {"text": "c "}]
    assert got["artifacts"][0]["name"] == "story"


def test_v03_stream_has_artifact_update_events_with_append_and_last_chunk() -> None:
    agent = story_agent()
    events = stream(agent, "message/stream", {"message": msg_v03("x y")})
    updates = [e for e in events if e["kind"] == "artifact-update"]
    assert [(u["artifact"]["artifactId"], u["append"], u["lastChunk"]) for u in updates] == [
        ("story", False, False),
        ("story", True, True),
        (f"{events[0]['id']}-answer", False, True),
    ]
    assert updates[0]["artifact"]["parts"] == [{"kind": "text", "text": "x "}]
    assert events[-1]["final"] is True
    got = rpc(agent, "tasks/get", {"id": events[0]["id"]})["result"]
    assert got["artifacts"][0]["parts"] == [
        {"kind": "text", "text": "x "},
        {"kind": "text", "text": "y "},
    ]


def test_blocking_send_and_list_tasks_show_the_accumulated_artifacts() -> None:
    agent = story_agent()
    task = rpc(agent, "SendMessage", {"message": msg_v1("one two")}, V1)["result"]["task"]
    assert [a["artifactId"] for a in task["artifacts"]] == ["story", f"{task['id']}-answer"]
    listed = rpc(agent, "ListTasks", {"includeArtifacts": True}, V1)["result"]["tasks"]
    assert listed[0]["artifacts"] == task["artifacts"]
    bare = rpc(agent, "ListTasks", {}, V1)["result"]["tasks"]
    assert "artifacts" not in bare[0]


def test_get_task_mid_run_and_a_resubscribe_see_each_chunk_once() -> None:
    agent = story_agent()
    params = {"message": msg_v1("a b c d"), "configuration": {"returnImmediately": True}}
    task_id = rpc(agent, "SendMessage", params, V1)["result"]["task"]["id"]
    engine = agent.engine
    engine.resume(task_id, max_steps=2)  # a worker commits two steps, then lets go
    got = rpc(agent, "GetTask", {"id": task_id}, V1)["result"]
    assert got["artifacts"] == [
        {"artifactId": "story", "name": "story", "parts": [{"text": "a "}, {"text": "b "}]}
    ]
    body = {"jsonrpc": "2.0", "id": "r", "method": "SubscribeToTask", "params": {"id": task_id}}
    resp = agent.dispatcher.handle(request(body, V1))
    rest = threading.Timer(0.2, lambda: engine.resume(task_id))
    rest.start()
    events = [e["result"] for e in sse(resp)]
    rest.join()
    assert engine.store.get_run(task_id).status == RunStatus.COMPLETED
    first = events[0]["task"]
    assert first["artifacts"][0]["parts"] == [{"text": "a "}, {"text": "b "}]
    assert chunks_v1(events) == [(["c "], True, False), (["d "], True, True)]
    answers = [e for e in events if "artifactUpdate" in e][-1]["artifactUpdate"]
    assert answers["artifact"]["artifactId"] == f"{task_id}-answer"
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_a_reply_stream_starts_from_what_was_streamed_before() -> None:
    agent = make_agent("tests.flows.chunky:asking", to_reply=lambda m: m.text)
    first = stream(agent, "SendStreamingMessage", {"message": msg_v1("go")}, V1)
    assert chunks_v1(first, "intro") == [(["hello"], False, True)]
    assert chunks_v1(first, "notes") == []  # the pausing step's chunk was never committed
    assert first[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    task_id = first[0]["task"]["id"]
    reply = {"message": msg_v1("yes", taskId=task_id)}
    second = stream(agent, "SendStreamingMessage", reply, V1)
    assert [a["artifactId"] for a in second[0]["task"]["artifacts"]] == ["intro"]
    assert chunks_v1(second, "intro") == []
    assert chunks_v1(second, "notes") == [(["before "], False, False), (["after yes"], True, True)]
    got = rpc(agent, "GetTask", {"id": task_id}, V1)["result"]
    assert [a["artifactId"] for a in got["artifacts"]] == ["intro", "notes"]


def test_a_v1_task_pushes_each_chunk_as_an_artifact_update() -> None:
    clock = FakeClock()
    queue = MemoryQueue(clock)
    engine = Engine(MemoryStore(), MemoryBlobStore(), queue, clock=clock)
    agent = Agent(
        name="push-chunks",
        flow="tests.flows.chunky:streaming",
        engine=engine,
        settings=Settings(backend="memory", allow_private_push=True),
        to_shared=words,
    )
    push = {"url": "http://127.0.0.1:9/hook", "token": "t"}
    params = {"message": msg_v1("a b"), "configuration": {"taskPushNotificationConfig": push}}
    rpc(agent, "SendMessage", params, V1)
    payloads = [json.loads(m.body)["payload"] for m in queue.receive(10)]
    kinds = [next(iter(p)) for p in payloads]
    assert kinds == ["task", "artifactUpdate", "artifactUpdate", "task"]
    pushed = [p["artifactUpdate"] for p in payloads if "artifactUpdate" in p]
    assert [(u["append"], u["lastChunk"]) for u in pushed] == [(False, False), (True, True)]
    assert [u["metadata"]["chunk"] for u in pushed] == [0, 1]
    assert payloads[-1]["task"]["artifacts"][0]["parts"] == [{"text": "a "}, {"text": "b "}]


def test_a_v03_task_pushes_the_task_with_its_artifacts_only() -> None:
    clock = FakeClock()
    queue = MemoryQueue(clock)
    engine = Engine(MemoryStore(), MemoryBlobStore(), queue, clock=clock)
    agent = Agent(
        name="push-chunks-03",
        flow="tests.flows.chunky:streaming",
        engine=engine,
        settings=Settings(backend="memory", allow_private_push=True),
        to_shared=words,
    )
    config = {"url": "http://127.0.0.1:9/hook"}
    params = {"message": msg_v03("a b"), "configuration": {"pushNotificationConfig": config}}
    rpc(agent, "message/send", params)
    payloads = [json.loads(m.body)["payload"] for m in queue.receive(10)]
    assert [p["kind"] for p in payloads] == ["task", "task"]
    assert payloads[-1]["artifacts"][0]["artifactId"] == "story"


def test_http_json_stream_and_get_task_carry_the_chunks() -> None:
    from tests.unit.test_a2a_rest import call

    agent = story_agent()
    events = sse(call(agent, "POST", "/message:stream", {"message": msg_v1("p q")}))
    assert chunks_v1(events) == [(["p "], False, False), (["q "], True, True)]
    task_id = events[0]["task"]["id"]
    got = json.loads(call(agent, "GET", f"/tasks/{task_id}").body)  # type: ignore[arg-type]
    assert got["artifacts"][0]["parts"] == [{"text": "p "}, {"text": "q "}]
