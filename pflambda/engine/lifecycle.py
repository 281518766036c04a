"""A run's lifecycle: admitted, paused, failed, finished, cancelled -- one status write each.

Every status change is a conditional update that names the status it expects, so a
run never leaves a terminal status and two invocations never both move it; the
status listeners (push notifications) hear of every change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from pflambda.engine import lease, texts
from pflambda.engine.checkpoints import applied
from pflambda.engine.run import NO_REPLY, Live, RunOutcome, outcome
from pflambda.errors import InputRequired, InvalidRunState, PflambdaError
from pflambda.stores._item import check_size, run_item
from pflambda.stores.base import RunRecord, RunStatus

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = [
    "admit",
    "cancelled",
    "continue_later",
    "fail",
    "finish",
    "notify",
    "on_conflict",
    "pause",
    "set_status",
]

log = logging.getLogger("pflambda.engine")

_ERROR_CHARS = 4_000
"""A run's error keeps this many characters of the message (the log has all of it)."""


def set_status(
    engine: Engine, record: RunRecord, status: RunStatus, *, expect: set[RunStatus], **changes: Any
) -> RunRecord:
    """Move ``record`` to ``status`` if it is in one of ``expect``; tell the listeners."""
    fields = engine.status_fields(status)
    # refused whole before the write, whatever the store (DynamoDB's rule, not moto's)
    check_size(run_item(applied(record, {**fields, **changes})), f"run {record.run_id}")
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


def admit(record: RunRecord, reply: Any, *, running_only: bool = False) -> set[RunStatus]:
    """Check the run may be resumed (with or without a reply); the statuses the admitting
    write must find. Changes nothing: refusals happen before any write."""
    status = record.status
    if status in (RunStatus.COMPLETED, RunStatus.CANCELLED):
        raise InvalidRunState(f"run {record.run_id} is {status}: nothing to resume")
    if status == RunStatus.PAUSED:
        if reply is NO_REPLY:
            raise InvalidRunState(f"run {record.run_id} is waiting for input: {record.prompt!r}")
        return {RunStatus.PAUSED}
    if reply is not NO_REPLY:
        raise InvalidRunState(f"run {record.run_id} is {status}, not waiting for input")
    if status == RunStatus.FAILED and not running_only:
        return {RunStatus.FAILED}
    if status != RunStatus.RUNNING:
        raise InvalidRunState(f"run {record.run_id} is {status}: not continued")
    return {RunStatus.RUNNING}


def on_conflict(engine: Engine, live: Live) -> RunOutcome:
    """Our step was taken: by a cancel's marker (then cancel), or by another driver (stop).

    The one read of the run's record a cancel costs the driver."""
    record = engine.store.get_run(live.record.run_id)
    live.record = record
    if record.status == RunStatus.RUNNING and record.cancel_requested:
        return cancelled(engine, live)
    driver = live.driver
    ours = driver not in (None, lease.QUEUED) and record.lease_owner == driver
    if record.status == RunStatus.RUNNING and ours:
        # nobody else may write while we hold the lease: the step is our own commit,
        # applied though reported refused (a retried write); the queue goes on from it
        # at once, not when our lease lapses
        log.warning("run %s: step %d is already ours; handed on", record.run_id, live.seq + 1)
        lease.hand_off(engine, live)
        return outcome(live, stopped="conflict")
    log.warning("run %s: step %d was taken by another invocation", record.run_id, live.seq + 1)
    return outcome(live, stopped="conflict")


def cancelled(engine: Engine, live: Live) -> RunOutcome:
    """Record a cancel the driver learnt of (its lease goes with the status)."""
    try:
        live.record = set_status(
            engine, live.record, RunStatus.CANCELLED, expect={RunStatus.RUNNING}
        )
    except InvalidRunState:
        live.record = engine.store.get_run(live.record.run_id)
    return outcome(live)


def continue_later(engine: Engine, live: Live) -> RunOutcome:
    """Near the deadline: hand the run to a worker (when there is a queue) and stop."""
    if lease.hand_off(engine, live):
        log.info(
            "run %s: near the deadline at step %d, continuing in a worker",
            live.record.run_id,
            live.seq,
        )
    return outcome(live, stopped="deadline")


LINEAGE: Final = ("forked_from", "forked_at")
"""Summary keys a run keeps for life (set at fork); a pause or failure replaces the rest."""


def kept_summary(record: RunRecord, said: Any) -> dict[str, Any]:
    """The run's summary after a pause or failure: its lineage, plus what the signal
    said (a2a's ``AuthRequired``/``Rejected`` carry one; anything else says nothing)."""
    kept = {key: record.summary[key] for key in LINEAGE if key in record.summary}
    return kept | (dict(said) if isinstance(said, dict) else {})


def pause(engine: Engine, live: Live, ask: InputRequired) -> RunOutcome:
    """A node asked a human: record the question and stop."""
    prompt, ref = texts.place(engine.blobs, live.record.run_id, ask.prompt)
    changes: dict[str, Any] = {"prompt": prompt, "prompt_ref": ref, "input_key": ask.key}
    changes["summary"] = kept_summary(live.record, getattr(ask, "summary", None))
    live.prompt = ask.prompt
    live.record = set_status(
        engine, live.record, RunStatus.PAUSED, expect={RunStatus.RUNNING}, **changes
    )
    if live.record.cancel_requested:  # a cancel came while the node ran: honour it now
        live.record = set_status(
            engine, live.record, RunStatus.CANCELLED, expect={RunStatus.PAUSED}
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
    if len(message) > _ERROR_CHARS:  # the record stays bounded whatever a node raised
        message = message[:_ERROR_CHARS] + f"... ({len(message)} characters)"
    try:
        extra = {"summary": kept_summary(live.record, getattr(exc, "summary", None))}
        live.record = set_status(
            engine,
            live.record,
            RunStatus.FAILED,
            expect={RunStatus.RUNNING},
            error=message,
            **extra,
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
