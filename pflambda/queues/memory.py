"""MemoryQueue: an in-memory Queue with SQS's semantics, for tests and the local server.

Visibility timeouts, delays and long polls are measured on an injected
:class:`~pflambda.clock.Clock`, so tests move time by hand instead of sleeping.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pflambda.clock import Clock, SystemClock
from pflambda.queues._batch import check_receive, plan_batches
from pflambda.queues.base import Message

__all__ = ["MemoryQueue"]

_POLL_SECONDS = 0.05
"""How often a long poll on the real clock looks again for delayed or expired messages."""


@dataclass
class _Stored:
    message_id: str
    body: str
    visible_at: float
    """On the clock's monotonic scale."""
    receive_count: int = 0
    receipt: str | None = None
    """The latest delivery's receipt: the only one ``ack`` and ``release`` accept."""


class MemoryQueue:
    """A :class:`~pflambda.queues.base.Queue` in memory; safe to share between threads.

    Like SQS: a received message is hidden for its visibility timeout and comes back,
    with ``receive_count`` one higher, unless acknowledged; a message already delivered
    ``max_receives`` times goes to ``dead_letter`` instead of out; acknowledging or
    releasing a stale receipt does nothing. ``wait_seconds`` blocks on the real clock
    and returns at once on any other (a fake clock never moves while a thread waits).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        max_receives: int | None = None,
        dead_letter: MemoryQueue | None = None,
    ) -> None:
        if (max_receives is None) != (dead_letter is None):
            raise ValueError("max_receives and dead_letter go together, as in a RedrivePolicy")
        if max_receives is not None and max_receives < 1:
            raise ValueError(f"max_receives must be at least 1, not {max_receives}")
        self._clock = clock if clock is not None else SystemClock()
        self._blocking = isinstance(self._clock, SystemClock)
        self._max_receives = max_receives
        self._dead_letter = dead_letter
        self._cond = threading.Condition()
        self._messages: dict[str, _Stored] = {}
        """By message id, in the order sent: receives take the oldest visible first."""
        self._receipts: dict[str, str] = {}
        self.send_calls = 0
        """How many batch calls ``send`` has made (what SendMessageBatch calls SQS would see)."""

    def send(self, bodies: Sequence[str], *, delay_seconds: int = 0) -> None:
        """Enqueue every body, in batches as SQS would take them; all or nothing."""
        batches = plan_batches(bodies, delay_seconds)
        with self._cond:
            visible_at = self._clock.monotonic() + delay_seconds
            for batch in batches:
                self.send_calls += 1
                for body in batch:
                    message_id = str(uuid.uuid4())
                    self._messages[message_id] = _Stored(message_id, body, visible_at)
            self._cond.notify_all()

    def receive(
        self, max_messages: int = 10, *, wait_seconds: float = 0, visibility_timeout: int = 30
    ) -> list[Message]:
        """Up to ``max_messages`` visible messages, hidden for ``visibility_timeout``."""
        check_receive(max_messages, wait_seconds, visibility_timeout)
        deadline = self._clock.monotonic() + wait_seconds
        dead: list[_Stored] = []
        with self._cond:
            while True:
                messages = self._take(max_messages, visibility_timeout, dead)
                remaining = deadline - self._clock.monotonic()
                if messages or not self._blocking or remaining <= 0:
                    break
                self._cond.wait(min(remaining, _POLL_SECONDS))
        if dead and self._dead_letter is not None:
            self._dead_letter._accept(dead)
        return messages

    def ack(self, receipts: Sequence[str]) -> None:
        """Delete these deliveries; unknown or stale receipts are ignored, as SQS does."""
        with self._cond:
            for receipt in receipts:
                message_id = self._receipts.pop(receipt, None)
                if message_id is not None:
                    del self._messages[message_id]

    def release(self, receipt: str) -> None:
        """Make a delivery visible again now; a stale receipt is ignored."""
        self.hide(receipt, 0)

    def hide(self, receipt: str, seconds: int) -> None:
        """Hide a delivery for ``seconds`` from now; a stale receipt is ignored."""
        with self._cond:
            message_id = self._receipts.get(receipt)
            if message_id is not None:
                self._messages[message_id].visible_at = self._clock.monotonic() + max(0, seconds)
                self._cond.notify_all()

    def approximate_size(self) -> int:
        """Messages not yet acknowledged: visible, delayed or in flight."""
        with self._cond:
            return len(self._messages)

    def in_flight(self) -> int:
        """Messages received and hidden now, neither acknowledged nor released."""
        with self._cond:
            now = self._clock.monotonic()
            return sum(1 for m in self._messages.values() if m.receipt and m.visible_at > now)

    def _take(
        self, max_messages: int, visibility_timeout: int, dead: list[_Stored]
    ) -> list[Message]:
        """Deliver visible messages (lock held); those past ``max_receives`` go to ``dead``."""
        now = self._clock.monotonic()
        taken: list[Message] = []
        for stored in list(self._messages.values()):
            if len(taken) == max_messages:
                break
            if stored.visible_at > now:
                continue
            if stored.receipt is not None:
                del self._receipts[stored.receipt]
            if self._max_receives is not None and stored.receive_count >= self._max_receives:
                del self._messages[stored.message_id]
                dead.append(stored)
                continue
            stored.receive_count += 1
            stored.receipt = f"{stored.message_id}/{stored.receive_count}/{uuid.uuid4().hex}"
            stored.visible_at = now + visibility_timeout
            self._receipts[stored.receipt] = stored.message_id
            taken.append(
                Message(stored.body, stored.receipt, stored.message_id, stored.receive_count)
            )
        return taken

    def _accept(self, moved: list[_Stored]) -> None:
        """Take messages moved here as a dead-letter queue, visible at once."""
        with self._cond:
            now = self._clock.monotonic()
            for stored in moved:
                stored.receipt, stored.visible_at = None, now
                self._messages[stored.message_id] = stored
            self._cond.notify_all()
