"""MemoryBlobStore: the in-memory BlobStore, for tests and the local server."""

from __future__ import annotations

import threading

from pflambda.blobs.base import BlobNotFound, check_prefix

__all__ = ["MemoryBlobStore"]


class MemoryBlobStore:
    """A :class:`~pflambda.blobs.base.BlobStore` in a dict; safe to share between threads.

    It keeps its own copy of what is put (a ``bytearray`` changed afterwards changes
    nothing stored) and refuses anything but bytes-like values, as S3 would.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        """Store a copy of ``data`` at ``key``."""
        copy = bytes(memoryview(data))
        with self._lock:
            self._blobs[key] = copy

    def get(self, key: str) -> bytes:
        """The bytes at ``key``; :class:`BlobNotFound` if there are none."""
        with self._lock:
            data = self._blobs.get(key)
        if data is None:
            raise BlobNotFound(f"no blob at {key!r}")
        return data

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under the folder ``prefix``; how many there were."""
        check_prefix(prefix)
        with self._lock:
            doomed = [key for key in self._blobs if key.startswith(prefix)]
            for key in doomed:
                del self._blobs[key]
        return len(doomed)
