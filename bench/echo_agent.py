"""A trivial agent for load tests: one node that echoes the question.

``bench/a2a_load.py`` serves it with ``pflambda local``'s machinery so its numbers
measure the server (HTTP, A2A, the durable run and its checkpoint) and not a model.
"""

from __future__ import annotations

from typing import Any

from pflambda import Agent, Flow, Node


class Echo(Node):
    """Writes ``shared["answer"] = "echo: " + shared["question"]``."""

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["answer"] = "echo: " + str(shared["question"])


def create_flow() -> Flow:
    """The one-node echo flow."""
    return Flow(start=Echo())


agent = Agent(
    name="echo",
    flow="bench.echo_agent:create_flow",
    description="Echoes the question back (a load-test agent; no model).",
)
