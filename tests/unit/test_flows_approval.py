"""flows.approval: draft, pause for a human, revise on feedback, execute on yes."""

from __future__ import annotations

from typing import Any

import pytest

from flows.approval.flow import create_flow
from flows.approval.utils import feedback_of, is_approval
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.engine.runner import Engine
from pflambda.errors import InputRequired
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore

FLOW = "flows.approval.flow:create_flow"
REQUEST = "Migrate the billing database to Postgres"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFLAMBDA_LLM", "offline")


def ask(shared: dict[str, Any]) -> InputRequired:
    with pytest.raises(InputRequired) as caught:
        create_flow().run(shared)
    return caught.value


def test_in_process_the_question_propagates_to_the_caller() -> None:
    shared: dict[str, Any] = {"question": REQUEST}
    question = ask(shared)
    assert question.key == "approval"
    assert shared["plan"] in question.prompt
    assert shared["plan"].startswith("1. ")
    assert REQUEST in question.prompt
    assert "yes" in question.prompt
    assert "no" in question.prompt
    assert "answer" not in shared


def test_in_process_revise_then_approve() -> None:
    shared: dict[str, Any] = {"question": REQUEST}
    first = ask(shared)
    draft = shared["plan"]

    shared["approval"] = "No, add tests"
    second = ask(shared)
    assert "approval" not in shared
    assert shared["feedback"] == "add tests"
    assert shared["revisions"] == 1
    assert shared["plan"].startswith(draft)
    assert "add tests" in shared["plan"]
    assert "add tests" in second.prompt
    assert second.prompt != first.prompt

    shared["approval"] = "YES"
    assert create_flow().run(shared) == "done"
    assert shared["answer"] == f"Plan approved and executed:\n{shared['plan']}"
    assert "add tests" in shared["answer"]


def test_durable_pause_revise_and_approve() -> None:
    engine = Engine(MemoryStore(), MemoryBlobStore())
    out = engine.start(FLOW, {"question": REQUEST})
    assert out.status == RunStatus.PAUSED
    assert out.prompt is not None
    assert out.shared["plan"] in out.prompt
    draft = out.shared["plan"]

    out = engine.resume(out.run_id, reply="no, add tests")
    assert out.status == RunStatus.PAUSED
    assert out.prompt is not None
    assert "Address the feedback: add tests" in out.prompt
    assert out.shared["plan"].startswith(draft)
    assert "approval" not in out.shared

    out = engine.resume(out.run_id, reply="no, and write docs")
    assert out.status == RunStatus.PAUSED
    assert out.prompt is not None
    assert "write docs" in out.prompt
    assert "add tests" in out.prompt

    out = engine.resume(out.run_id, reply="yes")
    assert out.status == RunStatus.COMPLETED
    assert out.result == "done"
    assert out.shared["answer"].startswith("Plan approved and executed:\n1. ")
    assert "add tests" in out.shared["answer"]
    assert "write docs" in out.shared["answer"]
    assert out.shared["revisions"] == 2


def test_durable_and_in_process_end_the_same() -> None:
    shared: dict[str, Any] = {"question": REQUEST}
    ask(shared)
    shared["approval"] = "no, add tests"
    ask(shared)
    shared["approval"] = "approve"
    create_flow().run(shared)

    engine = Engine(MemoryStore(), MemoryBlobStore())
    out = engine.start(FLOW, {"question": REQUEST})
    out = engine.resume(out.run_id, reply="no, add tests")
    out = engine.resume(out.run_id, reply="approve")
    assert out.shared == shared


@pytest.mark.parametrize("reply", ["yes", "Yes", "YES!", " approve ", "Approved.", "y"])
def test_approvals(reply: str) -> None:
    assert is_approval(reply)


@pytest.mark.parametrize("reply", ["no", "yes, but add tests", "maybe", "", "not yet"])
def test_everything_else_revises(reply: str) -> None:
    assert not is_approval(reply)


@pytest.mark.parametrize(
    ("reply", "feedback"),
    [
        ("no, add tests", "add tests"),
        ("No. Write docs first", "Write docs first"),
        ("no", ""),
        ("nothing about rollback", "nothing about rollback"),
        ("add a rollback step", "add a rollback step"),
    ],
)
def test_feedback_of(reply: str, feedback: str) -> None:
    assert feedback_of(reply) == feedback
