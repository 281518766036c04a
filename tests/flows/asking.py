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
    def prep(self, shared: dict[str, Any]) -> Any:
        got = shared.setdefault("got", [])
        if "reply" in shared:
            got.append(len(str(shared.pop("reply"))))
        if len(got) < 10:
            raise InputRequired(f"answer {len(got) + 1} of 10?", key="reply")
        return got

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["answer"] = f"{len(prep_res)} answers, {sum(prep_res)} characters"


def ten_questions() -> Flow:
    """One node that asks ten questions in a row."""
    return Flow(start=AskTen())
