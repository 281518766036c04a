"""The approval agent: drafts a plan and pauses until a human approves it."""

from pflambda import Agent, Skill

agent = Agent(
    name="approval",
    flow="flows.approval.flow:create_flow",
    description="Drafts a plan for a request and waits for your approval before acting.",
    skills=[
        Skill(
            id="plan-approval",
            name="Plan with approval",
            description="Proposes a plan, asks 'yes or no', revises on feedback.",
            tags=["human-in-the-loop", "planning"],
            examples=["Plan a team offsite"],
        )
    ],
)
handler = agent.api_handler
worker = agent.worker_handler
