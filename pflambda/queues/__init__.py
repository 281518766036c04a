"""How work moves between invocations: a Queue protocol, in memory and on SQS."""

from pflambda.queues.base import Message, Queue

__all__ = ["Message", "Queue"]
