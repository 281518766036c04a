"""The durable runner: start, resume, pause, cancel and fork runs, one checkpoint per node.

A run goes one step at a time (:class:`~pflambda.engine.stepper.Stepper`); after each
step the changed part of shared and the cursor are written as checkpoint ``seq + 1``
with a conditional put, so of two invocations racing on one run only one advances it
(the other gets ``CheckpointConflict`` and stops, changing nothing). Resuming reads
the latest snapshot and the deltas after it -- never the run's history.

``exec`` is at-least-once (a crash before the checkpoint re-runs the node); ``post``'s
effects on shared are committed exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pflambda import limits, observe
from pflambda.blobs.base import BlobStore
from pflambda.clock import Clock, SystemClock
from pflambda.engine import codec, fanout
from pflambda.engine.cursor import Cursor, Frame, decode_cursor, encode_cursor
from pflambda.engine.fanout import FanInNotReady
from pflambda.engine.flowref import FlowSource, load_flow, ref_of
from pflambda.engine.state import SharedTracker
from pflambda.engine.stepper import Stepper
from pflambda.errors import (
    CheckpointConflict,
    FingerprintMismatch,
    InputRequired,
    InvalidRunState,
    PflambdaError,
)
from pflambda.graph import Graph, describe
from pflambda.queues.base import Queue
from pflambda.stores.base import (
    TERMINAL,
    Checkpoint,
    FanOutNotFound,
    RunRecord,
    RunStatus,
    Store,
)

__all__ = ["NO_REPLY", "Deadline", "Engine", "RunOutcome", "StepEvent", "continuation"]

log = logging.getLogger("pflambda.engine")

NO_REPLY: Any = object()
"""Default of ``reply``: resume without answering a question."""


class Deadline(Protocol):
    """What the runner needs of a Lambda context."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds before the invocation is killed."""
        ...


@dataclass(frozen=True)
class StepEvent:
    """One committed checkpoint, for progress output and streaming."""

    run_id: str
    seq: int
    node_id: str | None
    action: Any
    size: int
    snapshot: bool
    duration_ms: float
    finished: bool
    retries: int = 0
    """Attempts beyond the first that the node's ``exec`` needed."""
    fan_out_items: int = 0
    """Items this step sent to the workers (a fanned-out batch node)."""


@dataclass
class RunOutcome:
    """Where a run stands after ``start``/``resume`` returned."""

    run_id: str
    status: RunStatus
    seq: int
    shared: dict[Any, Any]
    result: Any = None
    """The root flow's return value, once completed."""
    prompt: str | None = None
    """The question of a paused run."""
    stopped: str | None = None
    """Why a still-running run returned: ``deadline``, ``max_steps`` or ``conflict``."""
    error: str | None = None


def continuation(run_id: str, seq: int) -> str:
    """The queue message that tells a worker to continue ``run_id`` from ``seq``."""
    return json.dumps({"kind": "continue", "run_id": run_id, "seq": seq})


@dataclass
class _Live:
    """A run loaded in this process."""

    record: RunRecord
    graph: Graph
    stepper: Stepper
    tracker: SharedTracker
    cursor: Cursor
    shared: dict[Any, Any]
    seq: int
    result: Any = None
    events: list[StepEvent] = field(default_factory=list)


@dataclass(frozen=True)
class _Budget:
    """How far one call may drive a run."""

    context: Deadline | None
    max_steps: int | None
    margin_ms: int | None


StepCallback = Callable[[StepEvent], None]
StatusListener = Callable[[RunRecord], None]


class Engine:
    """Runs flows durably against a Store, a BlobStore and (for continuations) a Queue."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        queue: Queue | None = None,
        *,
        clock: Clock | None = None,
        margin_ms: int = limits.DEADLINE_MARGIN_MS,
        ttl_days: float = limits.DEFAULT_RUN_TTL_DAYS,
        listeners: Sequence[StatusListener] = (),
        fan_out_threshold: int | None = None,
        items_per_message: int = 10,
        max_attempts: int = 5,
    ) -> None:
        self.store, self.blobs, self.queue = store, blobs, queue
        self.clock = clock or SystemClock()
        self.margin_ms, self.ttl_days = margin_ms, ttl_days
        self.listeners = list(listeners)
        """Called with the new record after every status change (e.g. push notifications)."""
        self.step_listeners: list[Callable[[RunRecord, StepEvent], None]] = []
        """Called after every committed step (e.g. metrics)."""
        self.fan_out_threshold = fan_out_threshold
        """Batch nodes without a ``fan_out`` attribute fan out from this many items."""
        self.items_per_message, self.max_attempts = items_per_message, max_attempts

    # -- public API -----------------------------------------------------------------

    def start(
        self, flow: FlowSource, shared: dict[Any, Any] | None = None, **kw: Any
    ) -> RunOutcome:
        """Start a run of ``flow`` and drive it (see :meth:`start_async`)."""
        return _run_sync(self.start_async(flow, shared, **kw))

    def resume(self, run_id: str, **kw: Any) -> RunOutcome:
        """Continue a run from its latest checkpoint (see :meth:`resume_async`)."""
        return _run_sync(self.resume_async(run_id, **kw))

    async def start_async(
        self,
        flow: FlowSource,
        shared: dict[Any, Any] | None = None,
        *,
        run_id: str | None = None,
        owner: str | None = None,
        context_id: str | None = None,
        attrs: dict[str, Any] | None = None,
        context: Deadline | None = None,
        max_steps: int | None = None,
        on_step: StepCallback | None = None,
        margin_ms: int | None = None,
    ) -> RunOutcome:
        """Create run ``run_id`` (a new uuid by default) with its initial checkpoint, then
        drive it until it completes, fails, pauses, or stops for a deadline/step budget."""
        if shared is not None and not isinstance(shared, dict):
            raise TypeError(f"shared must be a dict, got {type(shared).__name__}")
        ref = ref_of(flow)
        graph = describe(load_flow(ref))
        now = self.clock.now()
        record = RunRecord(
            run_id=run_id or str(uuid.uuid4()),
            flow=ref,
            fingerprint=graph.fingerprint(),
            status=RunStatus.RUNNING,
            created_at=now,
            updated_at=now,
            owner=owner,
            context_id=context_id,
            expires_at=self._expiry(),
            attrs=dict(attrs or {}),
        )
        live = self._new_live(record, graph, {} if shared is None else shared)
        current = live.tracker.encode_shared(live.shared, None)
        body, refs = live.tracker.build(current, encode_cursor(live.cursor), snapshot=True)
        self.store.create_run(record)
        self.store.put_checkpoint(self._checkpoint(record, 0, body, True))
        live.tracker.commit(current, refs, len(body), True)
        self._notify(record)
        return await self._drive(live, _Budget(context, max_steps, margin_ms), on_step)

    async def resume_async(
        self,
        run_id: str,
        *,
        reply: Any = NO_REPLY,
        context: Deadline | None = None,
        max_steps: int | None = None,
        allow_changed_flow: bool = False,
        on_step: StepCallback | None = None,
        margin_ms: int | None = None,
    ) -> RunOutcome:
        """Continue ``run_id`` from its latest checkpoint.

        A paused run needs ``reply``: it is stored at the key the node asked for and the
        node runs again. A failed run is retried from its last checkpoint. A run whose
        flow changed shape since it started is refused unless ``allow_changed_flow``.
        """
        record = self.store.get_run(run_id)
        record = self._admit(record, reply)
        live = self._load(record, allow_changed_flow)
        if reply is not NO_REPLY:
            self._store_reply(live, reply)
        if live.cursor.done:
            return self._finish(live, live.result)
        return await self._drive(live, _Budget(context, max_steps, margin_ms), on_step)

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run: a paused run at once, a running one at its next node boundary."""
        record = self.store.get_run(run_id)
        if record.status in TERMINAL:
            raise InvalidRunState(f"run {run_id} is already {record.status}")
        if record.status == RunStatus.PAUSED:
            return self.set_status(record, RunStatus.CANCELLED, expect={RunStatus.PAUSED})
        return self.store.update_run(
            run_id,
            {"cancel_requested": True, "updated_at": self.clock.now()},
            expect_status={RunStatus.RUNNING},
        )

    def fork(self, run_id: str, at: int, *, new_run_id: str | None = None) -> RunRecord:
        """A new run whose initial state is checkpoint ``at`` of ``run_id``."""
        source = self.store.get_run(run_id)
        ckpts = self.store.load_checkpoints(run_id, at)
        if not ckpts or ckpts[-1].seq != at:
            raise InvalidRunState(f"run {run_id} has no checkpoint {at}")
        shared, body = SharedTracker(run_id, self.blobs).load(ckpts)
        now = self.clock.now()
        record = RunRecord(
            run_id=new_run_id or str(uuid.uuid4()),
            flow=source.flow,
            fingerprint=source.fingerprint,
            status=RunStatus.RUNNING,
            created_at=now,
            updated_at=now,
            owner=source.owner,
            context_id=source.context_id,
            expires_at=self._expiry(),
            attrs={"forked_from": run_id, "forked_at": at},
        )
        tracker = SharedTracker(record.run_id, self.blobs)
        current = tracker.encode_shared(shared, None)
        data, _ = tracker.build(current, body.cursor, snapshot=True, result=body.result)
        self.store.create_run(record)
        self.store.put_checkpoint(self._checkpoint(record, 0, data, True))
        return record

    def state(self, run_id: str, at: int | None = None) -> tuple[dict[Any, Any], Cursor, int]:
        """Shared, cursor and step number at checkpoint ``at`` (default: the latest)."""
        ckpts = self.store.load_checkpoints(run_id, at)
        if not ckpts:
            raise InvalidRunState(f"run {run_id} has no checkpoint{'' if at is None else f' {at}'}")
        shared, body = SharedTracker(run_id, self.blobs).load(ckpts)
        return shared, decode_cursor(body.cursor), ckpts[-1].seq

    # -- driving a run --------------------------------------------------------------

    async def _drive(
        self, live: _Live, budget: _Budget, on_step: StepCallback | None
    ) -> RunOutcome:
        with observe.bind(run_id=live.record.run_id, step=live.seq, node=live.cursor.position):
            return await self._drive_bound(live, budget, on_step)

    async def _drive_bound(
        self, live: _Live, budget: _Budget, on_step: StepCallback | None
    ) -> RunOutcome:
        steps = 0
        margin = self.margin_ms if budget.margin_ms is None else budget.margin_ms
        while True:
            if budget.max_steps is not None and steps >= budget.max_steps:
                return self._outcome(live, stopped="max_steps")
            context = budget.context
            if context is not None and context.get_remaining_time_in_millis() < margin:
                return self._continue_later(live)
            stop = self._check_cancel(live)
            if stop is not None:
                return stop
            started = self.clock.monotonic()
            position = live.cursor.position
            observe.update(step=live.seq + 1, node=position)
            try:
                step = await live.stepper.step(live.cursor, live.shared)
            except InputRequired as ask:
                return self._pause(live, ask)
            except FanInNotReady:
                return self._outcome(live, stopped="fanout")
            except Exception as exc:
                return self._fail(live, position, exc)
            if step.fan_out is not None:
                return self._spread(live, step.node_id, step.fan_out, on_step)
            try:
                event = self._commit(live, step.node_id, step.action, step.finished, step.result)
            except CheckpointConflict:
                log.warning(
                    "run %s: step %d was committed by another invocation",
                    live.record.run_id,
                    live.seq + 1,
                )
                return self._outcome(live, stopped="conflict")
            except PflambdaError as exc:
                return self._fail(live, step.node_id or position, exc)
            steps += 1
            event = replace(
                event,
                duration_ms=(self.clock.monotonic() - started) * 1000,
                retries=step.retries,
            )
            self._observe(live, event)
            if on_step is not None:
                on_step(event)
            if step.finished:
                return self._finish(live, step.result)

    def _observe(self, live: _Live, event: StepEvent) -> None:
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
        for listener in self.step_listeners:
            try:
                listener(live.record, event)
            except Exception:
                log.exception("step listener failed")

    def _commit(
        self, live: _Live, node_id: str | None, action: Any, finished: bool, result: Any
    ) -> StepEvent:
        current = live.tracker.encode_shared(live.shared, node_id)
        snap = live.tracker.want_snapshot()
        encoded_result = codec.encode(result, path="result") if finished else None
        body, refs = live.tracker.build(
            current, encode_cursor(live.cursor), snapshot=snap, result=encoded_result
        )
        seq = live.seq + 1
        label = action if action is None or isinstance(action, str) else repr(action)
        self.store.put_checkpoint(
            self._checkpoint(live.record, seq, body, snap, node=node_id, action=label)
        )
        live.tracker.commit(current, refs, len(body), snap)
        live.seq = seq
        return StepEvent(live.record.run_id, seq, node_id, action, len(body), snap, 0.0, finished)

    def _spread(
        self, live: _Live, node_id: str | None, items: list[Any], on_step: StepCallback | None
    ) -> RunOutcome:
        """Commit the step that ends with the batch node's prep, then send its items."""
        frame = live.cursor.frames[-1]
        assert frame.pending is not None
        assert node_id is not None
        frame.pending["seq"] = live.seq + 1
        try:
            event = self._commit(live, node_id, "fan-out", False, None)
        except CheckpointConflict:
            return self._outcome(live, stopped="conflict")
        except PflambdaError as exc:
            return self._fail(live, node_id, exc)
        fanout.dispatch(
            self, live.record, live.seq, node_id=node_id, params=frame.params, items=items
        )
        event = replace(event, fan_out_items=len(items))
        self._observe(live, event)
        if on_step is not None:
            on_step(event)
        return self._outcome(live, stopped="fanout")

    async def _fan_in(self, live: _Live, frame: Frame) -> list[Any]:
        """The results of a fanned-out node; re-sends its items if they were never sent."""
        assert frame.pending is not None
        seq = frame.pending["seq"]
        try:
            return await fanout.gather(self, live.record.run_id, seq)
        except FanOutNotFound:
            node_id = frame.node_id or ""
            items = list(frame.pending["prep"])
            fanout.dispatch(
                self, live.record, seq, node_id=node_id, params=frame.params, items=items
            )
            raise FanInNotReady(f"run {live.record.run_id}: items re-sent") from None

    def _check_cancel(self, live: _Live) -> RunOutcome | None:
        record = self.store.get_run(live.record.run_id)
        live.record = record
        if record.status != RunStatus.RUNNING:
            return self._outcome(live, stopped="conflict")
        if not record.cancel_requested:
            return None
        live.record = self.set_status(record, RunStatus.CANCELLED, expect={RunStatus.RUNNING})
        return self._outcome(live)

    def _continue_later(self, live: _Live) -> RunOutcome:
        if self.queue is None:
            return self._outcome(live, stopped="deadline")
        self.queue.send([continuation(live.record.run_id, live.seq)])
        log.info(
            "run %s: near the deadline at step %d, continuing in a worker",
            live.record.run_id,
            live.seq,
        )
        return self._outcome(live, stopped="deadline")

    def _pause(self, live: _Live, ask: InputRequired) -> RunOutcome:
        changes = {"prompt": ask.prompt, "input_key": ask.key}
        live.record = self.set_status(
            live.record, RunStatus.PAUSED, expect={RunStatus.RUNNING}, **changes
        )
        return self._outcome(live)

    def _fail(self, live: _Live, node_id: str | None, exc: BaseException) -> RunOutcome:
        where = f"node {node_id!r}" if node_id else "flow"
        message = (
            str(exc)
            if isinstance(exc, PflambdaError)
            else f"{where} raised {type(exc).__name__}: {exc}"
        )
        log.error("run %s failed: %s", live.record.run_id, message, exc_info=exc)
        try:
            live.record = self.set_status(
                live.record, RunStatus.FAILED, expect={RunStatus.RUNNING}, error=message
            )
        except InvalidRunState:
            live.record = self.store.get_run(live.record.run_id)
        return self._outcome(live)

    def _finish(self, live: _Live, result: Any) -> RunOutcome:
        live.result = result
        try:
            live.record = self.set_status(
                live.record, RunStatus.COMPLETED, expect={RunStatus.RUNNING}
            )
        except InvalidRunState:
            live.record = self.store.get_run(live.record.run_id)
        return self._outcome(live)

    # -- loading --------------------------------------------------------------------

    def _admit(self, record: RunRecord, reply: Any) -> RunRecord:
        """Check the run may be resumed (with or without a reply) and mark it running."""
        status = record.status
        if status in (RunStatus.COMPLETED, RunStatus.CANCELLED):
            raise InvalidRunState(f"run {record.run_id} is {status}: nothing to resume")
        if status == RunStatus.PAUSED:
            if reply is NO_REPLY:
                raise InvalidRunState(
                    f"run {record.run_id} is waiting for input: {record.prompt!r}"
                )
            return self.set_status(
                record, RunStatus.RUNNING, expect={RunStatus.PAUSED}, prompt=None
            )
        if reply is not NO_REPLY:
            raise InvalidRunState(f"run {record.run_id} is {status}, not waiting for input")
        if status == RunStatus.FAILED:
            return self.set_status(record, RunStatus.RUNNING, expect={RunStatus.FAILED}, error=None)
        return record

    def _load(self, record: RunRecord, allow_changed_flow: bool) -> _Live:
        graph = describe(load_flow(record.flow))
        if graph.fingerprint() != record.fingerprint:
            if not allow_changed_flow:
                raise FingerprintMismatch(
                    f"flow {record.flow} changed shape since run {record.run_id} started "
                    f"({record.fingerprint} -> {graph.fingerprint()}); "
                    "resume with allow_changed_flow to continue anyway"
                )
            record = self.store.update_run(record.run_id, {"fingerprint": graph.fingerprint()})
        ckpts = self.store.load_checkpoints(record.run_id)
        if not ckpts:
            raise InvalidRunState(f"run {record.run_id} has no checkpoints")
        live = self._new_live(record, graph, {})
        live.shared, body = live.tracker.load(ckpts)
        live.cursor = decode_cursor(body.cursor)
        live.seq = ckpts[-1].seq
        live.result = codec.decode(body.result)
        if live.cursor.frames:
            graph.root.set_params(live.cursor.frames[0].own_params)
        return live

    def _store_reply(self, live: _Live, reply: Any) -> None:
        key = live.record.input_key or "input"
        live.shared[key] = reply
        self._commit(live, None, None, finished=False, result=None)

    def _new_live(self, record: RunRecord, graph: Graph, shared: dict[Any, Any]) -> _Live:
        stepper = Stepper(graph)
        live = _Live(
            record=record,
            graph=graph,
            stepper=stepper,
            tracker=SharedTracker(record.run_id, self.blobs),
            cursor=stepper.start(shared),
            shared=shared,
            seq=0,
        )
        if self.queue is not None:
            threshold = self.fan_out_threshold
            stepper.fan_policy = lambda node, n: fanout.wants_fan_out(node, n, threshold)
        stepper.fan_in = lambda frame: self._fan_in(live, frame)
        return live

    # -- small pieces ---------------------------------------------------------------

    def set_status(
        self, record: RunRecord, status: RunStatus, *, expect: set[RunStatus], **changes: Any
    ) -> RunRecord:
        fields = {"status": status, "updated_at": self.clock.now(), "expires_at": self._expiry()}
        updated = self.store.update_run(record.run_id, {**fields, **changes}, expect_status=expect)
        self._notify(updated)
        return updated

    def _notify(self, record: RunRecord) -> None:
        for listener in self.listeners:
            try:
                listener(record)
            except Exception:
                log.exception("run %s: status listener failed", record.run_id)

    def _checkpoint(
        self,
        record: RunRecord,
        seq: int,
        body: bytes,
        snap: bool,
        *,
        node: str | None = None,
        action: str | None = None,
    ) -> Checkpoint:
        return Checkpoint(
            run_id=record.run_id,
            seq=seq,
            body=body,
            snapshot=snap,
            created_at=self.clock.now(),
            node_id=node,
            action=action,
            expires_at=self._expiry(),
        )

    def _expiry(self) -> int:
        return int(self.clock.now() + self.ttl_days * 86400)

    def _outcome(self, live: _Live, stopped: str | None = None) -> RunOutcome:
        record = live.record
        return RunOutcome(
            run_id=record.run_id,
            status=record.status,
            seq=live.seq,
            shared=live.shared,
            result=live.result if record.status == RunStatus.COMPLETED else None,
            prompt=record.prompt if record.status == RunStatus.PAUSED else None,
            stopped=stopped,
            error=record.error,
        )


def _run_sync(coro: Coroutine[Any, Any, RunOutcome]) -> RunOutcome:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(
        "Engine.start/resume cannot run inside an event loop: await start_async/resume_async"
    )
