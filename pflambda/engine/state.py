"""Checkpoint bodies: what a step changed in shared, and how to rebuild shared on resume.

A body is compact JSON (zlib-compressed past a couple of KB, marked by a leading ``z``)::

    {"v": 2, "snap": false, "base": 40, "cursor": <tagged JSON>,
     "ops": [[kind, path, payload], ...], "result": <tagged JSON>}

``ops`` are :mod:`~pflambda.engine.delta` operations at the granularity of the change
(a key set inside a nested dict, items appended to a list, a key deleted); a snapshot
(``snap``) is a list of top-level sets that rebuilds shared from nothing. ``base`` is
the step of the snapshot a delta builds on, so a resume reads that snapshot and what
follows, nothing older. A payload larger than
:data:`~pflambda.limits.INLINE_VALUE_LIMIT` goes to the blob store under a
content-addressed key, written once (kinds ``s@``/``a@``); in a snapshot, a large
top-level list goes as segments of items, so a list that keeps growing re-uploads only
its last segment. A body still over :data:`~pflambda.limits.CHECKPOINT_BODY_BUDGET`
goes to the blob store whole and the item holds ``@`` and its key.

Only the keys a step touched are examined (:class:`~pflambda.engine.view.SharedView`);
an untouched value costs nothing. Snapshots are taken when replaying the deltas since
the last one would read more than a new snapshot (:func:`SharedTracker.wants_snapshot`).
Format 1 bodies (whole top-level values) still load.

Beside shared, the tracker keeps one *side* value under the encoded key ``$pfart`` (which
:func:`~pflambda.engine.codec.encode_key` never produces, so no key of shared can clash):
the run's artifact log (:mod:`pflambda.engine.artifacts`), a list that only grows. It is
diffed, offloaded and snapshotted like a value of shared -- so a step's chunks ride in its
checkpoint as one append op -- but never appears in shared.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pflambda import limits
from pflambda.blobs.base import BlobStore
from pflambda.engine import codec, delta
from pflambda.engine.view import SharedView, Touched
from pflambda.errors import SerializationError
from pflambda.stores.base import Checkpoint

__all__ = ["SIDE", "Body", "Pending", "SharedTracker", "read_body"]

SIDE = "$pfart"
"""The encoded key of the side value (the artifact log)."""

FORMAT = 2
COMPRESS_OVER = 2048
SEGMENT_BYTES = limits.INLINE_VALUE_LIMIT // 2
"""Target size of one blob segment of a large list in a snapshot."""
_dump = codec.dump_json
_MISSING: Any = object()


@dataclass
class Body:
    """A decoded checkpoint body."""

    snapshot: bool
    cursor: codec.JSONValue
    ops: list[list[Any]] = field(default_factory=list)
    base: int | None = None
    result: codec.JSONValue = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_body(data: bytes) -> Body:
    """Parse a stored body (compressed or not; format 1 or 2)."""
    raw = zlib.decompress(data[1:]) if data[:1] == b"z" else data
    doc = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("v") not in (1, FORMAT):
        raise codec.DecodeError("checkpoint body has an unknown format")
    if doc["v"] == 1:
        ops = [["d", [k]] for k in doc.get("del", [])]
        ops += [["s", [k], v] for k, v in doc.get("set", {}).items()]
        ops += [["s@", [k], r] for k, r in doc.get("blobs", {}).items()]
    else:
        ops = doc.get("ops", [])
    return Body(
        snapshot=bool(doc["snap"]),
        cursor=doc["cursor"],
        ops=ops,
        base=doc.get("base"),
        result=doc.get("result"),
        extra=doc.get("extra", {}),
    )


@dataclass
class Pending:
    """A checkpoint body built but not yet stored; :meth:`SharedTracker.commit` it once it is."""

    body: bytes
    snapshot: bool
    base: int
    """The step of the snapshot this body builds on (its own step for a snapshot)."""
    shadows: dict[str, Any]
    deleted: list[str]
    cached: dict[str, list[str]]
    written: dict[str, int]
    side: list[Any] | None = None
    """The side value this body stores (``None``: unchanged)."""
    cost: int = 0
    """What reading this snapshot costs: its body and every blob it refers to."""


class SharedTracker:
    """Knows what of shared is committed, writes deltas and rebuilds shared on resume."""

    def __init__(self, run_id: str, blobs: BlobStore) -> None:
        self.run_id = run_id
        self.blob_store = blobs
        self.shadows: dict[str, Any] = {}
        """Encoded key -> shadow of the committed value (see :mod:`delta`)."""
        self.cached: dict[str, list[str]] = {}
        """Encoded key -> its snapshot ops (JSON text), while the value is unchanged."""
        self.written: dict[str, int] = {}
        """Blob keys known to be stored (content-addressed: never written twice) -> size."""
        self.side: list[Any] = []
        """The committed side value (the artifact log)."""
        self.base = 0
        self.delta_bytes = 0
        self.deltas = 0
        self.snapshot_bytes = 0

    # -- writing --------------------------------------------------------------------

    def prepare(
        self,
        shared: dict[Any, Any],
        cursor: codec.JSONValue,
        *,
        seq: int,
        node_id: str | None = None,
        snapshot: bool | None = None,
        result: codec.JSONValue = None,
        extra: dict[str, Any] | None = None,
        side: list[Any] | None = None,
    ) -> Pending:
        """The body of checkpoint ``seq``: a delta of what changed, or a snapshot.

        ``side``: the side value, looked at only when it is not the committed object."""
        try:
            ops, shadows, deleted = self._changes(shared)
            pending = Pending(b"", False, self.base, shadows, deleted, {}, {})
            if side is not None and side is not self.side and (side or SIDE in self.shadows):
                self._side_changes(side, ops, pending)
            if snapshot is not True:
                head = {"v": FORMAT, "snap": False, "base": self.base, "cursor": cursor}
                texts = [self._op_text(op, pending) for op in ops]
                data = self._body(head, texts, result, extra, pending)
                snapshot = self.wants_snapshot(len(data)) if snapshot is None else snapshot
            if snapshot:
                whole = {op[1][0]: op[2] for op in ops if op[0] == "s" and len(op[1]) == 1}
                pending.base, pending.snapshot = seq, True
                head = {"v": FORMAT, "snap": True, "base": seq, "cursor": cursor}
                texts = self._snapshot_ops(shared, pending, whole)
                data = self._body(head, texts, result, extra, pending)
                pending.cost = len(data) + sum(self._blob_size(t, pending) for t in texts)
        except SerializationError as exc:
            raise exc.with_node(node_id) if node_id else exc from None
        pending.body = data
        return pending

    def wants_snapshot(self, delta_size: int) -> bool:
        """Whether replaying the deltas since the last snapshot, this one included, would
        read more than a new snapshot would (or they are too many)."""
        if self.deltas + 1 >= limits.SNAPSHOT_EVERY:
            return True
        replay = self.delta_bytes + delta_size + limits.CHECKPOINT_ITEM_OVERHEAD
        snapshot = self.snapshot_bytes + limits.CHECKPOINT_ITEM_OVERHEAD
        budget = limits.SNAPSHOT_READ_FACTOR * snapshot
        return replay > max(budget, limits.SNAPSHOT_DELTA_BYTES)

    def commit(self, pending: Pending) -> None:
        """Record that ``pending`` is now stored."""
        for key in pending.deleted:
            self.shadows.pop(key, None)
            self.cached.pop(key, None)
        for key, shadow in pending.shadows.items():
            self.shadows[key] = shadow
            self.cached.pop(key, None)
        self.cached.update(pending.cached)
        self.written.update(pending.written)
        if pending.side is not None:
            self.side = pending.side
        size = len(pending.body) + limits.CHECKPOINT_ITEM_OVERHEAD
        if pending.snapshot:
            self.base, self.deltas, self.delta_bytes = pending.base, 0, 0
            self.snapshot_bytes = pending.cost
        else:
            self.deltas += 1
            self.delta_bytes += size

    def _changes(self, shared: dict[Any, Any]) -> tuple[list[delta.Op], dict[str, Any], list[str]]:
        """What changed since the last commit, among the keys the step touched."""
        if isinstance(shared, SharedView):
            touched = shared.take_touched()
        else:
            touched = Touched()
            touched.everything = True
        if touched.everything:
            candidates = list(dict.__iter__(shared))
            present = {codec.encode_key(k) for k in candidates}
            deleted = [k for k in self.shadows if k not in present and k != SIDE]
        else:
            candidates = [k for k in touched.keys if k in shared]
            gone = [_key_or_none(k) for k in touched.keys if k not in shared]
            deleted = [k for k in gone if k is not None and k in self.shadows]
        ops: list[delta.Op] = [("d", [k], "") for k in deleted]
        shadows: dict[str, Any] = {}
        fresh: list[Any] = []
        for raw in candidates:
            key = codec.encode_key(raw)
            old = self.shadows.get(key, _MISSING)
            if old is _MISSING or raw in touched.removed:
                fresh.append(raw)  # new, or deleted and set again: goes to the end, in order
                continue
            found: list[delta.Op] = []
            shadow = delta.diff(old, shared[raw], [key], found)
            if found:
                ops += found
                shadows[key] = shadow
        if len(fresh) > 1:
            wanted = set(fresh)
            fresh = [k for k in dict.__iter__(shared) if k in wanted]
        for raw in fresh:
            key = codec.encode_key(raw)
            if key in self.shadows:
                ops.append(("d", [key], ""))
            shadows[key] = delta.replace(dict.__getitem__(shared, raw), [key], ops)
        return ops, shadows, deleted

    def _snapshot_ops(
        self, shared: dict[Any, Any], pending: Pending, whole: dict[str, str]
    ) -> list[str]:
        """Ops that rebuild all of shared; unchanged values reuse their cached ops."""
        texts: list[str] = []
        for raw in dict.__iter__(shared):
            key = codec.encode_key(raw)
            ops = self.cached.get(key) if key not in pending.shadows else None
            if ops is None:
                text = whole.get(key)
                if text is None:
                    value = dict.__getitem__(shared, raw)
                    text = _dump(codec.encode(value, delta.where([key])))
                ops = self._place(key, text, pending)
                pending.cached[key] = ops
            texts += ops
        side = self.side if pending.side is None else pending.side
        if side:
            ops = self.cached.get(SIDE) if SIDE not in pending.shadows else None
            if ops is None:
                text = whole.get(SIDE) or _dump(codec.encode(side, "artifacts"))
                ops = self._place(SIDE, text, pending)
                pending.cached[SIDE] = ops
            texts += ops
        return texts

    def _side_changes(self, side: list[Any], ops: list[delta.Op], pending: Pending) -> None:
        """The side value's ops (one append, for a log that grew) and its shadow."""
        pending.side = side
        old = self.shadows.get(SIDE, _MISSING)
        if old is _MISSING:
            pending.shadows[SIDE] = delta.replace(side, [SIDE], ops)
            return
        found: list[delta.Op] = []
        shadow = delta.diff(old, side, [SIDE], found)
        if found:
            ops += found
            pending.shadows[SIDE] = shadow

    def _place(self, key: str, text: str, pending: Pending) -> list[str]:
        """Snapshot ops for one top-level value: inline, one blob, or list segments."""
        path = _dump([key])
        if len(text) <= limits.INLINE_VALUE_LIMIT:
            return [f'["s",{path},{text}]']
        if not text.startswith("["):
            return [f'["s@",{path},{_dump(self._offload(text, pending))}]']
        ops = [f'["s",{path},[]]']
        for segment in _segments(json.loads(text)):
            ops.append(f'["a@",{path},{_dump(self._offload(segment, pending))}]')
        return ops

    def _op_text(self, op: delta.Op, pending: Pending) -> str:
        kind, path, payload = op
        if kind == "d":
            return f'["d",{_dump(path)}]'
        if len(payload) > limits.INLINE_VALUE_LIMIT:
            kind, payload = kind + "@", _dump(self._offload(payload, pending))
        return f'["{kind}",{_dump(path)},{payload}]'

    def _body(
        self,
        head: dict[str, Any],
        ops: list[str],
        result: codec.JSONValue,
        extra: dict[str, Any] | None,
        pending: Pending,
    ) -> bytes:
        tail: dict[str, Any] = {}
        if result is not None:
            tail["result"] = result
        if extra:
            tail["extra"] = extra
        text = _dump(head)[:-1] + ',"ops":[' + ",".join(ops) + "]"
        text += ("," + _dump(tail)[1:]) if tail else "}"
        data = _utf8(text, "shared")
        if len(data) > COMPRESS_OVER:
            data = b"z" + zlib.compress(data, 6)
        if len(data) > limits.CHECKPOINT_BODY_BUDGET:
            data = b"@" + self._offload(data, pending, compressed=data[:1] == b"z").encode()
        return data

    def _offload(self, data: str | bytes, pending: Pending, compressed: bool = False) -> str:
        """Put ``data`` in the blob store under its content hash, once; its key."""
        raw = _utf8(data, "shared") if isinstance(data, str) else data
        key = f"runs/{self.run_id}/{hashlib.sha256(raw).hexdigest()[:40]}"
        if key not in self.written and key not in pending.written:
            self.blob_store.put(key, raw if compressed else zlib.compress(raw, 1))
            pending.written[key] = len(raw if compressed else zlib.compress(raw, 1))
        return key

    def _blob_size(self, op_text: str, pending: Pending) -> int:
        """The stored size of the blob a snapshot op refers to (0 for an inline op)."""
        if not op_text.startswith(('["s@"', '["a@"')):
            return 0
        key = json.loads(op_text)[2]
        return pending.written.get(key) or self.written.get(key, 0)

    def read(self, data: bytes) -> Body:
        """Parse a stored body, fetching it from the blob store if it was too large."""
        if data[:1] == b"@":
            data = self.blob_store.get(data[1:].decode())
        return read_body(data)

    # -- reading --------------------------------------------------------------------

    def load(self, checkpoints: Iterable[Checkpoint]) -> tuple[SharedView, Body]:
        """Rebuild shared from a snapshot and the deltas after it; the last body too."""
        values: dict[str, Any] = {}
        origins: dict[str, list[str]] = {}
        last: Body | None = None
        for ckpt in checkpoints:
            body = self.read(ckpt.body)
            if body.snapshot:
                values.clear()
                origins.clear()
                self.base, self.deltas, self.delta_bytes = ckpt.seq, 0, 0
                self.snapshot_bytes = len(ckpt.body)
                fetched = sum(self.written.values())
            else:
                self.deltas += 1
                self.delta_bytes += len(ckpt.body) + limits.CHECKPOINT_ITEM_OVERHEAD
            for op in body.ops:
                self._replay(values, origins, op)
            if body.snapshot:
                self.snapshot_bytes += sum(self.written.values()) - fetched
            last = body
        if last is None:
            raise codec.DecodeError("no checkpoints to load")
        shared = SharedView()
        self.shadows = {}
        self.cached = {k: ops for k, ops in origins.items() if k in values}
        side = values.pop(SIDE, None)
        decoded = [] if side is None else codec.decode(side)
        if not isinstance(decoded, list):
            raise codec.DecodeError("checkpoint artifact log is not a list")
        self.side = decoded
        if side is not None:
            self.shadows[SIDE] = delta.shadow_of(self.side, side)
        for key, tree in values.items():
            value = codec.decode(tree)
            dict.__setitem__(shared, codec.decode_key(key), value)
            self.shadows[key] = delta.shadow_of(value, tree)
        shared.take_touched()
        return shared, last

    def _replay(self, values: dict[str, Any], origins: dict[str, list[str]], op: list[Any]) -> None:
        """Apply one stored op, fetching blob payloads; remember blob-only origins."""
        if not isinstance(op, list) or len(op) < 2 or not isinstance(op[1], list) or not op[1]:
            raise codec.DecodeError(f"malformed checkpoint op {op!r}")
        kind, path = op[0], op[1]
        payload = op[2] if len(op) > 2 else None
        top = path[0]
        if isinstance(kind, str) and kind.endswith("@"):
            if not isinstance(payload, str):
                raise codec.DecodeError(f"malformed checkpoint op {op!r}")
            data = self.blob_store.get(payload)
            self.written[payload] = len(data)
            text = zlib.decompress(data).decode()
            if len(path) == 1 and (kind == "s@" or (kind == "a@" and top in origins)):
                entry = f'["{kind}",{_dump(path)},{_dump(payload)}]'
                origins[top] = [entry] if kind == "s@" else [*origins[top], entry]
            else:
                origins.pop(top, None)
            kind, payload = kind[:-1], json.loads(text)
        elif len(path) == 1 and kind == "s" and payload == []:
            origins[top] = [f'["s",{_dump(path)},[]]']
        else:
            origins.pop(top, None)
        delta.apply(values, kind, path, payload)


def _segments(items: list[Any]) -> list[str]:
    """A long list's items as JSON lists of about SEGMENT_BYTES each, cut at sizes only
    (so the segments of an append-only list stay the same as it grows)."""
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    for item in items:
        text = _dump(item)
        chunk.append(text)
        size += len(text) + 1
        if size >= SEGMENT_BYTES:
            out.append("[" + ",".join(chunk) + "]")
            chunk, size = [], 0
    if chunk:
        out.append("[" + ",".join(chunk) + "]")
    return out


def _key_or_none(key: Any) -> str | None:
    """A probed key's encoding, or None if the codec cannot encode it (then it was never
    committed: ``shared.get(SomeClass)`` must not fail the checkpoint)."""
    try:
        return codec.encode_key(key)
    except SerializationError:
        return None


def _utf8(text: str, path: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        reason = "a string holds a lone surrogate, which UTF-8 cannot store"
        raise SerializationError(path, "str", reason) from None
