"""Flows that ask a lot: a big question, and many questions in a row."""

from __future__ import annotations

from typing import Any

from pflambda import Flow, Node
from pflambda.errors import InputRequired

BIG_QUESTION = "Which of these do you mean? " + "option " * 36_000  # ~250 KB


class AskBig(Node):
    def prep(self, shared: dict[str, Any]) -> Any:
        if "choice" not in shared:
            raise InputRequired(BIG_QUESTION, key="choice")
        return shared["choice"]

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["answer"] = f"you chose {len(str(prep_res))} characters"


def big_question() -> Flow:
    """One node that asks a ~250 KB question."""
    return Flow(start=AskBig())


class AskTen(Node):
    """Asks a question, records the answer's length, and asks again -- ten times."""

    def prep(self, shared: dict[str, Any]) -> Any:
        if "reply" not in shared:
            raise InputRequired(f"answer {len(shared.get('got', [])) + 1} of 10?", key="reply")
        return shared["reply"]

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        got = shared.setdefault("got", [])
        got.append(len(str(shared.pop("reply"))))
        if len(got) < 10:
            return "again"
        shared["answer"] = f"{len(got)} answers, {sum(got)} characters"
        return "done"


def ten_questions() -> Flow:
    """One node that asks ten questions in a row."""
    ask = AskTen()
    ask - "again" >> ask
    ask - "done" >> Thanks()
    return Flow(start=ask)


class Thanks(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["thanked"] = True


class Shout(Node):
    def exec(self, prep_res: Any) -> None:
        raise ValueError("x" * 600_000)


def shouting() -> Flow:
    """One node that raises an error with a 600 KB message."""
    return Flow(start=Shout())
