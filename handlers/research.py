"""The research agent: decide -> search -> answer, as in PocketFlow's A2A cookbook."""

from pflambda import Agent, Skill

agent = Agent(
    name="research",
    flow="flows.research.flow:create_flow",
    description="Answers questions, searching the web when it needs to.",
    skills=[
        Skill(
            id="research",
            name="Research a question",
            description="Decides whether to search, searches, and answers with sources.",
            tags=["research", "qa"],
            examples=["Who won the Nobel Prize in Physics 2024?"],
        )
    ],
)
handler = agent.api_handler
worker = agent.worker_handler
