"""Push notification configs are bounded: a task's run record never outgrows a DynamoDB
item (400 KB; DynamoDB refuses such a write whole), and a refusal changes nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pflambda import limits
from pflambda.a2a.agent import Agent
from pflambda.stores._item import ITEM_LIMIT, item_size, run_item
from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, rpc

HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def agent() -> Agent:
    return make_agent("tests.flows.chat:greet", allow_private=True)  # a task that stays open


def new_task(agent: Agent) -> str:
    task_id: str = rpc(agent, "SendMessage", {"message": msg_v1("q")}, V1)["result"]["task"]["id"]
    return task_id


def create(agent: Agent, task_id: str, **config: Any) -> dict[str, Any]:
    params = {"taskId": task_id, "url": HOOK, **config}
    out: dict[str, Any] = rpc(agent, "CreateTaskPushNotificationConfig", params, V1)
    return out


def stored(agent: Agent, task_id: str) -> dict[str, Any]:
    push: dict[str, Any] = agent.engine.store.get_run(task_id).attrs["a2a"].get("push", {})
    return push


def test_a_task_keeps_at_most_the_limit_of_configs(agent: Agent) -> None:
    task_id = new_task(agent)
    for n in range(limits.PUSH_CONFIGS_PER_TASK):
        assert "result" in create(agent, task_id, id=f"c{n}")
    before = stored(agent, task_id)
    out = create(agent, task_id, id="one-too-many")
    assert out["error"]["code"] == -32602
    assert "delete one first" in out["error"]["message"]
    assert stored(agent, task_id) == before
    replaced = create(agent, task_id, id="c0", token="new")  # replacing is not adding
    assert "result" in replaced
    assert stored(agent, task_id)["c0"]["token"] == "new"
    assert len(stored(agent, task_id)) == limits.PUSH_CONFIGS_PER_TASK


def test_an_oversized_config_is_refused_and_stores_nothing(agent: Agent) -> None:
    task_id = new_task(agent)
    out = create(agent, task_id, id="big", token="t" * limits.PUSH_CONFIG_BYTES)
    assert out["error"]["code"] == -32602
    assert f"at most {limits.PUSH_CONFIG_BYTES}" in out["error"]["message"]
    assert stored(agent, task_id) == {}


def test_a_config_that_would_pass_the_item_limit_is_refused_whole(agent: Agent) -> None:
    """DynamoDB refuses an update that makes an item larger than 400 KB, applying none of
    it (moto applies it partly): the config is checked against the whole record first."""
    task_id = new_task(agent)
    store, record = agent.engine.store, agent.engine.store.get_run(task_id)
    empty = replace(record, attrs={**record.attrs, "filler": ""})
    room = ITEM_LIMIT - item_size(run_item(empty))
    filler = {**record.attrs, "filler": "x" * (room - 2_000)}  # what other writes left
    store.update_run(task_id, {"attrs": filler})
    out = create(agent, task_id, id="last-straw", token="t" * 3_000)
    assert out["error"]["code"] == -32602
    assert "400 KB" in out["error"]["message"]
    assert stored(agent, task_id) == {}
    assert "result" in create(agent, task_id, id="small")  # a config that fits still does


def test_replies_add_configs_within_the_same_bounds(agent: Agent) -> None:
    task_id = new_task(agent)
    for n in range(limits.PUSH_CONFIGS_PER_TASK):
        assert "result" in create(agent, task_id, id=f"c{n}")
    reply = {
        "message": msg_v1("Ada", taskId=task_id),
        "configuration": {"taskPushNotificationConfig": {"url": HOOK, "id": "via-reply"}},
    }
    out = rpc(agent, "SendMessage", reply, V1)
    assert out["error"]["code"] == -32602
    record = agent.engine.store.get_run(task_id)
    assert record.status == "paused"  # the refused reply changed nothing
    assert "via-reply" not in stored(agent, task_id)
