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
import json
import re
import uuid
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pflambda import limits
from pflambda.blobs.base import BlobStore
from pflambda.clock import Clock, SystemClock
from pflambda.engine import checkpoints, compat, lease, lifecycle, retention, texts
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
    outcome,
)
from pflambda.engine.state import SharedTracker
from pflambda.engine.view import SharedView
from pflambda.errors import InvalidRunId, InvalidRunState, RunExists
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


_RUN_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def _new_id(given: str | None, what: str = "run_id") -> str:
    """``given`` if it is a usable run id, else a new uuid when none is given.

    A run id names the run's DynamoDB partition and its blob folder (``runs/<id>/``), so it
    is 1-128 letters, digits or ``._:-`` (what A2A task ids allow): a ``/`` would put one
    run's blobs inside another's folder, where purging one would delete the other's.
    """
    if given is None or given == "":
        return str(uuid.uuid4())
    if not isinstance(given, str) or not _RUN_ID.fullmatch(given):
        raise InvalidRunId(f"{what} must be 1-128 letters, digits or ._:- (got {given!r})")
    return given


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
        paused_ttl_days: float = limits.DEFAULT_PAUSED_TTL_DAYS,
        listeners: Sequence[StatusListener] = (),
        fan_out_threshold: int | None = None,
        items_per_message: int = 10,
        max_attempts: int = 5,
        lease_seconds: float = limits.LEASE_SECONDS,
        lease_grace: float = limits.LEASE_GRACE_SECONDS,
        site: str | None = None,
    ) -> None:
        self.store, self.blobs, self.queue = store, blobs, queue
        self.clock = clock or SystemClock()
        self.margin_ms, self.ttl_days = margin_ms, ttl_days
        self.paused_ttl_days = paused_ttl_days
        self.orphan_checks = False
        """Queue an orphan check after a start that put blobs before its first write
        (:func:`~pflambda.engine.retention.watch_orphans`); on for DynamoDB + S3, where
        nothing else would find them (the embedded store's prune does)."""
        """Retention in days of a run (after its last status change or, while it runs, its
        last step) and of a paused one (see :mod:`pflambda.engine.retention`)."""
        self.listeners = list(listeners)
        """Called with the new record after every status change (e.g. push notifications)."""
        self.step_listeners: list[Callable[[RunRecord, StepEvent], None]] = []
        """Called after every committed step (e.g. metrics)."""
        self.fan_out_threshold = fan_out_threshold
        """Batch nodes without a ``fan_out`` attribute fan out from this many items."""
        self.items_per_message, self.max_attempts = items_per_message, max_attempts
        self.lease_seconds, self.lease_grace = lease_seconds, lease_grace
        """How long a lease lasts without a deadline; how long past a deadline it lasts."""
        self.site = site
        """Where this engine's code is deployed, to pin runs to (``function:version`` on
        a published Lambda version, ``local:<id>`` in the local twin; ``None``: nowhere a
        run can be handed back to). Recorded in the run's ``pinned`` at start and by every
        admitting write, at no extra request."""

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
        agent: str | None = None,
        context_id: str | None = None,
        attrs: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        context: Deadline | None = None,
        max_steps: int | None = None,
        on_step: StepCallback | None = None,
        margin_ms: int | None = None,
        hand_off: bool = False,
        driver: str | None = None,
    ) -> RunOutcome:
        """Create run ``run_id`` (a new uuid by default) with its initial checkpoint, then
        drive it until it completes, fails, pauses, or stops for a deadline/step budget.

        The record (leased to this invocation) and checkpoint 0 are one atomic write.
        Starting an id again with the same flow, owner and input is not an error: the
        existing run is continued if nobody drives it (a retried request), else
        :class:`~pflambda.errors.RunExists`. ``hand_off`` with ``max_steps=0`` gives the
        new run straight to a worker.
        """
        if shared is not None and not isinstance(shared, dict):
            raise TypeError(f"shared must be a dict, got {type(shared).__name__}")
        ref = ref_of(flow)
        graph = describe(load_flow(ref))
        now = self.clock.now()
        queued = hand_off and max_steps == 0 and self.queue is not None
        driver = lease.QUEUED if queued else (driver or lease.new_driver())
        ends = now + limits.QUEUED_LEASE_SECONDS if queued else lease.until(self, context)
        record = RunRecord(
            run_id=_new_id(run_id),
            flow=ref,
            fingerprint=graph.fingerprint(),
            status=RunStatus.RUNNING,
            created_at=now,
            updated_at=now,
            owner=owner,
            agent=agent,
            context_id=context_id,
            expires_at=self.expiry(),
            attrs=dict(attrs or {}),
            lease_owner=driver,
            lease_until=ends,
            summary=dict(summary or {}),
            pinned=self.site,
        )
        compat.remember(self.blobs, graph, now)
        live = new_live(self, record, graph, SharedView({} if shared is None else shared))
        live.driver, live.context = driver, context
        pending = live.tracker.prepare(
            live.shared, encode_cursor(live.cursor), seq=0, snapshot=True
        )
        body = pending.body
        if pending.written:  # blobs before the first write: orphans if we die now
            retention.watch_orphans(self, record.run_id)
        budget = Budget(context, max_steps, margin_ms, hand_off)
        first = checkpoints.checkpoint(self, record, 0, body, True, base=0)
        start = live.cursor.position or graph.level("").start_id  # not entered yet
        try:
            self.store.start_run(record, replace(first, position=start))
        except RunExists:
            return await self._restart(record, body, budget, on_step)
        live.tracker.commit(pending)
        lifecycle.notify(self, record)
        if queued:
            assert self.queue is not None
            self.queue.send([continuation(record.run_id, 0)])
            return outcome(live, stopped="max_steps")
        return await drive(self, live, budget, on_step)

    async def _restart(
        self, record: RunRecord, body: bytes, budget: Budget, on_step: StepCallback | None
    ) -> RunOutcome:
        """A start of an id that exists: the same start retried goes on with the run."""
        existing = self.store.get_run(record.run_id)
        first = self.store.load_checkpoints(record.run_id, 0)
        same = (
            (existing.flow, existing.owner, existing.context_id)
            == (record.flow, record.owner, record.context_id)
            and first
            and self._same_state(record.run_id, first[0].body, body)
        )
        if not same:
            raise RunExists(f"run {record.run_id} already exists with another flow or input")
        if existing.status != RunStatus.RUNNING:
            shared, _, seq = self.state(existing.run_id)
            return RunOutcome(
                existing.run_id,
                existing.status,
                seq,
                shared,
                prompt=self.prompt(existing),
                error=existing.error,
            )
        # Our own write may be the one that landed (a retried transaction that was
        # applied the first time): its lease is ours, so take the run under that name.
        ours = existing.lease_owner == record.lease_owner != lease.QUEUED
        return await self.resume_async(
            record.run_id,
            context=budget.context,
            max_steps=budget.max_steps,
            on_step=on_step,
            margin_ms=budget.margin_ms,
            hand_off=budget.hand_off,
            record=existing,
            running_only=True,
            driver=record.lease_owner if ours else None,
        )

    def _same_state(self, run_id: str, stored: bytes, ours: bytes) -> bool:
        """Whether two initial checkpoints hold the same shared and cursor."""
        tracker = SharedTracker(run_id, self.blobs)
        return tracker.read(stored) == tracker.read(ours)

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
        hand_off: bool = False,
        driver: str | None = None,
        takeover: Collection[str] = (),
        record: RunRecord | None = None,
        running_only: bool = False,
        attrs: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> RunOutcome:
        """Continue ``run_id`` from its latest checkpoint.

        A paused run needs ``reply``: it is stored at the key the node asked for and the
        node runs again. A failed run is retried from its last checkpoint (not with
        ``running_only``). A run whose flow changed shape since it started is refused
        unless ``allow_changed_flow``. Every check happens before the one write that
        admits the run (reply, status, lease and ``attrs`` together): a refusal
        changes nothing. A run another invocation drives raises
        :class:`~pflambda.stores.base.LeaseHeld` unless its lease is one of
        ``takeover``'s (``force``: whoever holds it -- for an operator who knows that
        driver is gone). ``record``: the run's record, if the caller just read it.
        """
        record = record if record is not None else self.store.get_run(run_id)
        expect = lifecycle.admit(record, reply, running_only=running_only)
        live = checkpoints.load(self, record, allow_changed_flow)
        driver = driver or lease.new_driver()
        live.driver, live.context = driver, context
        changes: dict[str, Any] = {"lease_owner": driver, "lease_until": lease.until(self, context)}
        if live.graph.fingerprint() != record.fingerprint:
            changes["fingerprint"] = live.graph.fingerprint()
        if attrs is not None:
            changes["attrs"] = dict(attrs)
        if self.site is not None and record.pinned != self.site:
            changes["pinned"] = self.site  # the run goes on on this code: pin it here
        if expect != {RunStatus.RUNNING}:
            changes |= self.status_fields(RunStatus.RUNNING)
        else:
            changes |= retention.due(self, record)
            changes |= {"error": None, "prompt": None, "prompt_ref": None}
        if reply is not NO_REPLY:
            checkpoints.store_reply(self, live, reply, changes)
        else:
            live.record = self.store.acquire_lease(
                run_id,
                driver,
                changes.pop("lease_until"),
                now=self.clock.now(),
                expect_status=expect,
                takeover=_takeover(takeover, record.lease_owner if force else None),
                changes={k: v for k, v in changes.items() if k != "lease_owner"},
            )
        if live.record.status != record.status:
            lifecycle.notify(self, live.record)
        if live.cursor.done:
            return lifecycle.finish(self, live, live.result)
        return await drive(self, live, Budget(context, max_steps, margin_ms, hand_off), on_step)

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run: a paused run at once, a running one at its next node boundary.

        A running run gets its cancel flag, then a marker on its next step: the driver's
        commit of that step fails, and it reads the flag once and stops -- so drivers
        never read the record per step. A run nobody drives right now (no live lease,
        or waiting in the queue) is cancelled at once.
        """
        record = self.store.get_run(run_id)
        if record.status in TERMINAL:
            raise InvalidRunState(f"run {run_id} is already {record.status}")
        if record.status == RunStatus.PAUSED:
            return self.set_status(record, RunStatus.CANCELLED, expect={RunStatus.PAUSED})
        record = self.store.update_run(
            run_id,
            {"cancel_requested": True, "updated_at": self.clock.now()},
            expect_status={RunStatus.RUNNING},
        )
        self.store.claim_step(run_id)
        driven = record.leased(self.clock.now()) and record.lease_owner != lease.QUEUED
        if driven:
            return record
        try:
            return self.set_status(record, RunStatus.CANCELLED, expect={RunStatus.RUNNING})
        except InvalidRunState:
            return self.store.get_run(run_id)

    def migrate(self, run_id: str, mapping: Mapping[str, str]) -> RunRecord:
        """Move a run the deployed flow refuses onto it, renaming its cursor's node ids
        (old full id -> new full id); see :mod:`pflambda.engine.migrate`."""
        from pflambda.engine.migrate import migrate

        return migrate(self, run_id, mapping)

    def fork(
        self,
        run_id: str,
        at: int,
        *,
        new_run_id: str | None = None,
        update: Mapping[Any, Any] | None = None,
        remove: Collection[Any] = (),
    ) -> RunRecord:
        """A new run whose initial state is checkpoint ``at`` of ``run_id``.

        ``remove`` deletes keys from that state and ``update`` sets keys in it, before
        anything is written (a value that cannot be checkpointed stores nothing).
        """
        source = self.store.get_run(run_id)
        ckpts = self.store.load_checkpoints(run_id, at)
        if not ckpts or ckpts[-1].seq != at:
            raise InvalidRunState(f"run {run_id} has no checkpoint {at}")
        loaded = SharedTracker(run_id, self.blobs)
        shared, body = loaded.load(ckpts)
        log = loaded.side  # artifact chunks streamed up to ``at`` stay the fork's
        missing = [key for key in remove if key not in shared]
        if missing:
            raise InvalidRunState(f"run {run_id} has no key {missing[0]!r} in shared at step {at}")
        for key in remove:
            del shared[key]
        shared.update(update or {})
        edited = sorted({repr(k) for k in [*remove, *(update or {})]})
        now = self.clock.now()
        record = RunRecord(
            run_id=_new_id(new_run_id, "new_run_id"),
            flow=source.flow,
            fingerprint=source.fingerprint,
            status=RunStatus.RUNNING,
            created_at=now,
            updated_at=now,
            owner=source.owner,
            agent=source.agent,
            context_id=source.context_id,
            expires_at=self.expiry(),
            attrs={
                "forked_from": run_id,
                "forked_at": at,
                **({"edited": edited} if edited else {}),
            },
            summary={"forked_from": run_id, "forked_at": at},  # listings carry it
            lease_owner=lease.QUEUED,
            lease_until=now + self.lease_seconds,
            pinned=source.pinned,  # its cursor was written by the source's code
        )
        tracker = SharedTracker(record.run_id, self.blobs)
        prepared = tracker.prepare(
            shared, body.cursor, seq=0, snapshot=True, result=body.result, side=log
        )
        data = prepared.body
        if prepared.written:
            retention.watch_orphans(self, record.run_id)
        self.store.start_run(record, checkpoints.checkpoint(self, record, 0, data, True, base=0))
        compat.keep(self.blobs, source.fingerprint)  # the fork lives on the source's shape
        return record

    def state(self, run_id: str, at: int | None = None) -> tuple[dict[Any, Any], Cursor, int]:
        """Shared, cursor and step number at checkpoint ``at`` (default: the latest)."""
        ckpts = self.store.load_checkpoints(run_id, at)
        if not ckpts:
            raise InvalidRunState(f"run {run_id} has no checkpoint{'' if at is None else f' {at}'}")
        shared, body = SharedTracker(run_id, self.blobs).load(ckpts)
        return shared, decode_cursor(body.cursor), ckpts[-1].seq

    def artifact_log(self, run_id: str) -> tuple[list[dict[str, Any]], int]:
        """The artifact chunks run ``run_id`` committed (entries of
        :mod:`pflambda.engine.artifacts`, in order) and its latest step: one read of its
        checkpoints since the last snapshot."""
        _, log, seq = self.view(run_id)
        return log, seq

    def view(self, run_id: str) -> tuple[dict[Any, Any], list[dict[str, Any]], int]:
        """Shared, the artifact log and the step number at the latest checkpoint, in one
        read (``({}, [], 0)`` for a run without checkpoints)."""
        ckpts = self.store.load_checkpoints(run_id)
        if not ckpts:
            return {}, [], 0
        tracker = SharedTracker(run_id, self.blobs)
        shared, _ = tracker.load(ckpts)
        return shared, [json.loads(t) for t in tracker.side], ckpts[-1].seq

    def set_status(
        self, record: RunRecord, status: RunStatus, *, expect: set[RunStatus], **changes: Any
    ) -> RunRecord:
        """Move ``record`` to ``status`` if it is in one of ``expect``; tell the listeners."""
        return lifecycle.set_status(self, record, status, expect=expect, **changes)

    def status_fields(self, status: RunStatus) -> dict[str, Any]:
        """The fields every status change writes (the retention starts again)."""
        now = self.clock.now()
        return {"status": status, "updated_at": now, "expires_at": retention.expiry(self, status)}

    def prompt(self, record: RunRecord) -> str | None:
        """A paused run's question, read from the blob store when it is stored there."""
        return texts.resolve(self.blobs, record.prompt, record.prompt_ref)

    def expiry(self) -> int:
        """Epoch seconds at which a running run's record written now expires."""
        return retention.expiry(self, RunStatus.RUNNING)


def _takeover(named: Collection[str], forced: str | None) -> set[str]:
    """Whose leases a resume may take over: the queue's always, a named holder's, and
    (forced) whoever holds it now."""
    return {lease.QUEUED, *named, *([forced] if forced is not None else [])}


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
