"""Lambda's SQS trigger, locally: a thread that feeds the work queue to the worker.

:class:`SqsPoller` does what the event source mapping does: long-poll, invoke the
worker with an SQS event (the shape of ``tests/events/sqs_continue.json``), delete
the messages the partial batch response does not list as failed. Every local
invocation, HTTP or SQS, gets a :class:`LocalContext` with Lambda's names and a
deadline that counts down.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pflambda.clock import Clock, SystemClock
from pflambda.queues.base import Message, Queue

__all__ = ["LocalContext", "SqsPoller", "Worker", "sqs_event"]

log = logging.getLogger("pflambda.local")

ACCOUNT, REGION = "123456789012", "us-east-1"
"""The account and region local events claim to come from."""
WORKER_TIMEOUT_SECONDS = 900.0
"""Lambda's longest timeout: what the worker's context counts down from."""
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:pflambda-work"

Worker = Callable[[dict[str, Any], Any], Any]
"""A Lambda handler for SQS events (a partial batch response out)."""


class LocalContext:
    """A stand-in for the Lambda context: the usual names, and a deadline counting down."""

    def __init__(
        self,
        timeout_seconds: float,
        function_name: str = "pflambda-local",
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._deadline = self._clock.monotonic() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation's timeout (never negative)."""
        return max(0, int((self._deadline - self._clock.monotonic()) * 1000))


def sqs_event(messages: Sequence[Message], queue_arn: str = QUEUE_ARN) -> dict[str, Any]:
    """The SQS event Lambda would deliver for these messages."""
    now = str(int(time.time() * 1000))
    region = queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else REGION
    records = [
        {
            "messageId": m.message_id,
            "receiptHandle": m.receipt,
            "body": m.body,
            "attributes": {
                "ApproximateReceiveCount": str(m.receive_count),
                "SentTimestamp": now,
                "SenderId": ACCOUNT,
                "ApproximateFirstReceiveTimestamp": now,
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(m.body.encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        for m in messages
    ]
    return {"Records": records}


class SqsPoller:
    """Lambda's SQS trigger in a thread: receive a batch, invoke the worker, delete.

    Messages the worker's partial batch response lists in ``batchItemFailures`` are
    left alone and come back after ``visibility_timeout`` (locally short, so retries
    are seen); so does the whole batch if the worker raises -- anything, even a
    ``BaseException`` such as ``InputRequired`` -- or answers nonsense. Only
    ``KeyboardInterrupt`` and ``SystemExit`` end the thread.
    """

    def __init__(
        self,
        queue: Queue,
        worker: Worker,
        *,
        worker_timeout: float = WORKER_TIMEOUT_SECONDS,
        visibility_timeout: int = 30,
        wait_seconds: float = 1.0,
        batch_size: int = 10,
        queue_arn: str = QUEUE_ARN,
        error_pause: float = 1.0,
    ) -> None:
        self.queue, self.worker, self.queue_arn = queue, worker, queue_arn
        self.worker_timeout, self.visibility_timeout = worker_timeout, visibility_timeout
        self.wait_seconds, self.batch_size, self.error_pause = wait_seconds, batch_size, error_pause
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SqsPoller:
        """Poll in a daemon thread until :meth:`stop`; returns ``self``."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pflambda-sqs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the batch in hand (if any) and the current long poll, then return."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def poll_once(self) -> int:
        """One receive and, if it got messages, one invocation; how many it got."""
        messages = self.queue.receive(
            self.batch_size,
            wait_seconds=self.wait_seconds,
            visibility_timeout=self.visibility_timeout,
        )
        if not messages:
            return 0
        context = LocalContext(self.worker_timeout, "pflambda-worker")
        try:
            response = self.worker(sqs_event(messages, self.queue_arn), context)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # InputRequired, GeneratorExit...: Lambda would fail the batch
            log.exception("the worker failed a batch of %d; it will be redelivered", len(messages))
            return len(messages)
        failed = _failures(response, messages)
        if failed is None:
            log.error("the worker answered %r; the whole batch will be redelivered", response)
            return len(messages)
        done = [m.receipt for m in messages if m.message_id not in failed]
        if done:
            self.queue.ack(done)
        if failed:
            log.warning(
                "%d of %d messages failed; they will be redelivered", len(failed), len(messages)
            )
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # the thread is Lambda's trigger: it never dies of a batch
                log.exception("polling the work queue failed; trying again")
                self._stop.wait(self.error_pause)


def _failures(response: Any, messages: Sequence[Message]) -> set[str] | None:
    """The failed message ids of a partial batch response; None if it is not one.

    As Lambda does, an identifier that names no message of the batch fails it all.
    """
    if response is None:
        return set()
    items = response.get("batchItemFailures", []) if isinstance(response, Mapping) else None
    if not isinstance(items, list):
        return None
    known = {m.message_id for m in messages}
    failed: set[str] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(ident, str) or ident not in known:
            return None
        failed.add(ident)
    return failed
