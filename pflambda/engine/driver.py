"""Driving a run: step after step until it finishes, pauses, fans out or runs out of budget.

Each iteration checks the budget (step count, the Lambda deadline) and the cancel
flag, runs one node through the :class:`~pflambda.engine.stepper.Stepper`, and
commits the step (:mod:`pflambda.engine.checkpoints`). What ends the loop is handed
to :mod:`pflambda.engine.lifecycle` (pause, fail, finish, continue later).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pflambda import limits, observe, runcontext
from pflambda.engine import fanout, lease, lifecycle
from pflambda.engine.checkpoints import commit
from pflambda.engine.cursor import Frame
from pflambda.engine.fanout import FanInNotReady
from pflambda.engine.run import Budget, Live, RunOutcome, StepCallback, StepEvent, outcome
from pflambda.engine.state import SharedTracker
from pflambda.engine.stepper import Stepper
from pflambda.errors import (
    CheckpointConflict,
    InputRequired,
    InvalidRunState,
    PflambdaError,
    RetryableError,
)
from pflambda.graph import Graph
from pflambda.stores.base import FanOutNotFound, RunRecord

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = ["drive", "new_live"]

log = logging.getLogger("pflambda.engine")


async def drive(
    engine: Engine, live: Live, budget: Budget, on_step: StepCallback | None
) -> RunOutcome:
    """Drive ``live`` within ``budget``, telling ``on_step`` of every committed step."""
    with observe.bind(run_id=live.record.run_id, step=live.seq, node=live.cursor.position):
        try:
            return await _drive(engine, live, budget, on_step)
        except RetryableError as exc:
            # throttling, a transaction conflict, a 5xx: not the flow's fault. The run
            # stays running; the caller retries (a worker reports its message failed),
            # or, on the API path, the queue gets it after a backoff (see _retry_later):
            # failing that, the lease lapses and the sweeper does.
            log.warning("run %s: %s; left running for a retry", live.record.run_id, exc)
            if budget.hand_off:
                _retry_later(engine, live)
            return replace(outcome(live, stopped="retry"), error=str(exc))


def _retry_later(engine: Engine, live: Live) -> None:
    """Hand a run that met a retryable error to the queue, delayed by the first backoff,
    so it goes on within seconds rather than when this invocation's lease lapses (a
    blocking A2A send waits for it). Best effort: the store or queue may be what failed."""
    if live.driver is None or live.driver == lease.QUEUED:
        return
    try:
        lease.hand_off(engine, live, delay_seconds=limits.RETRY_DELAY_SECONDS)
    except PflambdaError as exc:
        log.warning(
            "run %s: not handed to the queue (%s); its lease will lapse", live.record.run_id, exc
        )


async def _drive(
    engine: Engine, live: Live, budget: Budget, on_step: StepCallback | None
) -> RunOutcome:
    steps = 0
    margin = engine.margin_ms if budget.margin_ms is None else budget.margin_ms
    while True:
        if budget.max_steps is not None and steps >= budget.max_steps:
            return _out_of_steps(engine, live, budget)
        context = budget.context
        if context is not None and context.get_remaining_time_in_millis() < margin:
            return lifecycle.continue_later(engine, live)
        if live.record.cancel_requested:  # learnt from the last write or read, not re-read
            return lifecycle.cancelled(engine, live)
        lease.renew(engine, live)
        live.artifacts.drop()  # chunks of a step that did not commit are emitted again
        started = engine.clock.monotonic()
        position = live.cursor.position
        observe.update(step=live.seq + 1, node=position)
        try:
            with runcontext.running(_run_context(live, position)):
                step = await live.stepper.step(live.cursor, live.shared)
        except InputRequired as ask:
            live.artifacts.drop()  # the node runs again with the reply: so do its chunks
            return lifecycle.pause(engine, live, ask)
        except FanInNotReady:
            lease.hand_off_quietly(engine, live)
            return outcome(live, stopped="fanout")
        except RetryableError:
            raise  # a store or queue the flow reached through the engine (fan-in)
        except Exception as exc:
            live.artifacts.drop()
            return lifecycle.fail(engine, live, position, exc)
        if step.fan_out is not None:
            return _spread(engine, live, step.node_id, step.fan_out, on_step)
        ran_ms = (engine.clock.monotonic() - started) * 1000
        try:
            event = commit(
                engine,
                live,
                step.node_id,
                step.action,
                finished=step.finished,
                result=step.result,
                timing=(ran_ms, step.retries),
            )
        except CheckpointConflict:
            return lifecycle.on_conflict(engine, live)
        except InvalidRunState:
            return lifecycle.on_conflict(engine, live)
        except RetryableError:
            raise  # the run stays running, its lease the trigger: the caller retries
        except PflambdaError as exc:
            return lifecycle.fail(engine, live, step.node_id or position, exc)
        steps += 1
        event = replace(
            event, duration_ms=(engine.clock.monotonic() - started) * 1000, retries=step.retries
        )
        _observe(engine, live, event)
        if on_step is not None:
            on_step(event)
        if step.finished:
            live.result = step.result
            lifecycle.notify(engine, live.record)
            return outcome(live)


def _out_of_steps(engine: Engine, live: Live, budget: Budget) -> RunOutcome:
    """The step budget is spent: hand the run to a worker, or let the lease lapse."""
    if budget.hand_off and lease.hand_off(engine, live):
        return outcome(live, stopped="max_steps")
    lease.lapse(engine, live)
    return outcome(live, stopped="max_steps")


def _run_context(live: Live, position: str | None) -> runcontext.RunContext:
    """What :func:`pflambda.current_run` says while this step runs."""
    record = live.record
    return runcontext.RunContext(
        run_id=record.run_id,
        step=live.seq + 1,
        node_id=position,
        flow=record.flow,
        **runcontext.a2a_ids(record.run_id, record.context_id, record.attrs),
        _emit=live.artifacts.emit,
    )


def _observe(engine: Engine, live: Live, event: StepEvent) -> None:
    """Log the committed step and tell the step listeners (metrics)."""
    log.info(
        "step %d committed: %s -> %r (%d bytes%s, %.1f ms)",
        event.seq,
        event.node_id,
        event.action,
        event.size,
        ", snapshot" if event.snapshot else "",
        event.duration_ms,
        extra={"node": event.node_id, "step": event.seq, "bytes": event.size},
    )
    for listener in engine.step_listeners:
        try:
            listener(live.record, event)
        except Exception:
            log.exception("step listener failed")


def _spread(
    engine: Engine,
    live: Live,
    node_id: str | None,
    items: list[Any],
    on_step: StepCallback | None,
) -> RunOutcome:
    """Commit the step that ends with the batch node's prep, then send its items."""
    frame = live.cursor.frames[-1]
    assert frame.pending is not None
    assert node_id is not None
    frame.pending["seq"] = live.seq + 1
    queued = lease.queued_fields(engine) if engine.queue is not None else None
    try:
        event = commit(engine, live, node_id, "fan-out", changes=queued)
    except (CheckpointConflict, InvalidRunState):
        return lifecycle.on_conflict(engine, live)
    except RetryableError:
        raise
    except PflambdaError as exc:
        return lifecycle.fail(engine, live, node_id, exc)
    if queued is not None:
        live.driver = lease.QUEUED
    fanout.dispatch(
        engine, live.record, live.seq, node_id=node_id, params=frame.params, items=items
    )
    event = replace(event, fan_out_items=len(items))
    _observe(engine, live, event)
    if on_step is not None:
        on_step(event)
    return outcome(live, stopped="fanout")


async def _fan_in(engine: Engine, live: Live, frame: Frame) -> list[Any]:
    """The results of a fanned-out node; re-sends its items if they were never sent."""
    assert frame.pending is not None
    seq = frame.pending["seq"]
    try:
        return await fanout.gather(engine, live.record.run_id, seq)
    except FanOutNotFound:
        node_id = frame.node_id or ""
        items = list(frame.pending["prep"])
        fanout.dispatch(engine, live.record, seq, node_id=node_id, params=frame.params, items=items)
        raise FanInNotReady(f"run {live.record.run_id}: items re-sent") from None


def new_live(engine: Engine, record: RunRecord, graph: Graph, shared: dict[Any, Any]) -> Live:
    """A run at its start, with a stepper wired to the engine's fan-out policy."""
    stepper = Stepper(graph)
    live = Live(
        record=record,
        graph=graph,
        stepper=stepper,
        tracker=SharedTracker(record.run_id, engine.blobs),
        cursor=stepper.start(shared),
        shared=shared,
        seq=0,
    )
    if engine.queue is not None:
        threshold = engine.fan_out_threshold
        stepper.fan_policy = lambda node, n: fanout.wants_fan_out(node, n, threshold)
    stepper.fan_in = lambda frame: _fan_in(engine, live, frame)

    def guard(node: Any) -> None:
        live.artifacts.guard(node)  # the log of the moment: loading a run replaces it

    stepper.guard = guard
    return live
