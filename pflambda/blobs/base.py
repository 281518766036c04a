"""The BlobStore protocol: immutable byte values by key, for what does not fit an item.

Keys are chosen by the engine (``runs/<run id>/<sha256>``), so a value written twice
is written to the same key with the same bytes: puts are idempotent.
"""

from __future__ import annotations

from typing import Protocol

from pflambda.errors import TerminalError

__all__ = ["BlobNotFound", "BlobStore"]


class BlobNotFound(TerminalError):
    """A checkpoint refers to a blob that is not there (expired or deleted)."""


class BlobStore(Protocol):
    """Bytes by key."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` (overwriting is allowed and idempotent)."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes at ``key``; :class:`BlobNotFound` if there are none."""
        ...
