"""Flows that say more than an answer: a Message reply, a rejection, a sign-in, a counter."""

from __future__ import annotations

from typing import Any

from pflambda import AuthRequired, Flow, Message, Node, Part, Rejected


class Reply(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        text = f"hi {shared['question']}"
        shared["answer"] = Message("", "agent", (Part(text=text),), metadata={"mood": "glad"})


def message_reply() -> Flow:
    """Answers with a Message (no artifacts)."""
    return Flow(start=Reply())


class Gate(Node):
    def prep(self, shared: dict[str, Any]) -> str:
        if shared["question"] == "forbidden":
            raise Rejected("I do not answer that.")
        if "auth" not in shared:
            raise AuthRequired("Send your token", key="auth")
        return str(shared["auth"])

    def post(self, shared: dict[str, Any], prep_res: str, exec_res: Any) -> None:
        shared["answer"] = f"welcome {prep_res}"


def gate() -> Flow:
    """Rejects 'forbidden'; asks for a token (auth-required) before answering."""
    return Flow(start=Gate())


class Count(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["count"] = shared.get("count", 0) + 1
        shared["answer"] = f"{shared['count']}: {shared['question']}"


def counter() -> Flow:
    """Counts the tasks of a context (with context memory)."""
    return Flow(start=Count())
