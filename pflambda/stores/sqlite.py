"""SQLiteStore: runs and checkpoints in an embedded SQLite file, shared between processes.

The default store outside Lambda (see :mod:`pflambda.aws.config`). It keeps the very
items the DynamoDB store writes (see :mod:`pflambda.stores._item`), as JSON, so every
record that is too large or not storable fails here as it would on AWS; a binary ``body``
lives in a BLOB column beside its item. Each rule of the Store protocol is one SQL
statement or one ``BEGIN IMMEDIATE`` transaction (:mod:`pflambda.embedded`), so two
processes racing on a run behave as two Lambdas racing on DynamoDB: a primary key is the
``attribute_not_exists`` condition, a transaction is the condition expression.

Nothing expires by itself (there is no TTL service): :meth:`SQLiteStore.list_expired`
finds the runs whose ``expires_at`` passed through an index on it, and a prune
(:mod:`pflambda.engine.retention`) purges them, as DynamoDB's TTL and the reaper do.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Final

from pflambda.embedded import Database
from pflambda.errors import CheckpointConflict, ConfigError, RunExists, RunNotFound
from pflambda.limits import LIST_SHARDS, MARKER_CANCEL
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
    info_from_item,
    lease_sk,
    listed_from_item,
    marker_item,
    run_from_item,
    run_item,
    update_values,
)
from pflambda.stores._listing import Scope, decode_token, encode_token
from pflambda.stores._listing_backfill import Backfill, Progress, keyed
from pflambda.stores._sqlite_rows import (
    EXPIRY,
    SCHEMA,
    dump,
    fanout_row,
    index_columns,
    insert_run,
    insert_step,
    save_fanout,
    update_row,
    where_clause,
    with_body,
)
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
                insert_run(conn, record.run_id, item)
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
                insert_run(conn, record.run_id, item)
                insert_step(conn, record.run_id, checkpoint.seq, step)
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
            item = update_row(conn, run_id, values, expect_status)
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
                insert_step(conn, run_id, checkpoint.seq, step)
                update_row(conn, run_id, values, expect_status)
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
            item = update_row(conn, run_id, values, expect_status)
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
            insert_step(conn, run_id, seq, marker_item(run_id, seq, MARKER_CANCEL, None))
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
                insert_step(conn, checkpoint.run_id, checkpoint.seq, item)
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
        return [checkpoint_from_item(run_id, with_body(item, body)) for item, body in rows]

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
        scope = Scope.of(owner, agent, context_id, status)
        where, args = where_clause(scope, decode_token(next_token))
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
        where, args = where_clause(Scope.of(owner, agent, context_id, status), None)
        with self.db.errors():
            (count,) = self._read(f"SELECT count(*) FROM runs WHERE {where}", args).fetchone()
        return int(count)

    def backfill_listing(
        self, *, page_size: int = 500, progress: Progress | None = None
    ) -> Backfill:
        """Give listing keys (and the agent older A2A runs kept only in attrs) to runs
        written before the listing existed, and their list order to ``sort_key``: one write
        transaction per page, so a concurrent writer's newer status is never overwritten;
        re-running finds nothing left (see :mod:`pflambda.stores._listing_backfill`)."""
        done, after = Backfill(), ""
        while True:
            with self.db.write() as conn:
                rows = conn.execute(
                    "SELECT run_id, item FROM runs WHERE run_id > ? ORDER BY run_id LIMIT ?",
                    (after, page_size),
                ).fetchall()
                for run_id, raw in rows:
                    item: Item = json.loads(raw)
                    if "apk" in item:
                        continue
                    done.found += 1
                    item |= keyed(item, LIST_SHARDS)
                    conn.execute(
                        "UPDATE runs SET sort_key = ?, context_id = ?, owner = ?, item = ? "
                        "WHERE run_id = ?",
                        (*index_columns(item), dump(item), run_id),
                    )
                    done.added += 1
            done.pages += 1
            if progress is not None:
                progress(done)
            if len(rows) < page_size:
                return done
            after = rows[-1][0]

    def create_fanout(self, fanout: FanOut) -> FanOut:
        """Store a fan-out header, or return the one already stored for its step."""
        item = fanout_item(fanout)
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO fanouts (run_id, seq, item) VALUES (?, ?, ?)",
                (fanout.run_id, fanout.seq, dump(item)),
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
            header = fanout_row(conn, run_id, seq)
            chunks = int(header["chunks"]["N"])
            if chunk >= chunks:
                raise out_of_range(run_id, seq, chunk, chunks)
            inserted = conn.execute(
                "INSERT OR IGNORE INTO chunks (run_id, seq, chunk, item, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, seq, chunk, dump(item), data),
            ).rowcount
            if not inserted:
                return False
            header["done"] = {"N": str(int(header["done"]["N"]) + 1)}
            save_fanout(conn, run_id, seq, header)
        return True

    def claim_fanin(self, run_id: str, seq: int) -> bool:
        """True for the first caller once every chunk is done; False otherwise."""
        with self.db.write() as conn:
            header = fanout_row(conn, run_id, seq)
            finished = int(header["done"]["N"]) == int(header["chunks"]["N"])
            if header["claimed"]["BOOL"] or not finished:
                return False
            header["claimed"] = {"BOOL": True}
            save_fanout(conn, run_id, seq, header)
        return True

    def load_chunks(self, run_id: str, seq: int) -> list[tuple[int, bytes]]:
        """Every recorded chunk as ``(chunk, body)``, in chunk order."""
        with self.db.errors():
            rows = self._read(
                "SELECT item, body FROM chunks WHERE run_id = ? AND seq = ? ORDER BY chunk",
                (run_id, seq),
            ).fetchall()
        return [chunk_from_item(with_body(item, body)) for item, body in rows]

    def purge_run(self, run_id: str) -> int:
        """Delete the run's rows in every table, in one transaction; how many there were."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM leases WHERE run_id = ?", (run_id,))  # an index, not items
            count = 0
            for table in ("runs", "chunks", "fanouts", "checkpoints"):
                cursor = conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
                count += cursor.rowcount
        return count

    def list_expired(self, now: float, *, limit: int = 100) -> list[str]:
        """Ids of runs whose ``expires_at`` is at or before ``now`` (an index range)."""
        with self.db.errors():
            rows = self._read(
                f"SELECT run_id FROM runs WHERE {EXPIRY} <= ? ORDER BY {EXPIRY} LIMIT ?",
                (int(now), limit),
            ).fetchall()
        return [row[0] for row in rows]

    def _read(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        return self.db.connection().execute(sql, args)
