"""The agent the official A2A TCK talks to: its scenarios, written with pflambda's public API."""

from tck_flow import artifacts_for, reply_for, shared_for

from pflambda import Agent, Skill

agent = Agent(
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
    to_reply=reply_for,  # replies keep their message id: the TCK keys scenarios on it
    auth=None,
)
handler = agent.api_handler
worker = agent.worker_handler
