"""Nothing refused changes anything, and records that grow stay bounded.

A refused reply (a value that cannot be stored, a throttled write, a reply to a run
that asked nothing), a resume refused because the flow changed, a refused cancel:
each leaves the run's record and its checkpoints exactly as they were, and the next
good reply goes through. Big questions and long conversations go to the blob store
by reference, so the run's record stays small.
"""

from __future__ import annotations

from typing import Any

import pytest

from pflambda.a2a.agent import Agent
from pflambda.engine.flowref import load_flow
from pflambda.errors import (
    FingerprintMismatch,
    InvalidRunState,
    PflambdaError,
    RetryableError,
    SerializationError,
)
from pflambda.stores._item import item_size, run_item
from pflambda.stores.base import RunStatus
from tests.faults.harness import Stack
from tests.flows.asking import BIG_QUESTION
from tests.unit.test_a2a_dispatcher import V1, msg_v1, rpc

APPROVAL = "tests.flows.sample:approval"


def _snapshot(stack: Stack, run_id: str) -> tuple[Any, list[Any]]:
    store = stack.engine.store
    return store.get_run(run_id), list(store.list_checkpoints(run_id))


def _paused(stack: Stack) -> str:
    outcome = stack.engine.start(APPROVAL, {"limit": 1})
    assert outcome.status == RunStatus.PAUSED
    return outcome.run_id


def test_an_unstorable_reply_changes_nothing(aws: None) -> None:
    stack = Stack.make()
    run_id = _paused(stack)
    before = _snapshot(stack, run_id)
    with pytest.raises(SerializationError):
        stack.engine.resume(run_id, reply=object())
    assert _snapshot(stack, run_id) == before
    assert stack.engine.resume(run_id, reply="yes").status == RunStatus.COMPLETED


def test_a_throttled_reply_changes_nothing(aws: None) -> None:
    stack = Stack.make()
    run_id = _paused(stack)
    before = _snapshot(stack, run_id)
    stack.throttle("dynamodb.TransactWriteItems", 1)
    with pytest.raises(RetryableError):
        stack.engine.resume(run_id, reply="yes")
    stack.heal()
    assert _snapshot(stack, run_id) == before  # still paused, still asking
    assert stack.engine.resume(run_id, reply="yes").status == RunStatus.COMPLETED


def test_replies_to_runs_that_asked_nothing_are_refused(aws: None) -> None:
    stack = Stack.make()
    done = stack.engine.start("tests.flows.sample:loop", {"limit": 1}).run_id
    before = _snapshot(stack, done)
    with pytest.raises(InvalidRunState, match="nothing to resume"):
        stack.engine.resume(done, reply="yes")
    assert _snapshot(stack, done) == before


def test_a_resume_refused_for_a_changed_flow_changes_nothing(aws: None, monkeypatch: Any) -> None:
    stack = Stack.make()
    run_id = _paused(stack)
    before = _snapshot(stack, run_id)
    changed = load_flow("tests.flows.sample:loop")
    monkeypatch.setattr("pflambda.engine.checkpoints.load_flow", lambda ref: changed)
    with pytest.raises(FingerprintMismatch):
        stack.engine.resume(run_id, reply="yes")
    assert _snapshot(stack, run_id) == before
    monkeypatch.undo()
    assert stack.engine.resume(run_id, reply="yes").status == RunStatus.COMPLETED


def test_a_refused_cancel_changes_nothing(aws: None) -> None:
    stack = Stack.make()
    done = stack.engine.start("tests.flows.sample:loop", {"limit": 1}).run_id
    before = _snapshot(stack, done)
    with pytest.raises(InvalidRunState, match="already completed"):
        stack.engine.cancel(done)
    assert _snapshot(stack, done) == before


def test_a_250_kb_question_is_asked_and_answered(aws: None) -> None:
    stack = Stack.make()
    outcome = stack.engine.start("tests.flows.asking:big_question", {})
    assert outcome.status == RunStatus.PAUSED
    assert outcome.prompt == BIG_QUESTION
    record = stack.engine.store.get_run(outcome.run_id)
    assert record.prompt is None  # the record holds a reference, not the question
    assert item_size(run_item(record)) < 2_000
    assert stack.engine.prompt(record) == BIG_QUESTION
    done = stack.engine.resume(outcome.run_id, reply="the second one")
    assert done.status == RunStatus.COMPLETED


def _agent(flow: str) -> Agent:
    from pflambda.aws.config import Settings

    settings = Settings.from_env()
    agent = Agent(name="test-agent", flow=flow, engine=Stack.make().engine, settings=settings)
    agent.max_body_bytes = 2_000_000
    return agent


def test_ten_120_kb_replies_keep_the_task_record_small(aws: None) -> None:
    agent = _agent("tests.flows.asking:ten_questions")
    out = rpc(agent, "SendMessage", {"message": msg_v1("start")}, V1)
    task_id = out["result"]["task"]["id"]
    for i in range(10):
        reply = msg_v1(str(i) * 120_000)
        reply["taskId"] = task_id
        out = rpc(agent, "SendMessage", {"message": reply}, V1)
        assert "result" in out, out
    task = out["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert len(task["history"]) == 21  # the first message, then 10 x (question, reply)
    record = agent.engine.store.get_run(task_id)
    assert item_size(run_item(record)) < 8_000
    fetched = rpc(agent, "GetTask", {"id": task_id, "historyLength": 1}, V1)["result"]
    assert fetched["history"][0]["parts"][0]["text"] == "9" * 120_000


def test_a_refused_a2a_reply_leaves_the_task_waiting(aws: None) -> None:
    agent = _agent("tests.flows.chat:greet")
    out = rpc(agent, "SendMessage", {"message": msg_v1("hi")}, V1)
    task = out["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    store = agent.engine.store
    before = (store.get_run(task["id"]), list(store.list_checkpoints(task["id"])))
    stack_engine = agent.engine
    original = stack_engine.store.commit_step

    def throttled(*args: Any, **kw: Any) -> None:
        raise RetryableError("injected throttling")

    stack_engine.store.commit_step = throttled  # type: ignore[method-assign]
    reply = msg_v1("Ada")
    reply["taskId"] = task["id"]
    refused = rpc(agent, "SendMessage", {"message": reply}, V1)
    assert "error" in refused
    assert (store.get_run(task["id"]), list(store.list_checkpoints(task["id"]))) == before
    stack_engine.store.commit_step = original  # type: ignore[method-assign]
    again = rpc(agent, "SendMessage", {"message": reply}, V1)
    assert again["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_errors_that_stop_a_reply_are_pflambda_errors() -> None:
    assert issubclass(SerializationError, PflambdaError)


def test_a_huge_error_message_still_fails_the_run(aws: None) -> None:
    stack = Stack.make()
    outcome = stack.engine.start("tests.flows.asking:shouting", {})
    assert outcome.status == RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.endswith("characters)")
    assert len(outcome.error) < 5_000
