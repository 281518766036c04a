"""The SQS worker: continues runs, and runs fanned-out batch items.

A ``{"kind": "fanout", ...}`` message carries a chunk of a batch node's items
(see :mod:`pflambda.engine.fanout`). A ``{"kind": "continue", "run_id", "seq"}``
message continues a run that stopped near a Lambda deadline, whose fan-out finished,
or that the sweeper found stalled. The worker takes the run's lease in the message's
name (``msg:<message id>``) and resumes it from its latest checkpoint, whatever
``seq`` says, if the run is still running and nobody else drives it (a duplicate
delivery, or a message overtaken by another invocation, changes nothing).

Crash recovery: before driving, the worker hides its message until just after its
own deadline (ChangeMessageVisibility), so if the worker dies the message comes back
then -- not after the queue's 6x visibility timeout -- and, being the same message,
takes its own lease over at once. Failures are reported per record (Powertools'
partial batch response): a retryable error (throttling, a transaction conflict, a
5xx) leaves the run running and the message comes back after a backoff; anything
else is logged and acknowledged -- the run itself records it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pflambda import limits
from pflambda.aws.config import Settings
from pflambda.aws.invoke import (
    INTERNAL,
    Invoker,
    PinFailed,
    PinGone,
    default_invoker,
    internal_event,
    internal_of,
    targets,
)
from pflambda.engine import retention
from pflambda.engine.fanout import run_chunk
from pflambda.engine.runner import Engine, RunOutcome, StatusListener, StepEvent
from pflambda.errors import (
    InvalidRunState,
    PflambdaError,
    PinnedElsewhere,
    RetryableError,
    RunNotFound,
)
from pflambda.stores.base import LeaseHeld, RunRecord, RunStatus

__all__ = ["Delivery", "Worker", "handler"]

log = logging.getLogger("pflambda.worker")


class BadMessage(ValueError):
    """A queue message pflambda did not write; it goes to the DLQ after its retries."""


KindHandler = Callable[[Engine, dict[str, Any], int], None]
"""Handles one message of a kind registered with the worker: ``(engine, message,
receive count)``; raising reports the message failed (SQS delivers it again)."""

StepListener = Callable[[RunRecord, StepEvent], None]


class Worker:
    """Processes work messages with an engine (built from the environment by default).

    ``listeners`` and ``step_listeners`` are added to the engine the worker builds (not to
    one it is given, which has its own); ``kinds`` handles messages of other kinds than
    pflambda's own (e.g. ``"push"``, registered by the A2A layer).
    """

    def __init__(
        self,
        engine: Engine | None = None,
        listeners: Sequence[StatusListener] = (),
        *,
        step_listeners: Sequence[StepListener] = (),
        kinds: Mapping[str, KindHandler] | None = None,
        invoker: Invoker | None = None,
    ) -> None:
        self._engine, self._invoker = engine, invoker
        self.listeners, self.step_listeners = list(listeners), list(step_listeners)
        self.kinds: dict[str, KindHandler] = {retention.ORPHANS: _orphans, **(kinds or {})}
        # a batch whose every record failed is still a partial batch response (each
        # record comes back on its own visibility -- a backoff), not an invocation error
        self.processor = BatchProcessor(
            event_type=EventType.SQS, raise_on_entire_batch_failure=False
        )
        if engine is None and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            try:  # Lambda's init phase: build the engine and its DynamoDB client now
                _ = self.engine
            except Exception:
                log.debug("worker: prewarm failed; the first message will build")

    @property
    def engine(self) -> Engine:
        """The engine, made on first use (once per warm container).

        On Lambda it pins nothing: the worker serves no API requests, so a run pinned to
        a worker version could not take its replies (the agent functions pin both)."""
        if self._engine is None:
            self._engine = Settings.from_env().engine()
            if not (self._engine.site or "").startswith("local:"):
                self._engine.site = None
            self._engine.listeners.extend(self.listeners)
            self._engine.step_listeners.extend(self.step_listeners)
        return self._engine

    @property
    def invoker(self) -> Invoker:
        """Hands runs to their pinned versions (the process's default unless given)."""
        return self._invoker if self._invoker is not None else default_invoker()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda handler: an SQS event in, a partial batch response out -- or an
        internal event another version handed to this one (:mod:`pflambda.aws.invoke`)."""
        body = internal_of(event)
        if body is not None:
            self.handle_internal(body, context)
            return {"handled": body["kind"], "run_id": body["run_id"]}
        return process_partial_response(  # type: ignore[return-value]
            event=event,
            record_handler=self.handle_record,
            processor=self.processor,
            context=context,
        )

    def handle_record(self, record: SQSRecord, lambda_context: Any = None) -> None:
        """One message; raising marks it failed (SQS redelivers it)."""
        message = parse(record.body, self.kinds)
        count = int(record.attributes.approximate_receive_count or 1)
        if message["kind"] in self.kinds:
            self.kinds[message["kind"]](self.engine, message, count)
            return
        delivery = Delivery(record.message_id, record.receipt_handle, count)
        if message["kind"] == "fanout":
            try:
                self.run_chunk(message, count)
            except RetryableError:
                if self._requeue(message):
                    return
                self._back_off(delivery)
                raise
            return
        self.handle(message, lambda_context, delivery)

    def handle_internal(
        self, body: Mapping[str, Any], context: Any = None, *, margin_ms: int | None = None
    ) -> None:
        """An internal event handed here from another version (:mod:`pflambda.aws.invoke`):
        continue its run, or run its chunk, on this code -- never handing it on again."""
        hops = int(body["hops"])
        if body["kind"] == "chunk":
            self.run_chunk(dict(body["message"]), int(body.get("receive_count", 1)), hops)
            return
        message = {"kind": "continue", "run_id": body["run_id"], "seq": 0}
        driver = body.get("driver") if isinstance(body.get("driver"), str) else None
        self.handle(message, context, driver=driver, hops=hops, margin_ms=margin_ms)

    def run_chunk(self, message: dict[str, Any], count: int, hops: int = 0) -> None:
        """Run a fan-out chunk here, or hand it to the version its run is pinned to."""
        try:
            run_chunk(self.engine, message, count, pinned=hops == 0)
        except PinnedElsewhere as pinned:
            event = internal_event(
                "chunk",
                hops + 1,
                run_id=message["run_id"],
                agent=pinned.agent,
                message=message,
                receive_count=count,
            )
            if not self._forward(pinned, event):
                run_chunk(self.engine, message, count, pinned=False)

    def handle(
        self,
        message: dict[str, Any],
        context: Any = None,
        delivery: Delivery | None = None,
        *,
        driver: str | None = None,
        hops: int = 0,
        margin_ms: int | None = None,
    ) -> RunOutcome | None:
        """Continue the run a message names, if it still needs it.

        A run the deployed flow refuses is handed to the version it is pinned to (as an
        internal event of ``hops + 1``; one handed here already, ``hops`` > 0, is not
        handed on again); if that version is gone, the run fails naming the migrate
        command."""
        run_id = message["run_id"]
        engine = self.engine
        if driver is None and delivery is not None:
            driver = f"msg:{delivery.message_id}"
        self._hide(delivery, context)
        try:
            outcome = engine.resume(
                run_id, context=context, driver=driver, running_only=True, margin_ms=margin_ms
            )
            if outcome.stopped == "retry":
                raise RetryableError(f"run {run_id}: {outcome.error}")
            return outcome
        except LeaseHeld as held:
            log.info("run %s: %s; continuation dropped", run_id, held)
        except (InvalidRunState, RunNotFound) as gone:
            log.info("run %s: continuation dropped (%s)", run_id, gone)
        except RetryableError:
            self._back_off(delivery)
            raise
        except PinnedElsewhere as pinned:
            event = internal_event(
                "continue", hops + 1, run_id=run_id, agent=pinned.agent, driver=driver
            )
            if hops > 0 or not self._forward(pinned, event):
                self._fail(run_id, pinned)
        except Exception as exc:
            self._fail(run_id, exc)
        return None

    def _fail(self, run_id: str, exc: Exception) -> None:
        """A continuation that cannot go on (e.g. the flow changed shape under the run and
        no pinned version takes it): record why, so a human can decide."""
        log.error("run %s could not be continued", run_id, exc_info=exc)
        changes = {"status": RunStatus.FAILED, "error": f"cannot continue: {exc}"}
        try:
            self.engine.store.update_run(run_id, changes, expect_status={RunStatus.RUNNING})
        except InvalidRunState:
            log.info("run %s is no longer running; nothing recorded", run_id)

    def _forward(self, pinned: PinnedElsewhere, event: dict[str, Any]) -> bool:
        """Hand ``event`` to the version the run is pinned to; False if it is gone or
        refuses the invocation (the caller then refuses as before). A throttled invoke
        raises (SQS redelivers)."""
        run_id, target = event[INTERNAL]["run_id"], targets(pinned.pinned)[1]
        try:
            self.invoker.send(target, event)
        except (PinGone, PinFailed) as gone:  # deleted, or refused (too large, denied)
            log.warning("run %s: %s; not handed on", run_id, gone)
            return False
        log.info("run %s: handed to its pinned version %s", run_id, target)
        return True

    def _hide(self, delivery: Delivery | None, context: Any) -> None:
        """Keep the message hidden until just after this invocation's deadline."""
        queue = self.engine.queue
        if delivery is None or context is None or queue is None:
            return
        left = context.get_remaining_time_in_millis() / 1000
        try:
            queue.hide(delivery.receipt, math.ceil(left) + limits.VISIBILITY_GRACE_SECONDS)
        except PflambdaError:
            log.warning("could not shorten the message's visibility", exc_info=True)

    def _requeue(self, message: dict[str, Any]) -> bool:
        """A chunk that met a retryable error goes back as a NEW message, delayed by a
        backoff that grows with its ``retries``: its receive count -- which counts crashes
        and poison items towards the run's ``max_attempts`` -- is not spent on throttles.
        False when it cannot be sent (the caller then falls back to SQS redelivery)."""
        queue = self.engine.queue
        if queue is None:
            return False
        retries = int(message.get("retries", 0)) + 1
        seconds = min(2**retries, limits.RETRY_BACKOFF_MAX_SECONDS)
        body = json.dumps({**message, "retries": retries})
        try:
            queue.send([body], delay_seconds=seconds)
        except Exception:
            log.warning("could not re-queue the chunk; SQS will redeliver it", exc_info=True)
            return False
        log.info(
            "run %s: chunk %s met a retryable error; re-queued in %d s (retry %d)",
            message["run_id"],
            message["chunk"],
            seconds,
            retries,
        )
        return True

    def _back_off(self, delivery: Delivery | None) -> None:
        """A retryable failure: bring the message back after a backoff that grows."""
        queue = self.engine.queue
        if delivery is None or queue is None:
            return
        seconds = min(2**delivery.receive_count, limits.RETRY_BACKOFF_MAX_SECONDS)
        try:
            queue.hide(delivery.receipt, seconds)
        except PflambdaError:
            log.warning("could not set the retry backoff", exc_info=True)


@dataclass(frozen=True)
class Delivery:
    """Which SQS delivery a continuation came in (its lease is held in the message's name)."""

    message_id: str
    receipt: str
    receive_count: int


def _orphans(engine: Engine, message: dict[str, Any], receive_count: int) -> None:
    """An orphan check (:func:`pflambda.engine.retention.watch_orphans`)."""
    retention.reap_orphans(engine.store, engine.blobs, message["run_id"])


def parse(body: str, kinds: Collection[str] = ()) -> dict[str, Any]:
    """Validate a work message; :class:`BadMessage` for anything pflambda did not write.

    ``kinds`` are registered kinds: such a message needs a ``run_id`` string, the rest is
    its handler's to check."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadMessage(f"work message is not JSON: {exc}") from exc
    known = ("continue", "fanout", *kinds)
    if not isinstance(message, dict) or message.get("kind") not in known:
        raise BadMessage(f"unknown work message: {body[:200]!r}")
    if message["kind"] in kinds:
        if not isinstance(message.get("run_id"), str):
            raise BadMessage(f"work message needs a run_id string: {body[:200]!r}")
        return message
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
