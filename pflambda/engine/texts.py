"""Texts that can grow (a paused run's question): inline when small, by reference when not.

A run's record is one DynamoDB item (400 KB), read on every status change; a question
of any size would make it unbounded. Above :data:`~pflambda.limits.INLINE_TEXT_BYTES`
the text goes to the blob store under its content hash and the record keeps the key.
"""

from __future__ import annotations

import hashlib

from pflambda import limits
from pflambda.blobs.base import BlobStore

__all__ = ["place", "resolve"]


def place(blobs: BlobStore, run_id: str, text: str) -> tuple[str | None, str | None]:
    """``(text, None)`` for a small text, ``(None, key)`` once it is stored as a blob."""
    data = text.encode("utf-8")
    if len(data) <= limits.INLINE_TEXT_BYTES:
        return text, None
    key = f"runs/{run_id}/text-{hashlib.sha256(data).hexdigest()[:40]}"
    blobs.put(key, data)
    return None, key


def resolve(blobs: BlobStore, text: str | None, ref: str | None) -> str | None:
    """The text :func:`place` stored (read from the blob store when it holds it)."""
    if ref is None:
        return text
    return blobs.get(ref).decode("utf-8")
