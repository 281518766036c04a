"""Retention: how long a run and everything it owns are kept, and how they go together.

Everything of a run lives exactly as long as its record (``META``): checkpoints, cancel
markers and fan-out items carry no expiry of their own, and its blobs live under
``runs/<id>/``. The record's ``expires_at`` is

- set at every status change: the retention (``ttl_days``) from then on, or the paused
  retention (``paused_ttl_days``) for a run that waits for a human's input;
- pushed out while the run runs: when a step commits and less than half the retention
  is left, the new expiry is folded into that step's write (no extra request);
- pushed out by the write that admits a resumed run, on the same rule.

When it passes, DynamoDB's TTL deletes the record and the reaper (:mod:`pflambda.aws.reaper`)
calls :func:`reap`: the run's blobs, then every other item of its partition. The embedded
stores have no TTL service: :func:`prune` finds their expired runs and reaps them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pflambda import limits
from pflambda.blobs.base import BlobStore
from pflambda.errors import PflambdaError, RunNotFound
from pflambda.stores.base import Expiring, RunRecord, RunStatus, Store

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = [
    "ORPHANS",
    "ExpiringStore",
    "Reaped",
    "days",
    "due",
    "expiry",
    "folder",
    "prune",
    "reap",
    "reap_orphans",
    "watch_orphans",
]

log = logging.getLogger("pflambda.engine")

DAY = 86_400

ORPHANS = "orphans"
"""The kind of the work message that checks a start's blobs got their run
(:func:`watch_orphans`)."""


def folder(run_id: str) -> str:
    """The blob folder of everything ``run_id`` put in the blob store."""
    return f"runs/{run_id}/"


def days(engine: Engine, status: RunStatus) -> float:
    """The retention of a run in ``status``, in days."""
    return engine.paused_ttl_days if status == RunStatus.PAUSED else engine.ttl_days


def expiry(engine: Engine, status: RunStatus) -> int:
    """When a run that moves to ``status`` now expires."""
    return int(engine.clock.now() + days(engine, status) * DAY)


def due(engine: Engine, record: RunRecord) -> dict[str, Any]:
    """``{"expires_at": ...}`` when less than half its retention is left on ``record``
    (fold it into the write being made), else ``{}``. A record without an expiry never
    expires and stays so."""
    if record.expires_at is None:
        return {}
    left = record.expires_at - engine.clock.now()
    if left >= days(engine, record.status) * DAY / 2:
        return {}
    return {"expires_at": expiry(engine, record.status)}


@dataclass(frozen=True)
class Reaped:
    """What :func:`reap` deleted for one run."""

    run_id: str
    items: int
    blobs: int


def reap(store: Store, blobs: BlobStore, run_id: str, now: float) -> Reaped | None:
    """Delete what ``run_id`` left once its record expired: its blobs, then its items.

    ``None`` (nothing deleted) when the run has a record that has not expired -- a new
    run started with the id after the old one expired. Safe to repeat."""
    try:
        record = store.get_run(run_id)
    except RunNotFound:
        record = None
    if record is not None and (record.expires_at is None or record.expires_at > now):
        log.info("run %s: not reaped, it has a live record", run_id)
        return None
    deleted_blobs = blobs.delete_prefix(folder(run_id))
    items = store.purge_run(run_id)
    log.info("run %s reaped: %d items, %d blobs", run_id, items, deleted_blobs)
    return Reaped(run_id, items, deleted_blobs)


def watch_orphans(engine: Engine, run_id: str) -> None:
    """A start (or fork) put blobs under ``runs/<id>/`` before its first write: ask a
    worker to look :data:`~pflambda.limits.ORPHAN_CHECK_SECONDS` later whether the run
    got stored. If the start died in between, nothing else would ever delete them (no
    record, so no TTL). Best effort: a failed send is logged, the start goes on."""
    if engine.queue is None or not engine.orphan_checks:
        return
    message = json.dumps({"kind": ORPHANS, "run_id": run_id})
    try:
        engine.queue.send([message], delay_seconds=limits.ORPHAN_CHECK_SECONDS)
    except PflambdaError:
        log.warning("run %s: could not queue the orphan check", run_id, exc_info=True)


def reap_orphans(store: Store, blobs: BlobStore, run_id: str) -> int | None:
    """Delete ``runs/<id>/`` if the run has neither a record nor checkpoint 0 (its start
    died before its first write); ``None`` (nothing deleted) if it has either."""
    try:
        store.get_run(run_id)
    except RunNotFound:
        if store.load_checkpoints(run_id, 0):
            return None  # a purge half done: the reaper's retry finishes it
        count = blobs.delete_prefix(folder(run_id))
        if count:
            log.info("run %s never got stored: %d orphaned blobs deleted", run_id, count)
        return count
    return None


class ExpiringStore(Store, Expiring, Protocol):
    """A store that finds its own expired runs (memory, SQLite)."""


def prune(
    store: ExpiringStore,
    blobs: BlobStore,
    now: float,
    *,
    limit: int | None = None,
    progress: Callable[[Reaped], None] | None = None,
    batch: int = 100,
) -> int:
    """Reap every run of an embedded store whose record expired by ``now`` (at most
    ``limit``), telling ``progress`` of each; how many runs were reaped."""
    count = 0
    while limit is None or count < limit:
        want = batch if limit is None else min(batch, limit - count)
        found = [reap(store, blobs, run_id, now) for run_id in store.list_expired(now, limit=want)]
        reaped = [r for r in found if r is not None]
        for each in reaped:
            if progress is not None:
                progress(each)
        count += len(reaped)
        if not reaped:  # none left (an expired id is always reaped: never loop on one)
            break
    if count:
        log.info("pruned %d expired run(s)", count)
    return count
