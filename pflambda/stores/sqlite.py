"""SQLiteStore: runs and checkpoints in an embedded SQLite file, shared between processes.

The default store outside Lambda (see :mod:`pflambda.aws.config`). It keeps the very
items the DynamoDB store writes (see :mod:`pflambda.stores._item`), as JSON, so every
record that is too large or not storable fails here as it would on AWS; a binary ``body``
lives in a BLOB column beside its item. Each rule of the Store protocol is one SQL
statement or one ``BEGIN IMMEDIATE`` transaction (:mod:`pflambda.embedded`), so two
processes racing on a run behave as two Lambdas racing on DynamoDB: a primary key is the
``attribute_not_exists`` condition, a transaction is the condition expression.

Unlike DynamoDB, nothing expires: ``expires_at`` is stored and returned, never enforced.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Final

from pflambda.embedded import Database
from pflambda.errors import CheckpointConflict, ConfigError, RunExists, RunNotFound
from pflambda.limits import MARKER_CANCEL
from pflambda.stores._fanout_items import (
    chunk_from_item,
    chunk_item,
    fanout_from_item,
    fanout_item,
    not_found,
    out_of_range,
)
from pflambda.stores._item import (
    Item,
    check_size,
    checkpoint_from_item,
    checkpoint_item,
    index_attrs,
    info_from_item,
    lease_sk,
    listed_from_item,
    marker_item,
    refused,
    run_from_item,
    run_item,
    update_values,
)
from pflambda.stores._listing import Scope, decode_token, encode_token
from pflambda.stores.base import (
    Checkpoint,
    CheckpointInfo,
    FanOut,
    LeaseHeld,
    Page,
    RunRecord,
    RunStatus,
)

__all__ = ["SCHEMA", "SQLiteStore"]

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        sort_key TEXT NOT NULL,
        context_id TEXT,
        owner TEXT,
        item TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS runs_by_time ON runs (sort_key)",
    "CREATE INDEX IF NOT EXISTS runs_by_context ON runs (context_id, sort_key)",
    "CREATE INDEX IF NOT EXISTS runs_by_owner ON runs (owner, sort_key)",
    """CREATE TABLE IF NOT EXISTS leases (
        run_id TEXT PRIMARY KEY,
        lease_key TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS leases_by_end ON leases (lease_key)",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        snapshot INTEGER NOT NULL,
        item TEXT NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS snapshots ON checkpoints (run_id, snapshot, seq)",
    """CREATE TABLE IF NOT EXISTS fanouts (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS chunks (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        chunk INTEGER NOT NULL,
        item TEXT NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (run_id, seq, chunk)
    ) WITHOUT ROWID""",
)
"""The store's tables: one row per DynamoDB item, keyed as the item is; ``leases`` is
the sparse lease index (a row only while a run is leased)."""

_NOT_MARKER: Final = "json_extract(item, '$.marker') IS NULL"
"""SQL: a step row that is a checkpoint, not a cancel's marker."""


class SQLiteStore:
    """A :class:`~pflambda.stores.base.Store` in a SQLite file; safe across threads and
    processes (WAL mode, a busy timeout, write transactions that lock up front)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float | None = None) -> None:
        extra = {} if timeout is None else {"timeout": timeout}
        self.db = Database(path, SCHEMA, **extra)

    def close(self) -> None:
        """Close this process's connections to the file."""
        self.db.close()

    def create_run(self, record: RunRecord) -> None:
        """Store a new run; :class:`~pflambda.errors.RunExists` if the id is taken."""
        item = run_item(record)
        check_size(item, f"run {record.run_id}")
        try:
            with self.db.write() as conn:
                _insert_run(conn, record.run_id, item)
        except sqlite3.IntegrityError:
            raise RunExists(f"run {record.run_id} already exists") from None

    def start_run(self, record: RunRecord, checkpoint: Checkpoint) -> None:
        """Store a new run and its checkpoint 0 in one transaction; RunExists if taken."""
        item = run_item(record)
        check_size(item, f"run {record.run_id}")
        step = checkpoint_item(checkpoint)
        check_size(step, f"checkpoint {checkpoint.seq} of run {record.run_id}")
        try:
            with self.db.write() as conn:
                _insert_run(conn, record.run_id, item)
                _insert_step(conn, record.run_id, checkpoint.seq, step)
        except sqlite3.IntegrityError:
            raise RunExists(f"run {record.run_id} already exists") from None

    def get_run(self, run_id: str) -> RunRecord:
        """The run's record; :class:`~pflambda.errors.RunNotFound` if there is none."""
        with self.db.errors():
            row = self._read("SELECT item FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id}")
        return run_from_item(json.loads(row[0]))

    def update_run(
        self,
        run_id: str,
        changes: Mapping[str, Any],
        *,
        expect_status: Collection[RunStatus] | None = None,
    ) -> RunRecord:
        """Change the named fields (``None`` removes one), if the status is as expected."""
        values = update_values(run_id, changes)
        with self.db.write() as conn:
            item = _update(conn, run_id, values, expect_status)
        return run_from_item(item)

    def commit_step(
        self,
        checkpoint: Checkpoint,
        changes: Mapping[str, Any],
        *,
        expect_status: Collection[RunStatus],
    ) -> None:
        """Put the checkpoint and change the run in one transaction: both or neither."""
        step = checkpoint_item(checkpoint)
        run_id = checkpoint.run_id
        check_size(step, f"checkpoint {checkpoint.seq} of run {run_id}")
        values = update_values(run_id, changes)
        try:
            with self.db.write() as conn:
                _insert_step(conn, run_id, checkpoint.seq, step)
                _update(conn, run_id, values, expect_status)
        except sqlite3.IntegrityError:
            raise CheckpointConflict(
                f"run {run_id} already has checkpoint {checkpoint.seq}"
            ) from None

    def acquire_lease(
        self,
        run_id: str,
        owner: str,
        until: float,
        *,
        now: float,
        expect_status: Collection[RunStatus] = (RunStatus.RUNNING,),
        takeover: Collection[str] = (),
        changes: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Lease the run to ``owner`` if nobody else holds a live lease (see the protocol)."""
        values = update_values(
            run_id, {**(changes or {}), "lease_owner": owner, "lease_until": until}
        )
        with self.db.write() as conn:
            row = conn.execute("SELECT item FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None:
                holder = run_from_item(json.loads(row[0]))
                free = not holder.leased(now) or holder.lease_owner in {owner, *takeover}
                if holder.status in expect_status and not free:
                    raise LeaseHeld(run_id, holder.lease_owner, holder.lease_until, now)
            item = _update(conn, run_id, values, expect_status)
        return run_from_item(item)

    def claim_step(self, run_id: str) -> int:
        """Put a marker on the step after the newest one (or return the marker there)."""
        with self.db.write() as conn:
            run = conn.execute("SELECT item FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if run is None:
                raise RunNotFound(f"no run {run_id}")
            row = conn.execute(
                "SELECT seq, json_extract(item, '$.marker') FROM checkpoints "
                "WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
                (run_id,),
            ).fetchone()
            if row is not None and row[1] is not None:
                return int(row[0])
            seq = 0 if row is None else int(row[0]) + 1
            _insert_step(conn, run_id, seq, marker_item(run_id, seq, MARKER_CANCEL, None))
        return seq

    def list_stalled(self, now: float, *, limit: int = 100) -> list[RunRecord]:
        """Runs whose lease ended before ``now``, oldest first, through the lease index."""
        with self.db.errors():
            rows = self._read(
                "SELECT runs.item FROM leases JOIN runs USING (run_id) "
                "WHERE leases.lease_key < ? ORDER BY leases.lease_key LIMIT ?",
                (lease_sk(now, "\uffff"), limit),
            ).fetchall()
        return [run_from_item(json.loads(item)) for (item,) in rows]

    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Commit a step; :class:`~pflambda.errors.CheckpointConflict` if ``seq`` exists."""
        item = checkpoint_item(checkpoint)
        check_size(item, f"checkpoint {checkpoint.seq} of run {checkpoint.run_id}")
        try:
            with self.db.write() as conn:
                _insert_step(conn, checkpoint.run_id, checkpoint.seq, item)
        except sqlite3.IntegrityError:
            raise CheckpointConflict(
                f"run {checkpoint.run_id} already has checkpoint {checkpoint.seq}"
            ) from None

    def load_checkpoints(self, run_id: str, at: int | None = None) -> list[Checkpoint]:
        """The latest snapshot at or before ``at`` and the checkpoints after it: one query."""
        top = (1 << 62) if at is None else at
        with self.db.errors():
            rows = self._read(
                "SELECT item, body FROM checkpoints WHERE run_id = ?1 AND seq <= ?2 AND seq >= "
                "COALESCE((SELECT max(seq) FROM checkpoints "
                "WHERE run_id = ?1 AND snapshot = 1 AND seq <= ?2), 0) "
                f"AND {_NOT_MARKER} ORDER BY seq",
                (run_id, top),
            ).fetchall()
        return [checkpoint_from_item(run_id, _with_body(item, body)) for item, body in rows]

    def list_checkpoints(self, run_id: str, after: int = -1) -> Iterator[CheckpointInfo]:
        """Every checkpoint with ``seq > after``, oldest first, without bodies."""
        with self.db.errors():
            rows = self._read(
                f"SELECT item FROM checkpoints WHERE run_id = ? AND seq > ? AND {_NOT_MARKER} "
                "ORDER BY seq",
                (run_id, after),
            ).fetchall()
        return iter([info_from_item(json.loads(item)) for (item,) in rows])

    def last_checkpoint(self, run_id: str) -> CheckpointInfo | None:
        """The newest checkpoint without its body; ``None`` if the run has none."""
        with self.db.errors():
            row = self._read(
                f"SELECT item FROM checkpoints WHERE run_id = ? AND {_NOT_MARKER} "
                "ORDER BY seq DESC LIMIT 1",
                (run_id,),
            ).fetchone()
        return None if row is None else info_from_item(json.loads(row[0]))

    def list_runs(
        self,
        *,
        limit: int = 50,
        next_token: str | None = None,
        context_id: str | None = None,
        owner: str | None = None,
        agent: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
    ) -> Page:
        """Runs, most recently updated first (then by id), through an index."""
        if limit < 1:
            raise ConfigError(f"list_runs limit must be at least 1, not {limit}")
        where, args = _where(Scope.of(owner, agent, context_id, status), decode_token(next_token))
        with self.db.errors():
            rows = self._read(
                f"SELECT sort_key, item FROM runs WHERE {where} ORDER BY sort_key DESC LIMIT ?",
                (*args, limit + 1),
            ).fetchall()
        page = rows[:limit]
        token = encode_token(page[-1][0]) if len(rows) > limit else None
        return Page([listed_from_item(json.loads(item)) for _, item in page], token)

    def count_runs(
        self,
        *,
        context_id: str | None = None,
        owner: str | None = None,
        agent: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
    ) -> int:
        """How many runs match (one ``count(*)``)."""
        where, args = _where(Scope.of(owner, agent, context_id, status), None)
        with self.db.errors():
            (count,) = self._read(f"SELECT count(*) FROM runs WHERE {where}", args).fetchone()
        return int(count)

    def create_fanout(self, fanout: FanOut) -> FanOut:
        """Store a fan-out header, or return the one already stored for its step."""
        item = fanout_item(fanout)
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO fanouts (run_id, seq, item) VALUES (?, ?, ?)",
                (fanout.run_id, fanout.seq, _dump(item)),
            )
            (stored,) = conn.execute(
                "SELECT item FROM fanouts WHERE run_id = ? AND seq = ?",
                (fanout.run_id, fanout.seq),
            ).fetchone()
        return fanout_from_item(json.loads(stored))

    def get_fanout(self, run_id: str, seq: int) -> FanOut:
        """The header; :class:`~pflambda.stores.base.FanOutNotFound` if none."""
        with self.db.errors():
            row = self._read(
                "SELECT item FROM fanouts WHERE run_id = ? AND seq = ?", (run_id, seq)
            ).fetchone()
        if row is None:
            raise not_found(run_id, seq)
        return fanout_from_item(json.loads(row[0]))

    def record_chunk(
        self, run_id: str, seq: int, chunk: int, body: bytes, *, expires_at: int | None = None
    ) -> bool:
        """Store the chunk and count it done in one transaction; False for a duplicate."""
        item = chunk_item(run_id, seq, chunk, body, expires_at)
        data = item.pop("body")["B"]
        with self.db.write() as conn:
            header = _fanout_row(conn, run_id, seq)
            chunks = int(header["chunks"]["N"])
            if chunk >= chunks:
                raise out_of_range(run_id, seq, chunk, chunks)
            inserted = conn.execute(
                "INSERT OR IGNORE INTO chunks (run_id, seq, chunk, item, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, seq, chunk, _dump(item), data),
            ).rowcount
            if not inserted:
                return False
            header["done"] = {"N": str(int(header["done"]["N"]) + 1)}
            _save_fanout(conn, run_id, seq, header)
        return True

    def claim_fanin(self, run_id: str, seq: int) -> bool:
        """True for the first caller once every chunk is done; False otherwise."""
        with self.db.write() as conn:
            header = _fanout_row(conn, run_id, seq)
            finished = int(header["done"]["N"]) == int(header["chunks"]["N"])
            if header["claimed"]["BOOL"] or not finished:
                return False
            header["claimed"] = {"BOOL": True}
            _save_fanout(conn, run_id, seq, header)
        return True

    def load_chunks(self, run_id: str, seq: int) -> list[tuple[int, bytes]]:
        """Every recorded chunk as ``(chunk, body)``, in chunk order."""
        with self.db.errors():
            rows = self._read(
                "SELECT item, body FROM chunks WHERE run_id = ? AND seq = ? ORDER BY chunk",
                (run_id, seq),
            ).fetchall()
        return [chunk_from_item(_with_body(item, body)) for item, body in rows]

    def _read(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        return self.db.connection().execute(sql, args)


def _dump(item: Item) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def _with_body(item: str, body: bytes) -> Item:
    loaded: Item = json.loads(item)
    loaded["body"] = {"B": bytes(body)}
    return loaded


def _where(scope: Scope, after: str | None) -> tuple[str, tuple[Any, ...]]:
    """A listing's WHERE clause: owner and context through the indexes, agent and
    status from the item (an embedded file holds one developer's runs)."""
    where, args = ["1 = 1"], []
    for column, value in (
        ("sort_key <", after),
        ("context_id =", scope.context_id),
        ("owner =", scope.owner),
        ("json_extract(item, '$.agent.S') =", scope.agent),
    ):
        if value is not None:
            where.append(f"{column} ?")
            args.append(value)
    if scope.statuses is not None:
        marks = ", ".join("?" for _ in scope.statuses)
        where.append(f"json_extract(item, '$.status.S') IN ({marks})")
        args += sorted(s.value for s in scope.statuses)
    return " AND ".join(where), tuple(args)


def _index(item: Item) -> tuple[str, str | None, str | None]:
    """The run's index columns: list order (last update), context and owner."""
    context = item.get("context_id")
    owner = item.get("owner")
    return (
        item["lsk"]["S"],
        None if context is None else context["S"],
        None if owner is None else owner["S"],
    )


def _insert_run(conn: sqlite3.Connection, run_id: str, item: Item) -> None:
    """Insert a run's row (IntegrityError if the id is taken) and its lease index row."""
    conn.execute(
        "INSERT INTO runs (run_id, sort_key, context_id, owner, item) VALUES (?, ?, ?, ?, ?)",
        (run_id, *_index(item), _dump(item)),
    )
    _index_lease(conn, run_id, item)


def _insert_step(conn: sqlite3.Connection, run_id: str, seq: int, item: Item) -> None:
    """Insert a step's row (IntegrityError if the step is taken); markers have no body."""
    item = dict(item)
    body = item.pop("body", {"B": b""})["B"]
    snapshot = bool(item.get("snapshot", {}).get("BOOL", False))
    conn.execute(
        "INSERT INTO checkpoints (run_id, seq, snapshot, item, body) VALUES (?, ?, ?, ?, ?)",
        (run_id, seq, snapshot, _dump(item), body),
    )


def _update(
    conn: sqlite3.Connection,
    run_id: str,
    values: Mapping[str, dict[str, Any] | None],
    expect_status: Collection[RunStatus] | None,
) -> Item:
    """Apply ``values`` to the run's row if its status is as expected (inside a write)."""
    row = conn.execute("SELECT item FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(f"no run {run_id}")
    item: Item = json.loads(row[0])
    status = RunStatus(item["status"]["S"])
    if expect_status is not None and status not in expect_status:
        raise refused(run_id, status, expect_status)
    for attr, value in values.items():
        if value is None:
            item.pop(attr, None)
        else:
            item[attr] = value
    item |= index_attrs(item)
    check_size(item, f"run {run_id}")
    conn.execute(
        "UPDATE runs SET sort_key = ?, context_id = ?, owner = ?, item = ? WHERE run_id = ?",
        (*_index(item), _dump(item), run_id),
    )
    _index_lease(conn, run_id, item)
    return item


def _index_lease(conn: sqlite3.Connection, run_id: str, item: Item) -> None:
    """Keep the lease index row in step with the item's ``gsi3sk`` (present or not)."""
    key = item.get("gsi3sk")
    if key is None:
        conn.execute("DELETE FROM leases WHERE run_id = ?", (run_id,))
    else:
        conn.execute(
            "INSERT OR REPLACE INTO leases (run_id, lease_key) VALUES (?, ?)", (run_id, key["S"])
        )


def _fanout_row(conn: sqlite3.Connection, run_id: str, seq: int) -> Item:
    row = conn.execute(
        "SELECT item FROM fanouts WHERE run_id = ? AND seq = ?", (run_id, seq)
    ).fetchone()
    if row is None:
        raise not_found(run_id, seq)
    header: Item = json.loads(row[0])
    return header


def _save_fanout(conn: sqlite3.Connection, run_id: str, seq: int, header: Item) -> None:
    conn.execute(
        "UPDATE fanouts SET item = ? WHERE run_id = ? AND seq = ?", (_dump(header), run_id, seq)
    )
