"""Redeploys never strand a run: its cursor is checked frame by frame against the new
flow; a run that does not map is refused clearly (nothing changes) and can be migrated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine import compat
from pflambda.engine.flowref import load_flow
from pflambda.engine.runner import Engine
from pflambda.errors import FingerprintMismatch, InvalidRunState
from pflambda.graph import describe
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore
from tests.flows import deploy

FLOW = "tests.flows.deploy:create_flow"


@pytest.fixture
def version() -> Iterator[dict[str, int]]:
    deploy.VERSION["v"] = 1
    yield deploy.VERSION
    deploy.VERSION["v"] = 1


def make_engine() -> Engine:
    clock = FakeClock()
    return Engine(MemoryStore(), MemoryBlobStore(), MemoryQueue(clock), clock=clock)


def paused(engine: Engine) -> str:
    outcome = engine.start(FLOW, {})
    assert outcome.status == RunStatus.PAUSED
    return outcome.run_id


def test_a_node_added_after_the_paused_node_runs_on_the_new_code(version: dict[str, int]) -> None:
    engine = make_engine()
    run_id = paused(engine)
    version["v"] = 2
    outcome = engine.resume(run_id, reply="yes")
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared["audited"] is True  # the new node ran
    assert outcome.shared["published"] == "a plan (yes)"
    record = engine.store.get_run(run_id)
    assert record.fingerprint == describe(load_flow(FLOW)).fingerprint()


def test_a_removed_paused_node_is_refused_naming_migrate_and_nothing_changes(
    version: dict[str, int],
) -> None:
    engine = make_engine()
    run_id = paused(engine)
    before = engine.store.get_run(run_id)
    steps = list(engine.store.list_checkpoints(run_id))
    version["v"] = 3
    with pytest.raises(FingerprintMismatch) as refused:
        engine.resume(run_id, reply="yes")
    message = str(refused.value)
    assert "Ask is not in the deployed flow" in message
    assert f"pflambda migrate {run_id} --map OLD=NEW" in message
    after = engine.store.get_run(run_id)
    assert (after.status, after.prompt, after.fingerprint) == (
        RunStatus.PAUSED,
        "Approve the plan?",
        before.fingerprint,
    )
    assert list(engine.store.list_checkpoints(run_id)) == steps


def test_a_changed_class_at_the_cursor_is_refused(version: dict[str, int]) -> None:
    engine = make_engine()
    run_id = paused(engine)
    shape = compat.recall(engine.blobs, engine.store.get_run(run_id).fingerprint)
    assert shape is not None
    assert shape["Ask"] == "tests.flows.deploy.Ask"
    graph = describe(load_flow(FLOW))
    cursor = engine.state(run_id)[1]
    problems = compat.mismatches({**shape, "Ask": "tests.flows.deploy.Other"}, graph, cursor)
    assert problems == ["Ask was a tests.flows.deploy.Other, is now a tests.flows.deploy.Ask"]


def test_migrate_moves_a_refused_run_onto_the_new_flow(version: dict[str, int]) -> None:
    engine = make_engine()
    run_id = paused(engine)
    version["v"] = 3
    with pytest.raises(InvalidRunState, match="Nope is not in the deployed flow"):
        engine.migrate(run_id, {"Ask": "Nope"})
    record = engine.migrate(run_id, {"Ask": "Review"})
    assert record.status == RunStatus.PAUSED  # still waiting for the same answer
    assert record.fingerprint == describe(load_flow(FLOW)).fingerprint()
    outcome = engine.resume(run_id, reply="ok")
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared["published"] == "a plan (ok)"


def test_migrate_refuses_finished_runs(version: dict[str, int]) -> None:
    engine = make_engine()
    run_id = paused(engine)
    engine.resume(run_id, reply="yes")
    with pytest.raises(InvalidRunState, match="nothing to migrate"):
        engine.migrate(run_id, {"Ask": "Review"})


def test_a2a_reply_to_a_task_whose_node_was_removed_names_migrate(
    version: dict[str, int],
) -> None:
    from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, rpc

    agent = make_agent(FLOW)
    task = rpc(agent, "SendMessage", {"message": msg_v1("go")}, V1)["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    version["v"] = 3
    error = rpc(agent, "SendMessage", {"message": msg_v1("yes", taskId=task["id"])}, V1)["error"]
    assert "pflambda migrate" in error["message"]
    again = rpc(agent, "GetTask", {"id": task["id"]}, V1)["result"]
    assert again["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    version["v"] = 2
    done = rpc(agent, "SendMessage", {"message": msg_v1("yes", taskId=task["id"])}, V1)
    assert done["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
