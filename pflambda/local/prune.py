"""``pflambda runs prune`` and ``pflambda runs reap``: retention by hand, with a line per run.

Prune does, for the store the environment names, what DynamoDB's TTL, ReaperFunction and
the bucket's lifecycle rule do on AWS (docs/durability.md, "Retention"):

- the embedded store (SQLite, memory): every run whose ``expires_at`` passed goes, blobs
  first (:func:`pflambda.engine.retention.prune`); on disk also flow shapes older than
  :data:`~pflambda.limits.SHAPE_LIFE_DAYS` and orphaned ``runs/<id>/`` folders (no record,
  no checkpoints, nothing written for :data:`~pflambda.limits.ORPHAN_DAYS`);
- a local emulator (``AWS_ENDPOINT_URL`` set): the emulated TTL and reaper
  (:mod:`pflambda.local.expiry`);
- DynamoDB on AWS: nothing -- the TTL and the reaper do it there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pflambda import limits
from pflambda.blobs.disk import DiskBlobStore
from pflambda.engine import retention
from pflambda.errors import RunNotFound

if TYPE_CHECKING:
    from pflambda.aws.config import Settings
    from pflambda.engine.runner import Engine
    from pflambda.stores.base import Store

__all__ = ["Pruned", "prune", "prune_disk", "reap"]

DAY = 86_400

Say = Callable[[str], None]


@dataclass
class Pruned:
    """What a prune deleted."""

    runs: int = 0
    shapes: int = 0
    orphans: int = 0


def prune(settings: Settings, engine: Engine, say: Say) -> Pruned | None:
    """Prune what the configured backend keeps; ``None`` when AWS does it itself."""
    store: Any = engine.store
    done = Pruned()
    if hasattr(store, "list_expired"):

        def line(reaped: retention.Reaped) -> None:
            say(f"run {reaped.run_id}: {reaped.items} items, {reaped.blobs} blobs deleted")

        done.runs = retention.prune(store, engine.blobs, engine.clock.now(), progress=line)
        if isinstance(engine.blobs, DiskBlobStore):
            done.shapes, done.orphans = prune_disk(engine.store, engine.blobs, time.time(), say)
        return done
    if not os.environ.get("AWS_ENDPOINT_URL"):
        return None
    from pflambda.aws.clients import client
    from pflambda.local.expiry import expire_table

    done.runs = expire_table(engine, client("dynamodb"), settings.table, limit=10_000)
    return done


def prune_disk(store: Store, blobs: DiskBlobStore, now: float, say: Say) -> tuple[int, int]:
    """Old shapes and orphaned run folders on disk (file times are the wall clock's)."""
    shapes = 0
    if (blobs.root / "shapes").is_dir():
        for key, written in list(blobs.modified("shapes/")):
            if now - written >= limits.SHAPE_LIFE_DAYS * DAY:
                blobs.remove(key)
                shapes += 1
                say(f"shape {key.removeprefix('shapes/')}: not used for 400 days, deleted")
    newest: dict[str, float] = {}
    if (blobs.root / "runs").is_dir():
        for key, written in blobs.modified("runs/"):
            run_id = key.split("/")[1]
            newest[run_id] = max(written, newest.get(run_id, 0.0))
    orphans = 0
    for run_id, written in sorted(newest.items()):
        if now - written < limits.ORPHAN_DAYS * DAY or _owned(store, run_id):
            continue
        count = blobs.delete_prefix(retention.folder(run_id))
        orphans += 1
        say(f"run {run_id}: never stored (a start that failed); {count} orphaned blobs deleted")
    return shapes, orphans


def _owned(store: Store, run_id: str) -> bool:
    """Whether ``run_id`` has a record or a checkpoint (its blobs are not orphans)."""
    try:
        store.get_run(run_id)
    except RunNotFound:
        return bool(store.load_checkpoints(run_id, 0))
    return True


def reap(engine: Engine, run_id: str, say: Say) -> bool:
    """Delete what ``run_id`` left after its record expired; False if it is live."""
    reaped = retention.reap(engine.store, engine.blobs, run_id, engine.clock.now())
    if reaped is None:
        say(f"run {run_id} has a record that has not expired: nothing deleted")
        return False
    say(f"run {run_id}: {reaped.items} items, {reaped.blobs} blobs deleted")
    return True
