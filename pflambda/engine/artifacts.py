"""Artifact chunks a run emits while it goes on, committed with the step that emitted them.

A node calls :meth:`pflambda.RunContext.emit_artifact` (``current_run().emit_artifact``);
the chunk is checked at once (so the node gets a clear error where it made it) and held
until the step commits. The step's checkpoint carries it -- in the same single write as
the step's changes to shared -- as an append to the run's *artifact log*, a hidden value
the :class:`~pflambda.engine.state.SharedTracker` tracks beside shared (large chunks go to
the blob store by reference, like large values of shared; snapshots carry the whole log).
A step that fails, pauses or loses its commit drops its chunks: they are emitted again
when the step runs again, so a chunk is committed exactly once and in step order.

One log entry is one chunk, stored as its JSON text::

    {"s": step, "n": position, "id": artifact_id, "parts": [part, ...], "append": bool,
     "last": bool, "name": ..., "description": ..., "metadata": ...}

``n`` is the chunk's position in the log (0, 1, 2 ...): a total order for receivers that
may get chunks out of order (push notifications).

Parts are A2A parts in storage form (``{"text": ...}``, ``{"data": ...}``,
``{"bytes"|"uri": ..., "mediaType": ..., "filename": ...}``, each with optional
``metadata``). This module knows nothing of A2A beyond that shape: anything with a
``to_json()`` giving such a dict (``pflambda.Part``) is a part, and so is a ``str``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHUNK_BYTES",
    "RUN_BYTES",
    "ArtifactLog",
    "Streamed",
    "accumulate",
    "entries_after",
]

CHUNK_BYTES = 1_000_000
"""The largest chunk (its JSON) a node may emit: split larger content into chunks."""
RUN_BYTES = 4_000_000
"""All chunks of one run together: GetTask returns them in one response, and a Lambda
response holds at most 6 MB."""
ID_CHARS = 256
_ATTEMPT: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "pflambda_exec_attempt", default=None
)
"""The ``exec`` attempt running (a token), so the chunks of one that raises go with it."""
_PART_KEYS = frozenset({"text", "data", "bytes", "uri", "mediaType", "filename", "metadata"})
_CONTENT = ("text", "data", "bytes", "uri")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass
class Streamed:
    """An artifact as its chunks so far left it."""

    artifact_id: str
    parts: list[dict[str, Any]]
    name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    complete: bool = False
    """Its last chunk was emitted."""
    chunks: int = 0
    first_step: int = 0
    last_step: int = 0


def accumulate(entries: Iterable[Mapping[str, Any]]) -> dict[str, Streamed]:
    """The artifacts ``entries`` (log entries, in order) build, in first-emission order.

    A chunk with ``append`` adds its parts; one without replaces the artifact's parts
    (A2A's rule); ``name``/``description``/``metadata`` of a later chunk win."""
    out: dict[str, Streamed] = {}
    for entry in entries:
        art_id, step = entry["id"], int(entry["s"])
        parts = [dict(p) for p in entry["parts"]]
        found = out.get(art_id)
        if found is None:
            found = out[art_id] = Streamed(art_id, [], first_step=step)
        if entry.get("append"):
            found.parts.extend(parts)
        else:
            found.parts = parts
        for key in ("name", "description", "metadata"):
            if entry.get(key) is not None:
                setattr(found, key, entry[key])
        found.complete = found.complete or bool(entry.get("last"))
        found.chunks += 1
        found.last_step = step
    return out


def entries_after(entries: Iterable[Mapping[str, Any]], step: int) -> list[Mapping[str, Any]]:
    """The entries committed by steps after ``step``, in order."""
    return [e for e in entries if int(e["s"]) > step]


@dataclass
class ArtifactLog:
    """A run's artifact log as this process holds it, and the chunks of the step running."""

    texts: list[str] = field(default_factory=list)
    """The committed entries, as stored (JSON text each)."""
    pending: list[str] = field(default_factory=list)
    """The running step's chunks, not yet committed."""
    owners: list[object | None] = field(default_factory=list)
    """The ``exec`` attempt that emitted each pending chunk (``None``: prep or post)."""
    _state: dict[str, Streamed] = field(default_factory=dict)
    _bytes: int = 0

    @classmethod
    def of(cls, texts: Sequence[str]) -> ArtifactLog:
        """A log loaded from a checkpoint."""
        log = cls(list(texts))
        log._state = accumulate(json.loads(t) for t in texts)
        log._bytes = sum(len(t) for t in texts)
        return log

    def entries(self) -> list[dict[str, Any]]:
        """The committed entries, decoded."""
        return [json.loads(t) for t in self.texts]

    def emit(
        self,
        step: int,
        artifact_id: str,
        parts: Any,
        *,
        append: bool = False,
        last_chunk: bool = False,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Check one chunk against the log (and this step's chunks) and hold it."""
        entry: dict[str, Any] = {
            "s": step,
            "n": len(self.texts) + len(self.pending),
            "id": _artifact_id(artifact_id),
            "parts": _parts(parts),
            "append": _flag(append, "append"),
            "last": _flag(last_chunk, "last_chunk"),
        }
        for key, value in (("name", name), ("description", description)):
            if value is not None:
                if not isinstance(value, str):
                    kind = type(value).__name__
                    raise TypeError(f"emit_artifact {key} must be a str, not {kind}")
                entry[key] = value
        if metadata is not None:
            entry["metadata"] = _json_object(metadata, "metadata")
        text = _encode(entry)
        if len(text.encode()) > CHUNK_BYTES:
            raise ValueError(
                f"artifact chunk {artifact_id!r} is {len(text.encode()):,} bytes, over the "
                f"{CHUNK_BYTES:,}-byte limit: split it into chunks (append=True)"
            )
        self._check_order(entry)
        total = self._bytes + sum(len(t) for t in self.pending) + len(text)
        if total > RUN_BYTES:
            raise ValueError(
                f"the run's artifacts would hold {total:,} bytes, over the {RUN_BYTES:,}-byte "
                "limit (GetTask returns them in one response): put large content in a blob "
                "store and emit a file part with its uri"
            )
        self.pending.append(text)
        self.owners.append(_ATTEMPT.get())

    def discard(self, attempt: object) -> None:
        """An ``exec`` attempt raised: the chunks it emitted go (a retry emits its own)."""
        kept = [(t, o) for t, o in zip(self.pending, self.owners, strict=True) if o is not attempt]
        self.pending = [t for t, _ in kept]
        self.owners = [o for _, o in kept]

    def guard(self, node: Any) -> None:
        """Wrap ``exec``/``exec_async`` of a per-visit node copy: an attempt that raises
        (and is retried, or ends in ``exec_fallback``) takes its chunks with it."""
        for name in ("exec", "exec_async"):
            method = getattr(node, name, None)
            if method is not None:
                setattr(node, name, _guarded(self, method))

    def _check_order(self, entry: dict[str, Any]) -> None:
        art_id = entry["id"]
        state = accumulate(json.loads(t) for t in self.pending)
        before = self._state.get(art_id)
        now = state.get(art_id)
        known = before is not None or now is not None
        complete = (before is not None and before.complete) or (now is not None and now.complete)
        if complete:
            raise ValueError(
                f"artifact {art_id!r} is complete (its last chunk was emitted): "
                "emit no more chunks of it, or use a new artifact_id"
            )
        if entry["append"] and not known:
            raise ValueError(
                f"cannot append to artifact {art_id!r}: none of it was emitted yet "
                "(emit its first chunk with append=False)"
            )

    def staged(self) -> list[str]:
        """The committed entries and this step's chunks: the log the checkpoint stores."""
        return self.texts + self.pending if self.pending else self.texts

    def committed(self, texts: list[str]) -> list[dict[str, Any]]:
        """The step's checkpoint is stored with ``texts``: its chunks are committed.
        Returns them (decoded) for the stream."""
        new = [json.loads(t) for t in self.pending]
        self.texts = texts
        self._bytes += sum(len(t) for t in self.pending)
        for entry in new:
            _merge(self._state, entry)
        self.pending, self.owners = [], []
        return new

    def drop(self) -> None:
        """The step did not commit: forget its chunks (the step runs again)."""
        self.pending, self.owners = [], []


def _guarded(log: ArtifactLog, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` as one attempt: its chunks are discarded if it raises."""
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def attempt_async(*args: Any, **kwargs: Any) -> Any:
            token = _ATTEMPT.set(object())
            try:
                return await method(*args, **kwargs)
            except BaseException:
                log.discard(_ATTEMPT.get())
                raise
            finally:
                _ATTEMPT.reset(token)

        return attempt_async

    @functools.wraps(method)
    def attempt(*args: Any, **kwargs: Any) -> Any:
        token = _ATTEMPT.set(object())
        try:
            return method(*args, **kwargs)
        except BaseException:
            log.discard(_ATTEMPT.get())
            raise
        finally:
            _ATTEMPT.reset(token)

    return attempt


def _merge(state: dict[str, Streamed], entry: dict[str, Any]) -> None:
    found = state.get(entry["id"])
    done = accumulate([entry])[entry["id"]]
    if found is None:
        state[entry["id"]] = done
    else:
        found.complete = found.complete or done.complete


def _encode(entry: dict[str, Any]) -> str:
    try:
        text = _dumps(entry)
        text.encode()
    except UnicodeEncodeError:
        raise ValueError(
            f"artifact chunk {entry['id']!r} holds a lone surrogate, which UTF-8 cannot store"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"artifact chunk {entry['id']!r} is not JSON: {exc}") from None
    return text


def _artifact_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"emit_artifact needs an artifact_id (a non-empty str), got {value!r}")
    if len(value) > ID_CHARS:
        raise ValueError(f"artifact_id is {len(value)} characters; at most {ID_CHARS}")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"emit_artifact {name} must be True or False, not {value!r}")
    return value


def _parts(parts: Any) -> list[dict[str, Any]]:
    """``parts`` (a part, a str, or a list of them) as storage-form part dicts."""
    many = isinstance(parts, list | tuple)
    items = list(parts) if many else [parts]
    if not items:
        raise ValueError("emit_artifact needs at least one part (a str or a pflambda.Part)")
    return [_part(p, i) for i, p in enumerate(items)]


def _part(part: Any, index: int) -> dict[str, Any]:
    if isinstance(part, str):
        return {"text": part}
    to_json = getattr(part, "to_json", None)
    if not callable(to_json) or isinstance(part, type):
        hint = " (wrap data as Part(data=...))" if isinstance(part, dict | list) else ""
        if isinstance(part, bytes | bytearray):
            hint = " (send bytes as Part(file_bytes=<base64>, media_type=...))"
        raise TypeError(
            f"emit_artifact part {index} is a {type(part).__name__}: "
            f"parts are str or pflambda.Part{hint}"
        )
    doc = to_json()
    if not isinstance(doc, dict) or not set(doc) <= _PART_KEYS:
        raise TypeError(f"emit_artifact part {index}: to_json() gave no A2A part: {doc!r}")
    content = [k for k in _CONTENT if doc.get(k) is not None]
    if content not in (["text"], ["data"], ["bytes"], ["uri"]):
        raise ValueError(
            f"emit_artifact part {index} must hold exactly one of text, data, a file's "
            f"bytes or uri; it holds {content or 'nothing'}"
        )
    for key in ("text", "bytes", "uri", "mediaType", "filename"):
        if key in doc and not isinstance(doc[key], str):
            raise TypeError(f"emit_artifact part {index}: {key} must be a str")
    if doc.get("metadata") is not None:
        doc["metadata"] = _json_object(doc["metadata"], f"part {index} metadata")
    if "data" in doc:
        _json_value(doc["data"], f"part {index} data")
    return dict(doc)


def _json_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"emit_artifact {what} must be a dict with str keys")
    out = dict(value)
    _json_value(out, what)
    return out


def _json_value(value: Any, what: str) -> None:
    try:
        _dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"emit_artifact {what} is not JSON: {exc}") from None
