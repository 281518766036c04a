"""A run's lifecycle: admitted, paused, failed, finished, cancelled -- one status write each.

Every status change is a conditional update that names the status it expects, so a
run never leaves a terminal status and two invocations never both move it; the
status listeners (push notifications) hear of every change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pflambda.engine.run import NO_REPLY, Live, RunOutcome, continuation, outcome
from pflambda.errors import InputRequired, InvalidRunState, PflambdaError
from pflambda.stores.base import RunRecord, RunStatus

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = [
    "admit",
    "check_cancel",
    "continue_later",
    "fail",
    "finish",
    "notify",
    "pause",
    "set_status",
]

log = logging.getLogger("pflambda.engine")


def set_status(
    engine: Engine, record: RunRecord, status: RunStatus, *, expect: set[RunStatus], **changes: Any
) -> RunRecord:
    """Move ``record`` to ``status`` if it is in one of ``expect``; tell the listeners."""
    fields = {"status": status, "updated_at": engine.clock.now(), "expires_at": engine.expiry()}
    updated = engine.store.update_run(record.run_id, {**fields, **changes}, expect_status=expect)
    notify(engine, updated)
    return updated


def notify(engine: Engine, record: RunRecord) -> None:
    """Tell every status listener of ``record``; a failing listener is logged, not raised."""
    for listener in engine.listeners:
        try:
            listener(record)
        except Exception:
            log.exception("run %s: status listener failed", record.run_id)


def admit(engine: Engine, record: RunRecord, reply: Any) -> RunRecord:
    """Check the run may be resumed (with or without a reply) and mark it running."""
    status = record.status
    if status in (RunStatus.COMPLETED, RunStatus.CANCELLED):
        raise InvalidRunState(f"run {record.run_id} is {status}: nothing to resume")
    if status == RunStatus.PAUSED:
        if reply is NO_REPLY:
            raise InvalidRunState(f"run {record.run_id} is waiting for input: {record.prompt!r}")
        return set_status(engine, record, RunStatus.RUNNING, expect={RunStatus.PAUSED}, prompt=None)
    if reply is not NO_REPLY:
        raise InvalidRunState(f"run {record.run_id} is {status}, not waiting for input")
    if status == RunStatus.FAILED:
        return set_status(engine, record, RunStatus.RUNNING, expect={RunStatus.FAILED}, error=None)
    return record


def check_cancel(engine: Engine, live: Live) -> RunOutcome | None:
    """Stop if the run was cancelled (or moved on) since it was loaded."""
    record = engine.store.get_run(live.record.run_id)
    live.record = record
    if record.status != RunStatus.RUNNING:
        return outcome(live, stopped="conflict")
    if not record.cancel_requested:
        return None
    live.record = set_status(engine, record, RunStatus.CANCELLED, expect={RunStatus.RUNNING})
    return outcome(live)


def continue_later(engine: Engine, live: Live) -> RunOutcome:
    """Near the deadline: hand the run to a worker (when there is a queue) and stop."""
    if engine.queue is None:
        return outcome(live, stopped="deadline")
    engine.queue.send([continuation(live.record.run_id, live.seq)])
    log.info(
        "run %s: near the deadline at step %d, continuing in a worker",
        live.record.run_id,
        live.seq,
    )
    return outcome(live, stopped="deadline")


def pause(engine: Engine, live: Live, ask: InputRequired) -> RunOutcome:
    """A node asked a human: record the question and stop."""
    changes = {"prompt": ask.prompt, "input_key": ask.key}
    live.record = set_status(
        engine, live.record, RunStatus.PAUSED, expect={RunStatus.RUNNING}, **changes
    )
    return outcome(live)


def fail(engine: Engine, live: Live, node_id: str | None, exc: BaseException) -> RunOutcome:
    """Record the run failed, naming the node and the error."""
    where = f"node {node_id!r}" if node_id else "flow"
    message = (
        str(exc)
        if isinstance(exc, PflambdaError)
        else f"{where} raised {type(exc).__name__}: {exc}"
    )
    log.error("run %s failed: %s", live.record.run_id, message, exc_info=exc)
    try:
        live.record = set_status(
            engine, live.record, RunStatus.FAILED, expect={RunStatus.RUNNING}, error=message
        )
    except InvalidRunState:
        live.record = engine.store.get_run(live.record.run_id)
    return outcome(live)


def finish(engine: Engine, live: Live, result: Any) -> RunOutcome:
    """Record the run completed with the root flow's ``result``."""
    live.result = result
    try:
        live.record = set_status(
            engine, live.record, RunStatus.COMPLETED, expect={RunStatus.RUNNING}
        )
    except InvalidRunState:
        live.record = engine.store.get_run(live.record.run_id)
    return outcome(live)
