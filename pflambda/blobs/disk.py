"""DiskBlobStore: large values as files in a directory, beside the embedded database.

The default blob store outside Lambda (see :mod:`pflambda.aws.config`): the key
``runs/<run id>/<sha256>`` is the file ``<root>/runs/<run id>/<sha256>``. A put writes a
temporary file in the same directory and renames it into place, so a reader in another
process sees either nothing or the whole value, never half of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pflambda.blobs.base import BlobNotFound
from pflambda.errors import ConfigError

__all__ = ["DiskBlobStore"]


class DiskBlobStore:
    """A :class:`~pflambda.blobs.base.BlobStore` of files under ``root``.

    Keys are ``/``-separated relative paths; a key that is empty, absolute, or has an
    empty, ``.`` or ``..`` part is refused with :class:`ValueError` (it would name a file
    outside ``root``, or a different key's file).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def put(self, key: str, data: bytes) -> None:
        """Store a copy of ``data`` at ``key``, atomically."""
        copy = bytes(memoryview(data))
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(copy)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ConfigError(f"cannot write blob {key!r} under {self.root}: {exc}") from exc

    def get(self, key: str) -> bytes:
        """The bytes at ``key``; :class:`~pflambda.blobs.base.BlobNotFound` if none."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(f"no blob at {key!r} (looked in {path})") from None
        except OSError as exc:
            raise ConfigError(f"cannot read blob {key!r} under {self.root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        bad = not key or key.startswith("/") or "\\" in key or "\0" in key
        if bad or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"invalid blob key {key!r}: use a relative path like 'runs/a/b'")
        return self.root.joinpath(*parts)
