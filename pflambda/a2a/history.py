"""A task's conversation history, kept bounded in the run's record.

The history lives in the run's ``META`` item (``attrs["a2a"]["history"]``), which is
one DynamoDB item of at most 400 KB and is rewritten at every status change. A message
larger than :data:`~pflambda.limits.INLINE_TEXT_BYTES` as JSON goes to the blob store
under its content hash and the history keeps ``{"$ref": key}`` in its place, so a
250 KB question or ten 120 KB replies cost the record a few hundred bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from pflambda import limits
from pflambda.blobs.base import BlobStore

__all__ = ["REF", "load", "store"]

REF = "$ref"
"""The key of a history entry that points to a message in the blob store."""


def store(blobs: BlobStore, run_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """The history entry for ``message`` (its JSON form): itself, or a reference."""
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(data) <= limits.INLINE_TEXT_BYTES:
        return message
    key = f"runs/{run_id}/message-{hashlib.sha256(data).hexdigest()[:40]}"
    blobs.put(key, data)
    return {REF: key}


def load(blobs: BlobStore, entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages of a history, read back from the blob store where they were put."""
    loaded: list[dict[str, Any]] = []
    for entry in entries:
        ref = entry.get(REF) if isinstance(entry, dict) else None
        loaded.append(json.loads(blobs.get(ref)) if isinstance(ref, str) else entry)
    return loaded
