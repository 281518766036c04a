"""The durable runner: start, resume, pause, cancel and fork runs, one checkpoint per node.

:class:`Engine` is the public face; the work lives in small rooms:

- :mod:`pflambda.engine.driver` drives steps (budget, cancel, fan-out);
- :mod:`pflambda.engine.checkpoints` commits and loads checkpoints;
- :mod:`pflambda.engine.lifecycle` moves a run through its statuses;
- :mod:`pflambda.engine.run` holds the live run and what callers get back.

``exec`` is at-least-once (a crash before the checkpoint re-runs the node); ``post``'s
effects on shared are committed exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any

from pflambda import limits
from pflambda.blobs.base import BlobStore
from pflambda.clock import Clock, SystemClock
from pflambda.engine import checkpoints, lifecycle
from pflambda.engine.cursor import Cursor, decode_cursor, encode_cursor
from pflambda.engine.driver import drive, new_live
from pflambda.engine.flowref import FlowSource, load_flow, ref_of
from pflambda.engine.run import (
    NO_REPLY,
    Budget,
    Deadline,
    RunOutcome,
    StatusListener,
    StepCallback,
    StepEvent,
    continuation,
)
from pflambda.engine.state import SharedTracker
from pflambda.errors import InvalidRunState
from pflambda.graph import describe
from pflambda.queues.base import Queue
from pflambda.stores.base import TERMINAL, RunRecord, RunStatus, Store

__all__ = [
    "NO_REPLY",
    "Deadline",
    "Engine",
    "RunOutcome",
    "StatusListener",
    "StepEvent",
    "continuation",
]


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
            expires_at=self.expiry(),
            attrs=dict(attrs or {}),
        )
        live = new_live(self, record, graph, {} if shared is None else shared)
        current = live.tracker.encode_shared(live.shared, None)
        body, refs = live.tracker.build(current, encode_cursor(live.cursor), snapshot=True)
        self.store.create_run(record)
        first = checkpoints.checkpoint(self, record, 0, body, True)
        start = live.cursor.position or graph.level("").start_id  # not entered yet
        self.store.put_checkpoint(replace(first, position=start))
        live.tracker.commit(current, refs, len(body), True)
        lifecycle.notify(self, record)
        return await drive(self, live, Budget(context, max_steps, margin_ms), on_step)

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
        record = lifecycle.admit(self, record, reply)
        live = checkpoints.load(self, record, allow_changed_flow)
        if reply is not NO_REPLY:
            checkpoints.store_reply(self, live, reply)
        if live.cursor.done:
            return lifecycle.finish(self, live, live.result)
        return await drive(self, live, Budget(context, max_steps, margin_ms), on_step)

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
            expires_at=self.expiry(),
            attrs={"forked_from": run_id, "forked_at": at},
        )
        tracker = SharedTracker(record.run_id, self.blobs)
        current = tracker.encode_shared(shared, None)
        data, _ = tracker.build(current, body.cursor, snapshot=True, result=body.result)
        self.store.create_run(record)
        self.store.put_checkpoint(checkpoints.checkpoint(self, record, 0, data, True))
        return record

    def state(self, run_id: str, at: int | None = None) -> tuple[dict[Any, Any], Cursor, int]:
        """Shared, cursor and step number at checkpoint ``at`` (default: the latest)."""
        ckpts = self.store.load_checkpoints(run_id, at)
        if not ckpts:
            raise InvalidRunState(f"run {run_id} has no checkpoint{'' if at is None else f' {at}'}")
        shared, body = SharedTracker(run_id, self.blobs).load(ckpts)
        return shared, decode_cursor(body.cursor), ckpts[-1].seq

    def set_status(
        self, record: RunRecord, status: RunStatus, *, expect: set[RunStatus], **changes: Any
    ) -> RunRecord:
        """Move ``record`` to ``status`` if it is in one of ``expect``; tell the listeners."""
        return lifecycle.set_status(self, record, status, expect=expect, **changes)

    def expiry(self) -> int:
        """Epoch seconds at which a record written now may expire (the run's TTL)."""
        return int(self.clock.now() + self.ttl_days * 86400)


def _run_sync(coro: Coroutine[Any, Any, RunOutcome]) -> RunOutcome:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop: run here, outside this handler, so errors do not chain onto it
    else:
        coro.close()
        raise RuntimeError(
            "Engine.start/resume cannot run inside an event loop: await start_async/resume_async"
        )
    return asyncio.run(coro)
