"""Shared at one step, as the console shows it: readable JSON, large values by size.

A step's shared is rebuilt by the engine's own loader (the latest snapshot at or
before the step and the deltas after it, in one store read), so the console reads
every body format the engine writes. A value whose JSON is larger than
:data:`~pflambda.limits.INLINE_VALUE_LIMIT` -- what the engine keeps in the blob store
(S3) rather than in the checkpoint -- is not sent with the step: it is shown by its
size and sent only when asked for (:func:`load_value`). Keys are the codec's encoded
keys (a plain string key is itself). Values are the codec's JSON, which is plain JSON
for plain values and a tagged object for tuples, sets, bytes, datetimes, models...

:func:`diff` says what one step changed: keys added, removed and changed, and for a
changed JSON value the paths inside it that changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pflambda.blobs.base import BlobStore
from pflambda.engine import codec
from pflambda.engine.state import SharedTracker
from pflambda.errors import InvalidRunState
from pflambda.limits import INLINE_VALUE_LIMIT
from pflambda.stores.base import Store

__all__ = ["MAX_DIFF", "Offloaded", "StepState", "diff", "load_state", "load_value"]

MAX_DIFF = 200
"""Most entries a diff lists; more are counted, not listed."""


@dataclass(frozen=True)
class Offloaded:
    """A value too large to show inline: a hash of its JSON, and the JSON's size."""

    digest: str
    size: int


@dataclass
class StepState:
    """Shared after one step, and the cursor the run had then."""

    seq: int
    values: dict[str, codec.JSONValue | Offloaded] = field(default_factory=dict)
    cursor: codec.JSONValue = None
    large: dict[str, codec.JSONValue] = field(default_factory=dict)
    """The JSON of the values shown by size, for :func:`load_value`."""
    display: dict[str, Any] = field(default_factory=dict)
    """The inline values as plain readable JSON (``codec.to_display_json``): no tags."""

    def to_json(self) -> dict[str, Any]:
        """The shape the console's API answers with."""
        shared: dict[str, Any] = {}
        offloaded: dict[str, Any] = {}
        for key, value in self.values.items():
            if isinstance(value, Offloaded):
                offloaded[key] = {"size": value.size}
            else:
                shared[key] = value
        return {
            "seq": self.seq,
            "shared": shared,
            "display": dict(self.display),
            "offloaded": offloaded,
        }


def load_state(store: Store, blobs: BlobStore, run_id: str, seq: int) -> StepState:
    """Shared right after step ``seq`` of ``run_id``, large values by size."""
    if seq < 0:
        raise InvalidRunState(f"run {run_id} has no checkpoint {seq}")
    checkpoints = store.load_checkpoints(run_id, seq)
    if not checkpoints or checkpoints[-1].seq != seq:
        raise InvalidRunState(f"run {run_id} has no checkpoint {seq}")
    shared, body = SharedTracker(run_id, blobs).load(checkpoints)
    state = StepState(seq, cursor=body.cursor)
    for key, value in shared.items():
        name = codec.encode_key(key)
        text = codec.dumps(value, path=f"shared[{key!r}]")
        tree: codec.JSONValue = json.loads(text)
        if len(text) > INLINE_VALUE_LIMIT:
            digest = hashlib.sha256(text.encode()).hexdigest()[:32]
            state.values[name] = Offloaded(digest, len(text.encode()))
            state.large[name] = tree
        else:
            state.values[name] = tree
            state.display[name] = codec.to_display_json(value)
    return state


def load_value(state: StepState, key: str) -> codec.JSONValue:
    """The JSON of ``key`` at that step, a large one included; KeyError if none."""
    value = state.values[key]
    return state.large[key] if isinstance(value, Offloaded) else value


def diff(before: StepState | None, after: StepState) -> dict[str, Any]:
    """What changed from ``before`` (``None``: nothing) to ``after``, as JSON.

    ``changes`` lists ``{"op": "added"|"removed"|"changed", "path": [...], "before",
    "after"}``; a path starts with the shared key and goes down into dicts (by key)
    and lists (by index). Large values compare by a hash of their JSON and show as
    ``{"offloaded": size}``. At most :data:`MAX_DIFF` are
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
        same = (
            isinstance(old, Offloaded) and isinstance(new, Offloaded) and old.digest == new.digest
        )
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
