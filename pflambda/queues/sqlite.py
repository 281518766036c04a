"""SQLiteQueue: a Queue with SQS's semantics in the embedded SQLite file.

The default queue outside Lambda (see :mod:`pflambda.aws.config`): continuations and
fanned-out items sent by ``pflambda run`` in one process wait in ``.pflambda/`` for
whatever process drains them next. Several named queues share one table (a work queue
and its dead-letter queue, say). Visibility is kept in wall-clock seconds from the
injected :class:`~pflambda.clock.Clock`, since the processes that share the file share
no monotonic clock; a receive is one ``BEGIN IMMEDIATE`` transaction, so two processes
never get the same delivery.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Final

from pflambda.clock import Clock, SystemClock
from pflambda.embedded import Database
from pflambda.queues._batch import check_receive, plan_batches
from pflambda.queues.base import Message

__all__ = ["SCHEMA", "SQLiteQueue"]

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        message_id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        visible_at REAL NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        receipt TEXT UNIQUE
    )""",
    "CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, id)",
)
"""One row per message not yet acknowledged; ``receipt`` is the latest delivery's."""

_POLL_SECONDS: Final = 0.05
"""How often a long poll on the real clock looks again (other processes send too)."""


class SQLiteQueue:
    """A :class:`~pflambda.queues.base.Queue` named ``name`` in a SQLite file.

    Like SQS and :class:`~pflambda.queues.memory.MemoryQueue`: a received message is
    hidden for its visibility timeout and comes back, with ``receive_count`` one higher,
    unless acknowledged; a message already delivered ``max_receives`` times moves to the
    queue named ``dead_letter`` instead of out; stale receipts are ignored.
    ``wait_seconds`` polls on the real clock and returns at once on any other.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str = "work",
        *,
        clock: Clock | None = None,
        max_receives: int | None = None,
        dead_letter: str | None = None,
        timeout: float | None = None,
    ) -> None:
        if (max_receives is None) != (dead_letter is None):
            raise ValueError("max_receives and dead_letter go together, as in a RedrivePolicy")
        if max_receives is not None and max_receives < 1:
            raise ValueError(f"max_receives must be at least 1, not {max_receives}")
        extra = {} if timeout is None else {"timeout": timeout}
        self.db = Database(path, SCHEMA, **extra)
        self.name = name
        self._clock = clock if clock is not None else SystemClock()
        self._blocking = isinstance(self._clock, SystemClock)
        self._max_receives = max_receives
        self._dead_letter = dead_letter
        self.send_calls = 0
        """How many batch calls ``send`` has made (what SendMessageBatch calls SQS would see)."""

    def send(self, bodies: Sequence[str], *, delay_seconds: int = 0) -> None:
        """Enqueue every body, in batches as SQS would take them; all or nothing."""
        batches = plan_batches(bodies, delay_seconds)
        visible_at = self._clock.now() + delay_seconds
        rows = [
            (self.name, str(uuid.uuid4()), body, visible_at) for batch in batches for body in batch
        ]
        with self.db.write() as conn:
            conn.executemany(
                "INSERT INTO messages (queue, message_id, body, visible_at) VALUES (?, ?, ?, ?)",
                rows,
            )
        self.send_calls += len(batches)

    def receive(
        self, max_messages: int = 10, *, wait_seconds: float = 0, visibility_timeout: int = 30
    ) -> list[Message]:
        """Up to ``max_messages`` visible messages, hidden for ``visibility_timeout``."""
        check_receive(max_messages, wait_seconds, visibility_timeout)
        deadline = self._clock.monotonic() + wait_seconds
        while True:
            messages = self._take(max_messages, visibility_timeout)
            remaining = deadline - self._clock.monotonic()
            if messages or not self._blocking or remaining <= 0:
                return messages
            self._clock.sleep(min(remaining, _POLL_SECONDS))

    def ack(self, receipts: Sequence[str]) -> None:
        """Delete these deliveries; unknown or stale receipts are ignored, as SQS does."""
        with self.db.write() as conn:
            conn.executemany(
                "DELETE FROM messages WHERE queue = ? AND receipt = ?",
                [(self.name, receipt) for receipt in receipts],
            )

    def release(self, receipt: str) -> None:
        """Make a delivery visible again now; a stale receipt is ignored."""
        self.hide(receipt, 0)

    def hide(self, receipt: str, seconds: int) -> None:
        """Hide a delivery for ``seconds`` from now; a stale receipt is ignored."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE messages SET visible_at = ? WHERE queue = ? AND receipt = ?",
                (self._clock.now() + max(0, seconds), self.name, receipt),
            )

    def approximate_size(self) -> int:
        """Messages not yet acknowledged: visible, delayed or in flight."""
        with self.db.errors():
            row = (
                self.db.connection()
                .execute("SELECT count(*) FROM messages WHERE queue = ?", (self.name,))
                .fetchone()
            )
        return int(row[0])

    def _take(self, max_messages: int, visibility_timeout: int) -> list[Message]:
        """Deliver visible messages in one transaction; those past ``max_receives`` move
        to the dead-letter queue."""
        now = self._clock.now()
        taken: list[Message] = []
        last = -1
        with self.db.write() as conn:
            while len(taken) < max_messages:
                rows = conn.execute(
                    "SELECT id, message_id, body, receive_count FROM messages "
                    "WHERE queue = ? AND id > ? AND visible_at <= ? ORDER BY id LIMIT ?",
                    (self.name, last, now, max_messages - len(taken)),
                ).fetchall()
                if not rows:
                    break
                for row_id, message_id, body, count in rows:
                    last = row_id
                    if self._max_receives is not None and count >= self._max_receives:
                        conn.execute(
                            "UPDATE messages SET queue = ?, receipt = NULL, visible_at = ? "
                            "WHERE id = ?",
                            (self._dead_letter, now, row_id),
                        )
                        continue
                    receipt = f"{message_id}/{count + 1}/{uuid.uuid4().hex}"
                    conn.execute(
                        "UPDATE messages SET receive_count = ?, receipt = ?, visible_at = ? "
                        "WHERE id = ?",
                        (count + 1, receipt, now + visibility_timeout, row_id),
                    )
                    taken.append(Message(body, receipt, message_id, count + 1))
        return taken
