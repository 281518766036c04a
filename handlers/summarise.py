"""The summariser agent: summarises each document of a batch, then combines them."""

from pflambda import Agent, Skill

agent = Agent(
    name="summarise",
    flow="flows.summarise.flow:create_flow",
    description="Summarises text: each paragraph or document, then the whole.",
    skills=[
        Skill(
            id="summarise",
            name="Summarise",
            description="Batch summarisation of documents or paragraphs.",
            tags=["summary", "batch"],
        )
    ],
)
handler = agent.api_handler
worker = agent.worker_handler
