"""The shared SQS worker: continues every agent's runs, and sends their push notifications."""

from typing import Any

from handlers import approval, research, summarise
from pflambda.aws.worker import Worker

AGENTS = {a.name: a for a in (research.agent, approval.agent, summarise.agent)}


def _push(record: Any) -> None:
    agent = AGENTS.get(record.attrs.get("a2a", {}).get("agent"))
    if agent is not None:
        agent.on_status(record)


handler = Worker(listeners=[_push])
