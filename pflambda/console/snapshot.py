"""Shared at one step, as the console shows it: readable JSON, large values by size.

A step's shared is rebuilt as the engine rebuilds it -- the latest snapshot at or
before the step and the deltas after it, in one store read -- but a value that was
offloaded to the blob store is not fetched: it is shown by its stored size and
loaded only when asked for (:func:`load_value`). Keys are the codec's encoded keys
(a plain string key is itself). Values are the codec's JSON, which is plain JSON for
plain values and a tagged object for tuples, sets, bytes, datetimes, models...

:func:`diff` says what one step changed: keys added, removed and changed, and for a
changed JSON value the paths inside it that changed.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pflambda.blobs.base import BlobStore
from pflambda.engine import codec
from pflambda.engine.state import Body, SharedTracker
from pflambda.errors import InvalidRunState
from pflambda.stores.base import Checkpoint, Store

__all__ = ["MAX_DIFF", "Offloaded", "StepState", "diff", "load_state", "load_value"]

MAX_DIFF = 200
"""Most entries a diff lists; more are counted, not listed."""


@dataclass(frozen=True)
class Offloaded:
    """A value kept in the blob store: its key there and its stored (compressed) size."""

    blob: str
    size: int


@dataclass
class StepState:
    """Shared after one step, and the cursor the run had then."""

    seq: int
    values: dict[str, codec.JSONValue | Offloaded] = field(default_factory=dict)
    cursor: codec.JSONValue = None

    def to_json(self) -> dict[str, Any]:
        """The shape the console's API answers with."""
        shared: dict[str, Any] = {}
        offloaded: dict[str, Any] = {}
        for key, value in self.values.items():
            if isinstance(value, Offloaded):
                offloaded[key] = {"size": value.size}
            else:
                shared[key] = value
        return {"seq": self.seq, "shared": shared, "offloaded": offloaded}


def load_state(store: Store, blobs: BlobStore, run_id: str, seq: int) -> StepState:
    """Shared right after step ``seq`` of ``run_id``, offloaded values by size."""
    if seq < 0:
        raise InvalidRunState(f"run {run_id} has no checkpoint {seq}")
    checkpoints = store.load_checkpoints(run_id, seq)
    if not checkpoints or checkpoints[-1].seq != seq:
        raise InvalidRunState(f"run {run_id} has no checkpoint {seq}")
    return _replay(SharedTracker(run_id, blobs), blobs, checkpoints, seq)


def _replay(
    tracker: SharedTracker, blobs: BlobStore, checkpoints: Iterable[Checkpoint], seq: int
) -> StepState:
    state = StepState(seq)
    sizes: dict[str, int] = {}
    last: Body | None = None
    for checkpoint in checkpoints:
        body = tracker.read(checkpoint.body)
        if body.snapshot:
            state.values.clear()
        for key in body.deleted:
            state.values.pop(key, None)
        state.values.update(body.values)
        for key, blob in body.blobs.items():
            if blob not in sizes:
                sizes[blob] = len(blobs.get(blob))
            state.values[key] = Offloaded(blob, sizes[blob])
        last = body
    state.cursor = None if last is None else last.cursor
    return state


def load_value(blobs: BlobStore, state: StepState, key: str) -> codec.JSONValue:
    """The JSON of ``key`` at that step, fetched from the blob store if it was offloaded."""
    if key not in state.values:
        raise KeyError(key)
    value = state.values[key]
    if not isinstance(value, Offloaded):
        return value
    decoded: codec.JSONValue = json.loads(zlib.decompress(blobs.get(value.blob)))
    return decoded


def diff(before: StepState | None, after: StepState) -> dict[str, Any]:
    """What changed from ``before`` (``None``: nothing) to ``after``, as JSON.

    ``changes`` lists ``{"op": "added"|"removed"|"changed", "path": [...], "before",
    "after"}``; a path starts with the shared key and goes down into dicts (by key)
    and lists (by index). Offloaded values compare by content (their blob key is a
    hash of it) and show as ``{"offloaded": size}``. At most :data:`MAX_DIFF` are
    listed; ``total`` counts them all.
    """
    old = {} if before is None else before.values
    changes: list[dict[str, Any]] = []
    total = 0
    for key in [*old, *(k for k in after.values if k not in old)]:
        if key not in after.values:
            found = [("removed", [key], _shown(old[key]), None)]
        elif key not in old:
            found = [("added", [key], None, _shown(after.values[key]))]
        else:
            found = list(_compare([key], old[key], after.values[key]))
        for op, path, was, now in found:
            total += 1
            if len(changes) < MAX_DIFF:
                changes.append({"op": op, "path": path, "before": was, "after": now})
    return {
        "from": None if before is None else before.seq,
        "to": after.seq,
        "changes": changes,
        "total": total,
    }


def _shown(value: codec.JSONValue | Offloaded) -> Any:
    return {"offloaded": value.size} if isinstance(value, Offloaded) else value


Change = tuple[str, list[Any], Any, Any]


def _compare(path: list[Any], old: Any, new: Any) -> Iterable[Change]:
    if isinstance(old, Offloaded) or isinstance(new, Offloaded):
        same = isinstance(old, Offloaded) and isinstance(new, Offloaded) and old.blob == new.blob
        if not same:
            yield ("changed", path, _shown(old), _shown(new))
        return
    if isinstance(old, dict) and isinstance(new, dict) and not _tagged(old, new):
        for key in [*old, *(k for k in new if k not in old)]:
            if key not in new:
                yield ("removed", [*path, key], old[key], None)
            elif key not in old:
                yield ("added", [*path, key], None, new[key])
            else:
                yield from _compare([*path, key], old[key], new[key])
        return
    if isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            if i >= len(new):
                yield ("removed", [*path, i], old[i], None)
            elif i >= len(old):
                yield ("added", [*path, i], None, new[i])
            else:
                yield from _compare([*path, i], old[i], new[i])
        return
    if type(old) is not type(new) or old != new:
        yield ("changed", path, old, new)


def _tagged(*values: dict[str, Any]) -> bool:
    """A codec-tagged value (a tuple, a model...) is compared whole, not field by field."""
    return any("$pf" in v for v in values)
