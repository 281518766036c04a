"""Tiny flows for the A2A tests: an echo, and one that asks a question first."""

from __future__ import annotations

from typing import Any

from pflambda import Flow, Node
from pflambda.errors import InputRequired


class Echo(Node):
    def prep(self, shared: dict[str, Any]) -> str:
        return str(shared["question"])

    def exec(self, question: str) -> str:
        return f"echo: {question}"

    def post(self, shared: dict[str, Any], prep_res: str, exec_res: str) -> None:
        shared["answer"] = exec_res


def echo() -> Flow:
    """One node: answer = 'echo: ' + question."""
    return Flow(start=Echo())


class AskName(Node):
    def prep(self, shared: dict[str, Any]) -> str:
        if "name" not in shared:
            raise InputRequired("What is your name?", key="name")
        return str(shared["name"])

    def post(self, shared: dict[str, Any], prep_res: str, exec_res: Any) -> None:
        shared["answer"] = f"Hello, {prep_res}! You asked: {shared['question']}"


def greet() -> Flow:
    """Echo, then ask for a name, then greet."""
    echo_node = Echo()
    echo_node >> AskName()
    return Flow(start=echo_node)


class Slow(Node):
    def exec(self, prep_res: Any) -> None:
        import time

        time.sleep(0.05)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["n"] = shared.get("n", 0) + 1
        if shared["n"] >= 20:
            shared["answer"] = "slow done"
            return "done"
        return "again"


class Done(Node):
    pass


def slow() -> Flow:
    """Twenty 50 ms steps."""
    node = Slow()
    node - "again" >> node
    node - "done" >> Done()
    return Flow(start=node)
