"""The SQS worker: continues runs, and runs fanned-out batch items.

A ``{"kind": "fanout", ...}`` message carries a chunk of a batch node's items
(see :mod:`pflambda.engine.fanout`). A ``{"kind": "continue", "run_id", "seq"}``
message continues a run that stopped near a Lambda deadline or whose fan-out
finished. The worker resumes the run
if it is still running and nobody has committed past ``seq`` (a duplicate delivery,
or a message overtaken by another invocation, changes nothing). Failures are
reported per record (Powertools' partial batch response), so one bad message does
not redeliver the whole batch; a retryable error (throttling) is raised for SQS to
redeliver, anything else is logged and acknowledged -- the run itself records it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pflambda.aws.config import Settings
from pflambda.engine.fanout import run_chunk
from pflambda.engine.runner import Engine, RunOutcome, StatusListener
from pflambda.errors import RetryableError
from pflambda.stores.base import RunStatus

__all__ = ["Worker", "handler"]

log = logging.getLogger("pflambda.worker")


class BadMessage(ValueError):
    """A queue message pflambda did not write; it goes to the DLQ after its retries."""


class Worker:
    """Processes work messages with an engine (built from the environment by default)."""

    def __init__(
        self, engine: Engine | None = None, listeners: Sequence[StatusListener] = ()
    ) -> None:
        self._engine = engine
        self.listeners = list(listeners)
        self.processor = BatchProcessor(event_type=EventType.SQS)

    @property
    def engine(self) -> Engine:
        """The engine, made on first use (once per warm container)."""
        if self._engine is None:
            self._engine = Settings.from_env().engine()
            self._engine.listeners.extend(self.listeners)
        return self._engine

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda handler: an SQS event in, a partial batch response out."""
        return process_partial_response(  # type: ignore[return-value]
            event=event,
            record_handler=self.handle_record,
            processor=self.processor,
            context=context,
        )

    def handle_record(self, record: SQSRecord, lambda_context: Any = None) -> None:
        """One message; raising marks it failed (SQS redelivers it)."""
        message = parse(record.body)
        if message["kind"] == "fanout":
            count = int(record.attributes.approximate_receive_count or 1)
            run_chunk(self.engine, message, count)
            return
        self.handle(message, lambda_context)

    def handle(self, message: dict[str, Any], context: Any = None) -> RunOutcome | None:
        """Continue the run a message names, if it still needs it."""
        run_id, seq = message["run_id"], message["seq"]
        engine = self.engine
        record = engine.store.get_run(run_id)
        if record.status != RunStatus.RUNNING:
            log.info("run %s is %s: continuation dropped", run_id, record.status)
            return None
        if next(iter(engine.store.list_checkpoints(run_id, after=seq)), None) is not None:
            log.info("run %s already moved past step %d: continuation dropped", run_id, seq)
            return None
        try:
            return engine.resume(run_id, context=context)
        except RetryableError:
            raise
        except Exception as exc:
            # e.g. the flow changed shape under the run: record it, so a human can decide
            log.exception("run %s could not be continued", run_id)
            changes = {"status": RunStatus.FAILED, "error": f"cannot continue: {exc}"}
            engine.store.update_run(run_id, changes, expect_status={RunStatus.RUNNING})
            return None


def parse(body: str) -> dict[str, Any]:
    """Validate a work message; :class:`BadMessage` for anything pflambda did not write."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadMessage(f"work message is not JSON: {exc}") from exc
    if not isinstance(message, dict) or message.get("kind") not in ("continue", "fanout"):
        raise BadMessage(f"unknown work message: {body[:200]!r}")
    if message["kind"] == "fanout":
        needed = {"run_id": str, "seq": int, "node": str, "chunk": int, "items": list}
        if any(not isinstance(message.get(k), t) for k, t in needed.items()):
            raise BadMessage(f"malformed fan-out message: {body[:200]!r}")
        return message
    if not isinstance(message.get("run_id"), str) or not isinstance(message.get("seq"), int):
        raise BadMessage(f"work message needs a run_id string and a seq number: {body[:200]!r}")
    return message


handler = Worker()
"""The default worker, configured from the environment."""
