"""The embedded database: one SQLite file that the local store and queue share.

Outside Lambda, with nothing configured, runs live in ``.pflambda/pflambda.db`` in the
project, so ``pflambda run`` in one process and ``pflambda resume`` in the next see the
same run. This module owns the file: connections (one per thread and process), WAL mode
(readers never wait for the writer), a busy timeout (a second process waits for the lock
instead of failing), the schema version, and the mapping of SQLite's errors onto
pflambda's.

Writes go through :meth:`Database.write`, a ``BEGIN IMMEDIATE`` transaction: it takes the
file's write lock before reading, so a read-check-write (a conditional update, a queue
receive) is atomic across processes, exactly like a DynamoDB condition expression.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from pflambda.errors import ConfigError, RetryableError

__all__ = ["BUSY_TIMEOUT_SECONDS", "SCHEMA_VERSION", "Database"]

SCHEMA_VERSION: Final = 1
"""``PRAGMA user_version`` of files this code writes; newer files are refused."""
BUSY_TIMEOUT_SECONDS: Final = 30.0
"""How long a writer waits for another process's write lock before giving up."""


class Database:
    """A SQLite file opened in WAL mode; connections are per thread and per process.

    ``schema`` holds ``CREATE ... IF NOT EXISTS`` statements, run once when the first
    connection opens (several ports may open the same file, each with its own tables).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: Sequence[str] = (),
        *,
        timeout: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        self.path = Path(path)
        self._schema = tuple(schema)
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[tuple[int, sqlite3.Connection]] = []
        self._ready_pid: int | None = None

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (a new one after ``fork``), in autocommit mode."""
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == pid:
            return conn
        conn = self._open()
        self._local.conn, self._local.pid = conn, pid
        with self._lock:
            self._opened.append((pid, conn))
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the file's lock from its first statement."""
        conn = self.connection()
        with self.errors():
            conn.execute("BEGIN IMMEDIATE")
        try:
            with self.errors():
                yield conn
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn SQLite's "locked"/"busy" into :class:`RetryableError`, other faults into
        :class:`ConfigError` naming the file (a full disk, a read-only directory...)."""
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise RetryableError(
                    f"the embedded database {self.path} stayed locked by another process "
                    f"for {self._timeout:g} s: try again"
                ) from exc
            raise ConfigError(f"the embedded database {self.path} failed: {text}") from exc
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"the embedded database {self.path} is unusable: {exc}") from exc

    def close(self) -> None:
        """Close every connection this process opened (other threads' included)."""
        with self._lock:
            opened, self._opened = self._opened, []
        pid = os.getpid()
        for owner, conn in opened:
            if owner == pid:
                conn.close()
        self._local = threading.local()

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the embedded database {self.path}: {exc}") from exc
        try:
            with self.errors():
                self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path} was written by a newer pflambda (schema {version}, this one "
                f"reads {SCHEMA_VERSION}): upgrade pflambda or set PFLAMBDA_DIR elsewhere"
            )
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        if self._ready_pid == os.getpid():
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in self._schema:
                conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._ready_pid = os.getpid()
