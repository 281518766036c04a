"""The agent the official A2A TCK talks to: its scenarios, written with pflambda's public API."""

from typing import Any

from tck_flow import artifacts_for, reply_for, shared_for

from pflambda import Agent, Skill
from pflambda.a2a.model import Message


class ConformanceAgent(Agent):
    """An Agent whose replies keep their message id (the TCK keys scenarios on it)."""

    def reply_for(self, message: Message) -> Any:
        return reply_for(message)


agent = ConformanceAgent(
    name="conformance",
    flow="tck_flow:create_flow",
    description="Acts out the A2A TCK's scenarios, chosen by the message id's prefix.",
    skills=[
        Skill(
            id="tck",
            name="TCK scenarios",
            description="Completes, asks for input, makes artifacts or streams, as the TCK asks.",
            tags=["conformance"],
        )
    ],
    to_shared=shared_for,
    to_artifacts=artifacts_for,
    auth=None,
)
handler = agent.api_handler
worker = agent.worker_handler
