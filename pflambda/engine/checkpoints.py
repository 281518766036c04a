"""Committing and loading checkpoints: one conditional write per step, one query per resume.

After each step the changed part of shared and the cursor are written as checkpoint
``seq + 1`` with a conditional put, so of two invocations racing on one run only one
advances it (the other gets ``CheckpointConflict`` and stops, changing nothing).
Loading reads the latest snapshot and the deltas after it -- never the run's history.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pflambda.engine import codec, compat, retention
from pflambda.engine.artifacts import ArtifactLog
from pflambda.engine.cursor import decode_cursor, encode_cursor
from pflambda.engine.flowref import load_flow
from pflambda.engine.run import Live, StepEvent
from pflambda.errors import InvalidRunState
from pflambda.graph import describe
from pflambda.stores.base import Checkpoint, RunRecord, RunStatus

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = ["applied", "checkpoint", "commit", "load", "store_reply"]


def applied(record: RunRecord, changes: Mapping[str, Any]) -> RunRecord:
    """``record`` as a write of ``changes`` left it (a status other than running drops
    the lease, as the stores do) -- so nobody re-reads what was just written."""
    fields = dict(changes)
    if fields.get("status", RunStatus.RUNNING) != RunStatus.RUNNING:
        fields |= {"lease_owner": None, "lease_until": None}
    return replace(record, **fields)


def checkpoint(
    engine: Engine,
    record: RunRecord,
    seq: int,
    body: bytes,
    snap: bool,
    *,
    node: str | None = None,
    action: str | None = None,
    base: int | None = None,
) -> Checkpoint:
    """The store item for step ``seq`` of ``record`` (``base``: its snapshot's step).
    It has no expiry of its own: it lives as long as the run's record."""
    return Checkpoint(
        run_id=record.run_id,
        seq=seq,
        body=body,
        snapshot=snap,
        created_at=engine.clock.now(),
        node_id=node,
        action=action,
        base=base,
    )


def commit(
    engine: Engine,
    live: Live,
    node_id: str | None,
    action: Any,
    *,
    finished: bool = False,
    result: Any = None,
    timing: tuple[float, int] | None = None,
    changes: Mapping[str, Any] | None = None,
    expect: Collection[RunStatus] = (RunStatus.RUNNING,),
) -> StepEvent:
    """Write step ``live.seq + 1``; ``CheckpointConflict`` if another invocation did.

    ``timing`` is the step's ``(milliseconds, retries)``, kept on the checkpoint for
    timelines; the checkpoint also names the node the run goes to next. One request:
    a conditional put, or -- when the step also changes the run's record (``changes``;
    the last step completes the run) -- one atomic write of both. When less than half
    the run's retention is left, the new expiry rides along in that one write
    (:func:`pflambda.engine.retention.due`).
    """
    seq = live.seq + 1
    encoded_result = codec.encode(result, path="result") if finished else None
    log = live.artifacts.staged()
    pending = live.tracker.prepare(
        live.shared,
        encode_cursor(live.cursor),
        seq=seq,
        node_id=node_id,
        result=encoded_result,
        side=log,
    )
    body, snap = pending.body, pending.snapshot
    label = action if action is None or isinstance(action, str) else repr(action)
    step = checkpoint(
        engine, live.record, seq, body, snap, node=node_id, action=label, base=pending.base
    )
    step = replace(step, position=live.cursor.position)
    if timing is not None:
        step = replace(step, duration_ms=timing[0], retries=timing[1])
    if finished:
        changes = {**(changes or {}), **engine.status_fields(RunStatus.COMPLETED)}
    elif refresh := retention.due(engine, live.record):  # amortised: once per half retention
        changes = {**(changes or {}), **refresh}
        compat.remember(engine.blobs, live.graph, engine.clock.now())
    if changes is None:
        engine.store.put_checkpoint(step)
    else:
        engine.store.commit_step(step, changes, expect_status=expect)
        live.record = applied(live.record, changes)
    live.tracker.commit(pending)
    live.seq = seq
    chunks = tuple(live.artifacts.committed(log))
    return StepEvent(
        live.record.run_id, seq, node_id, action, len(body), snap, 0.0, finished, chunks=chunks
    )


def load(engine: Engine, record: RunRecord, allow_changed_flow: bool) -> Live:
    """``record``'s run rebuilt from its latest snapshot and the deltas after it.

    Writes nothing: a flow whose shape changed where the run's cursor is (checked frame
    by frame, :mod:`pflambda.engine.compat`) is refused here, before any write; otherwise
    (or ``allow_changed_flow``) the new fingerprint is in ``live.graph`` for the admitting
    write."""
    from pflambda.engine.driver import new_live

    graph = describe(load_flow(record.flow))
    ckpts = engine.store.load_checkpoints(record.run_id)
    if not ckpts:
        raise InvalidRunState(f"run {record.run_id} has no checkpoints")
    live = new_live(engine, record, graph, {})
    live.shared, body = live.tracker.load(ckpts)
    live.artifacts = ArtifactLog.of(live.tracker.side)
    live.cursor = decode_cursor(body.cursor)
    if graph.fingerprint() != record.fingerprint and not allow_changed_flow:
        compat.check(engine.blobs, record, graph, live.cursor, site=engine.site)
    compat.remember(engine.blobs, graph, engine.clock.now())  # the run may take it on
    live.seq = ckpts[-1].seq
    live.result = codec.decode(body.result)
    if live.cursor.frames:
        graph.root.set_params(live.cursor.frames[0].own_params)
    return live


def store_reply(engine: Engine, live: Live, reply: Any, changes: Mapping[str, Any]) -> None:
    """Put a paused run's reply where its node asked for it, as one committed step that
    also moves the run from paused to ``changes`` (running, leased) -- one atomic write,
    so a refused reply (unstorable, too large, throttled) leaves the run paused."""
    key = live.record.input_key or "input"
    previous = live.shared.get(key, _MISSING)
    live.shared[key] = reply
    try:
        commit(engine, live, None, None, changes=changes, expect=(RunStatus.PAUSED,))
    except BaseException:
        if previous is _MISSING:
            live.shared.pop(key, None)
        else:
            live.shared[key] = previous
        raise


_MISSING: Any = object()
