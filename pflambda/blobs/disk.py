"""DiskBlobStore: large values as files in a directory, beside the embedded database.

The default blob store outside Lambda (see :mod:`pflambda.aws.config`): the key
``runs/<run id>/<sha256>`` is the file ``<root>/runs/<run id>/<sha256>``. A put writes a
temporary file in the same directory and renames it into place, so a reader in another
process sees either nothing or the whole value, never half of it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pflambda.blobs.base import BlobNotFound, check_prefix
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

    def delete_prefix(self, prefix: str) -> int:
        """Delete the folder ``prefix`` (``runs/<id>/``) and every blob in it; how many."""
        folder = self._path(check_prefix(prefix)[:-1])
        count = sum(1 for _ in self._files(folder))
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise ConfigError(f"cannot delete blobs under {folder}: {exc}") from exc
        return count

    def remove(self, key: str) -> bool:
        """Delete the blob at ``key``; False if there was none."""
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ConfigError(f"cannot delete blob {key!r} under {self.root}: {exc}") from exc
        return True

    def modified(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Every key under the folder ``prefix`` with its last write (epoch seconds):
        what the local prune reads to find old shapes and orphaned folders."""
        folder = self._path(check_prefix(prefix)[:-1])
        for path in self._files(folder):
            try:
                stamp = path.stat().st_mtime
            except FileNotFoundError:
                continue  # deleted meanwhile
            yield path.relative_to(self.root).as_posix(), stamp

    @staticmethod
    def _files(folder: Path) -> Iterator[Path]:
        """The blob files under ``folder`` (not a put's temporary file), any depth."""
        for where, _, names in os.walk(folder):
            for name in names:
                if not name.startswith(".put-"):
                    yield Path(where, name)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        bad = not key or key.startswith("/") or "\\" in key or "\0" in key
        if bad or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"invalid blob key {key!r}: use a relative path like 'runs/a/b'")
        return self.root.joinpath(*parts)
