"""The BlobStore protocol: immutable byte values by key, for what does not fit an item.

Keys are chosen by the engine (``runs/<run id>/<sha256>``), so a value written twice
is written to the same key with the same bytes: puts are idempotent. Everything a run
owns is under its folder ``runs/<run id>/``, deleted together (:meth:`BlobStore.delete_prefix`)
when the run's record expires (docs/durability.md, "Retention").
"""

from __future__ import annotations

from typing import Protocol

from pflambda.errors import TerminalError

__all__ = ["BlobNotFound", "BlobStore", "check_prefix"]


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

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with ``prefix``; how many there were.

        ``prefix`` names a folder: non-empty and ending in ``/`` (``runs/<id>/``), so
        ``runs/a/`` never reaches ``runs/ab/...`` (:class:`ValueError` otherwise).
        Deleting a folder that is empty or gone is not an error (returns 0).
        """
        ...


def check_prefix(prefix: str) -> str:
    """``prefix`` if it names a folder (``runs/<id>/``); :class:`ValueError` otherwise."""
    if not prefix.endswith("/") or prefix.startswith("/") or "//" in prefix:
        raise ValueError(
            f"invalid blob folder {prefix!r}: use a relative path ending in '/', like 'runs/a/'"
        )
    return prefix
