"""Checkpoint bodies: what changed in shared since the last step, and how to rebuild it.

A body is compact JSON (zlib-compressed past a couple of KB, marked by a leading
``z``)::

    {"v": 1, "snap": false, "cursor": <tagged JSON>, "set": {key: value, ...},
     "blobs": {key: blob key, ...}, "del": [key, ...], "result": <tagged JSON>}

``set`` holds the values that changed in this step (all of them in a snapshot),
``blobs`` the changed values too large to keep inline -- they live in the blob store
under a content-addressed key, written once -- and ``del`` the keys removed. Keys
are :func:`~pflambda.engine.codec.encode_key` strings, values are codec JSON. A body
still over :data:`~pflambda.limits.CHECKPOINT_BODY_BUDGET` once compressed goes to the
blob store whole, and the item holds ``@`` and its key: one extra PUT, never a
failed write.

Change detection compares each value's encoded text with what was committed, so a
value mutated in place is seen as changed, and an unchanged value costs nothing.
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
from pflambda.engine import codec
from pflambda.errors import SerializationError
from pflambda.stores.base import Checkpoint

__all__ = ["Body", "SharedTracker", "read_body"]

FORMAT = 1
COMPRESS_OVER = 2048
_dump = codec.dump_json


@dataclass
class Body:
    """A decoded checkpoint body."""

    snapshot: bool
    cursor: codec.JSONValue
    values: dict[str, codec.JSONValue] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    result: codec.JSONValue = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_body(data: bytes) -> Body:
    """Parse a stored body (compressed or not)."""
    raw = zlib.decompress(data[1:]) if data[:1] == b"z" else data
    doc = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("v") != FORMAT:
        raise codec.DecodeError("checkpoint body has an unknown format")
    return Body(
        snapshot=bool(doc["snap"]),
        cursor=doc["cursor"],
        values=doc.get("set", {}),
        blobs=doc.get("blobs", {}),
        deleted=doc.get("del", []),
        result=doc.get("result"),
        extra=doc.get("extra", {}),
    )


class SharedTracker:
    """Knows what of shared is committed, writes deltas and rebuilds shared on resume."""

    def __init__(self, run_id: str, blobs: BlobStore) -> None:
        self.run_id = run_id
        self.blob_store = blobs
        self.committed: dict[str, str] = {}
        """Encoded key -> encoded value text, as of the last checkpoint."""
        self.refs: dict[str, str] = {}
        """Encoded key -> blob key, for committed values that live in the blob store."""
        self.delta_bytes = 0
        self.steps_since_snapshot = 0
        self.state_bytes = 0
        """What a snapshot of the committed state would take inline (blobs as refs)."""

    # -- writing --------------------------------------------------------------------

    def encode_shared(self, shared: dict[Any, Any], node_id: str | None) -> dict[str, str]:
        """Every key of shared, encoded; a clear error naming key, node and type."""
        current: dict[str, str] = {}
        try:
            for key, value in shared.items():
                current[codec.encode_key(key)] = codec.dumps(value, path=f"shared[{key!r}]")
        except SerializationError as exc:
            raise exc.with_node(node_id) if node_id else exc from None
        return current

    def want_snapshot(self) -> bool:
        """Whether the next checkpoint should hold all of shared."""
        if self.steps_since_snapshot + 1 >= limits.SNAPSHOT_EVERY:
            return True
        return self.delta_bytes >= max(self.state_bytes, limits.SNAPSHOT_DELTA_BYTES)

    def build(
        self,
        current: dict[str, str],
        cursor: codec.JSONValue,
        *,
        snapshot: bool,
        result: codec.JSONValue = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The body for a checkpoint of ``current``, and the blob refs it leaves behind."""
        if snapshot:
            changed = dict(current)
            deleted: list[str] = []
        else:
            changed = {k: t for k, t in current.items() if self.committed.get(k) != t}
            deleted = [k for k in self.committed if k not in current]
        refs = {k: r for k, r in self.refs.items() if k in current and k not in changed}
        inline, body_refs = self._place(changed, snapshot)
        refs.update(body_refs)
        head = {"v": FORMAT, "snap": snapshot, "cursor": cursor}
        tail: dict[str, Any] = {"blobs": body_refs, "del": deleted}
        if result is not None:
            tail["result"] = result
        if extra:
            tail["extra"] = extra
        text = _dump(head)[:-1] + ',"set":{' + _join(inline) + "}," + _dump(tail)[1:]
        data = _utf8(text, "shared")
        if len(data) > COMPRESS_OVER:
            data = b"z" + zlib.compress(data, 6)
        if len(data) > limits.CHECKPOINT_BODY_BUDGET:
            data = b"@" + self._offload(data, compressed=data[:1] == b"z").encode()
        return data, refs

    def _place(
        self, changed: dict[str, str], snapshot: bool
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Split changed values into inline text and blob refs (values over the inline limit)."""
        inline: dict[str, str] = {}
        refs: dict[str, str] = {}
        for key, text in changed.items():
            if snapshot and self.refs.get(key) and self.committed.get(key) == text:
                refs[key] = self.refs[key]
            elif len(text) > limits.INLINE_VALUE_LIMIT:
                refs[key] = self._offload(_utf8(text, f"shared[{key!r}]"))
            else:
                inline[key] = text
        return inline, refs

    def _offload(self, data: bytes, compressed: bool = False) -> str:
        """Put ``data`` in the blob store under its content hash (idempotent); its key."""
        key = f"runs/{self.run_id}/{hashlib.sha256(data).hexdigest()[:40]}"
        self.blob_store.put(key, data if compressed else zlib.compress(data, 1))
        return key

    def read(self, data: bytes) -> Body:
        """Parse a stored body, fetching it from the blob store if it was too large."""
        if data[:1] == b"@":
            data = self.blob_store.get(data[1:].decode())
        return read_body(data)

    def commit(
        self, current: dict[str, str], refs: dict[str, str], body_size: int, snap: bool
    ) -> None:
        """Record that the checkpoint built from ``current`` is now stored."""
        self.committed, self.refs = current, refs
        self.state_bytes = _inline_size(current, refs)
        if snap:
            self.delta_bytes, self.steps_since_snapshot = 0, 0
        else:
            self.delta_bytes += body_size + limits.CHECKPOINT_ITEM_OVERHEAD
            self.steps_since_snapshot += 1

    # -- reading --------------------------------------------------------------------

    def load(self, checkpoints: Iterable[Checkpoint]) -> tuple[dict[Any, Any], Body]:
        """Rebuild shared from a snapshot and the deltas after it; the last body too."""
        values: dict[str, codec.JSONValue | _BlobRef] = {}
        last: Body | None = None
        for ckpt in checkpoints:
            body = self.read(ckpt.body)
            if body.snapshot:
                values.clear()
                self.delta_bytes, self.steps_since_snapshot = 0, 0
            else:
                self.delta_bytes += len(ckpt.body) + limits.CHECKPOINT_ITEM_OVERHEAD
                self.steps_since_snapshot += 1
            for key in body.deleted:
                values.pop(key, None)
            values.update(body.values)
            values.update({k: _BlobRef(r) for k, r in body.blobs.items()})
            last = body
        if last is None:
            raise codec.DecodeError("no checkpoints to load")
        shared: dict[Any, Any] = {}
        self.committed, self.refs = {}, {}
        for key, value in values.items():
            if isinstance(value, _BlobRef):
                self.refs[key] = value.key
                text = zlib.decompress(self.blob_store.get(value.key)).decode()
            else:
                text = _dump(value)
            self.committed[key] = text
            shared[codec.decode_key(key)] = codec.loads(text)
        self.state_bytes = _inline_size(self.committed, self.refs)
        return shared, last


@dataclass(frozen=True)
class _BlobRef:
    key: str


def _utf8(text: str, path: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        reason = "a string holds a lone surrogate, which UTF-8 cannot store"
        raise SerializationError(path, "str", reason) from None


def _inline_size(current: dict[str, str], refs: dict[str, str]) -> int:
    """Bytes a snapshot of ``current`` would hold inline (blob refs count as the ref)."""
    return sum(len(k) + (len(refs[k]) if k in refs else len(t)) + 4 for k, t in current.items())


def _join(inline: dict[str, str]) -> str:
    return ",".join(f"{_dump(k)}:{t}" for k, t in inline.items())
