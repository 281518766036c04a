"""The Queue protocol: at-least-once messages between invocations.

Like SQS: a received message is hidden for a visibility timeout and comes back if it
is not acknowledged; a message received more than ``max_receives`` times goes to the
dead-letter queue instead. Bodies are text up to
:data:`~pflambda.limits.SQS_MAX_MESSAGE_BYTES`; larger ones are refused with
:class:`MessageTooLarge` by every queue, the in-memory one included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pflambda.errors import TerminalError

__all__ = ["Message", "MessageTooLarge", "Queue"]


class MessageTooLarge(TerminalError):
    """A message body exceeds the queue's size limit."""


@dataclass(frozen=True)
class Message:
    """A received message."""

    body: str
    receipt: str
    """What ``ack`` takes to delete this delivery."""
    message_id: str
    receive_count: int
    """How many times the message has been delivered, this time included."""


class Queue(Protocol):
    """Send, receive, acknowledge."""

    def send(self, bodies: Sequence[str], *, delay_seconds: int = 0) -> None:
        """Send every body (10 per batch call), retrying partial failures; all or error."""
        ...

    def receive(
        self, max_messages: int = 10, *, wait_seconds: float = 0, visibility_timeout: int = 30
    ) -> list[Message]:
        """Up to ``max_messages`` visible messages (long-polling up to ``wait_seconds``)."""
        ...

    def ack(self, receipts: Sequence[str]) -> None:
        """Delete these deliveries (10 per batch call)."""
        ...

    def release(self, receipt: str) -> None:
        """Make a delivery visible again now (a failed item, to be retried)."""
        ...

    def hide(self, receipt: str, seconds: int) -> None:
        """Keep a delivery hidden for ``seconds`` from now (SQS ChangeMessageVisibility):
        a worker's message comes back when the worker would be dead, not 6x later; a
        retried one after its backoff. A stale receipt is ignored."""
        ...
