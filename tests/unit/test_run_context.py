"""pflambda.current_run(): what a node knows about its durable run, where it is set."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flows.hello.flow import create_flow as hello
from pflambda import NoRunContext, current_run, maybe_current_run
from pflambda.engine.flowref import load_flow
from pflambda.engine.runner import Engine
from pflambda.runcontext import RunContext, a2a_ids, running
from pflambda.stores.base import RunStatus
from tests.flows.context import CRASHES
from tests.unit.test_fanout import drain, make_engine


def nodes_by_step(engine: Engine, run_id: str) -> dict[int, str | None]:
    return {c.seq: c.node_id for c in engine.store.list_checkpoints(run_id)}


def test_outside_a_durable_run_there_is_none() -> None:
    assert maybe_current_run() is None
    with pytest.raises(NoRunContext, match="maybe_current_run"):
        current_run()
    state: dict[str, Any] = {"items": [1, 2]}
    asyncio.run(load_flow("tests.flows.context:asynchronous").run_async(state))  # in-process
    assert state["seen"] == [[["prep", None], ["exec", None]]]
    assert state["items_seen"] == [[1, ["exec", None]], [2, ["exec", None]]]
    assert hello().run({"topic": "x"}) is None


def test_each_hook_of_each_step_sees_the_run_the_step_and_the_node() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.context:steps", {}, owner="me")
    assert outcome.status == RunStatus.PAUSED
    outcome = engine.resume(outcome.run_id, reply="yes")
    assert outcome.status == RunStatus.COMPLETED
    nodes = nodes_by_step(engine, outcome.run_id)
    run_id = outcome.run_id
    seen = outcome.shared["seen"]
    for (prep, exec_seen, key, post), step in zip(seen, (1, 2, 5), strict=True):
        for where, hook in (("prep", prep), ("exec", exec_seen), ("post", post)):
            assert hook[:5] == [where, run_id, step, nodes[step], None]
        assert key == f"{run_id}/{step}/charge"
    assert [s[1][5] for s in seen] == [1, 3, 1]  # exec attempts: the 2nd node failed twice
    assert seen[1][3][5] == 3  # post sees the try that succeeded
    assert seen[0][0][6] is None  # no agent outside A2A


def test_a_step_run_again_after_a_crash_has_the_same_key() -> None:
    CRASHES.clear()
    engine = make_engine()
    with pytest.raises(KeyboardInterrupt):
        engine.start("tests.flows.context:crashing", {}, run_id="r-crash")
    assert engine.store.get_run("r-crash").status == RunStatus.RUNNING
    outcome = engine.resume("r-crash", force=True)  # the dead driver's lease still stands
    assert outcome.status == RunStatus.COMPLETED
    assert CRASHES == ["r-crash/2/side-effect", "r-crash/2/side-effect"]
    assert outcome.shared["crash_key"] == "r-crash/2/side-effect"


def test_a_paused_node_runs_again_as_a_new_step_after_the_reply() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.context:steps", {})
    assert outcome.shared["ask_keys"] == [f"{outcome.run_id}/3"]
    outcome = engine.resume(outcome.run_id, reply="yes")
    # the pause committed nothing; the reply is step 3, so the node runs again as step 4
    assert outcome.shared["ask_keys"] == [f"{outcome.run_id}/4"]
    assert nodes_by_step(engine, outcome.run_id)[3] is None


def test_the_context_is_gone_after_the_run() -> None:
    engine = make_engine()
    engine.start("tests.flows.context:steps", {"answer": "y"})
    assert maybe_current_run() is None


def test_async_nodes_and_in_process_parallel_items_see_the_run() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.context:asynchronous", {"items": [5, 6, 7]})
    assert outcome.status == RunStatus.COMPLETED
    nodes = nodes_by_step(engine, outcome.run_id)
    ((prep, exec_seen),) = outcome.shared["seen"]
    assert prep[:5] == ["prep", outcome.run_id, 1, nodes[1], None]
    assert exec_seen[:5] == ["exec", outcome.run_id, 1, nodes[1], None]
    items = outcome.shared["items_seen"]
    assert [item for item, _ in items] == [5, 6, 7]
    assert {tuple(s[:5]) for _, s in items} == {("exec", outcome.run_id, 2, nodes[2], None)}


def test_fanned_out_items_see_their_index_and_delivery_on_the_worker() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.context:fanned", {"items": [10, 11, 12]})
    assert outcome.stopped == "fanout"
    drain(engine, twice=True)  # each message delivered twice: the first results stand
    record = engine.store.get_run(outcome.run_id)
    assert record.status == RunStatus.COMPLETED
    state = engine.state(outcome.run_id)[0]
    fan_seq = 2  # the checkpoint that started the fan-out
    nodes = nodes_by_step(engine, outcome.run_id)
    for index, (item, seen, delivery, key) in enumerate(state["items_seen"]):
        assert item == 10 + index
        assert seen[:5] == ["exec", outcome.run_id, fan_seq, nodes[fan_seq], index]
        assert delivery == 1
        assert key == f"{outcome.run_id}/{fan_seq}/{index}"


def test_parallel_async_fanned_out_items_each_see_their_own_index() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.context:fanned_async", {"items": list(range(25))})
    drain(engine)
    state = engine.state(outcome.run_id)[0]
    assert [seen[4] for _, seen in state["items_seen"]] == list(range(25))
    assert {seen[2] for _, seen in state["items_seen"]} == {1}


def test_agent_and_task_ids_come_from_the_run_record() -> None:
    engine = make_engine()
    attrs = {"a2a": {"agent": "research", "history": []}}
    outcome = engine.start(
        "tests.flows.context:steps", {"answer": "y"}, context_id="ctx-1", attrs=attrs
    )
    assert outcome.shared["seen"][0][0][6] == "research"
    assert a2a_ids("r", "c", attrs) == {"task_id": "r", "context_id": "c", "agent": "research"}
    assert a2a_ids("r", None, {}) == {"context_id": None}


def test_a_context_set_in_one_task_does_not_leak_into_another() -> None:
    run = RunContext(run_id="r", step=1, node_id="n", flow="m:f")

    async def inside() -> RunContext | None:
        with running(run):
            await asyncio.sleep(0)
            return maybe_current_run()

    async def both() -> list[RunContext | None]:
        return list(await asyncio.gather(inside(), asyncio.sleep(0, maybe_current_run())))

    assert asyncio.run(both()) == [run, None]
    assert run.idempotency_key("a", 2) == "r/1/a/2"
    assert run.attempt == 1
