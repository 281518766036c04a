"""ListTasks: pages filled through the status key, totalSize, rendering without state reads."""

from __future__ import annotations

from typing import Any

import pytest

from pflambda.a2a.agent import Agent
from pflambda.engine.runner import Engine
from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, rpc


@pytest.fixture
def agent() -> Agent:
    return make_agent("tests.flows.chat:greet")


def _start(agent: Agent, n: int, principal: str = "alice", **extra: Any) -> list[str]:
    ids = []
    for i in range(n):
        sent = rpc(
            agent, "SendMessage", {"message": msg_v1(f"m{i}", **extra)}, V1, principal=principal
        )
        ids.append(sent["result"]["task"]["id"])
    return ids


def _every_page(
    agent: Agent, params: dict[str, Any], principal: str = "alice"
) -> list[dict[str, Any]]:
    pages, token = [], ""
    while True:
        result = rpc(agent, "ListTasks", {**params, "pageToken": token}, V1, principal=principal)[
            "result"
        ]
        pages.append(result)
        token = result["nextPageToken"]
        if not token:
            return pages


def test_status_filter_never_answers_empty_pages_with_a_token(agent: Agent) -> None:
    paused = _start(agent, 7)  # greet asks for a name: input-required
    for task_id in paused[:5]:  # answer five: they complete
        reply = msg_v1("Ada", taskId=task_id)
        assert rpc(agent, "SendMessage", {"message": reply}, V1, principal="alice")["result"]
    pages = _every_page(agent, {"status": "TASK_STATE_INPUT_REQUIRED", "pageSize": 1})
    assert [len(p["tasks"]) for p in pages] == [1, 1]
    assert [t["id"] for p in pages for t in p["tasks"]] == paused[5:][::-1]
    assert {p["totalSize"] for p in pages} == {2}
    done = _every_page(agent, {"status": "TASK_STATE_COMPLETED", "pageSize": 2})
    assert [len(p["tasks"]) for p in done] == [2, 2, 1]
    assert {p["totalSize"] for p in done} == {5}
    assert _every_page(agent, {"status": "TASK_STATE_FAILED"}) == [
        {"tasks": [], "nextPageToken": "", "pageSize": 50, "totalSize": 0}
    ]


def test_total_size_counts_only_the_callers_tasks(agent: Agent) -> None:
    _start(agent, 3, principal="bob")
    mine = _start(agent, 4)
    first = rpc(agent, "ListTasks", {"pageSize": 3}, V1, principal="alice")["result"]
    assert first["totalSize"] == 4
    assert [t["id"] for t in first["tasks"]] == mine[::-1][:3]
    assert rpc(agent, "ListTasks", {}, V1, principal="carol")["result"]["totalSize"] == 0


def test_listing_reads_no_state(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _start(agent, 3)
    rpc(agent, "SendMessage", {"message": msg_v1("Ada", taskId=ids[0])}, V1, principal="alice")

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("ListTasks read a run's state")

    monkeypatch.setattr(Engine, "state", refuse)
    reads: list[str] = []
    get_run = agent.engine.store.get_run
    monkeypatch.setattr(
        agent.engine.store, "get_run", lambda rid: reads.append(rid) or get_run(rid)
    )
    tasks = rpc(agent, "ListTasks", {}, V1, principal="alice")["result"]["tasks"]
    assert [t["status"]["state"] for t in tasks] == [
        "TASK_STATE_COMPLETED",
        "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_INPUT_REQUIRED",
    ]
    assert "history" not in tasks[0] or tasks[0]["history"] == []
    assert reads == []
    with_history = rpc(agent, "ListTasks", {"historyLength": 1}, V1, principal="alice")
    assert [len(t["history"]) for t in with_history["result"]["tasks"]] == [1, 1, 1]
    assert len(reads) == 3  # history is in the record, not the index: one read per task
