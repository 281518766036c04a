"""SQLite tables and rows: the schema of the embedded store, and the statements that keep
one DynamoDB item (see :mod:`pflambda.stores._item`) as one row, with its index columns.

:class:`~pflambda.stores.sqlite.SQLiteStore` calls these inside its transactions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping
from typing import Any, Final

from pflambda.errors import RunNotFound
from pflambda.stores._fanout_items import not_found
from pflambda.stores._item import Item, check_size, index_attrs, refused
from pflambda.stores._listing import Scope
from pflambda.stores.base import RunStatus

__all__ = [
    "EXPIRY",
    "SCHEMA",
    "dump",
    "fanout_row",
    "index_columns",
    "index_lease",
    "insert_run",
    "insert_step",
    "save_fanout",
    "update_row",
    "where_clause",
    "with_body",
]

EXPIRY: Final = "CAST(json_extract(item, '$.ttl.N') AS INTEGER)"
"""SQL: a run row's ``expires_at`` (NULL for a run that never expires); indexed."""

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
    f"CREATE INDEX IF NOT EXISTS runs_by_expiry ON runs ({EXPIRY})",
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


def dump(item: Item) -> str:
    """An item as compact JSON, the way a row keeps it."""
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def with_body(item: str, body: bytes) -> Item:
    """A row's item with its BLOB column put back as the ``body`` attribute."""
    loaded: Item = json.loads(item)
    loaded["body"] = {"B": bytes(body)}
    return loaded


def where_clause(scope: Scope, after: str | None) -> tuple[str, tuple[Any, ...]]:
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


def index_columns(item: Item) -> tuple[str, str | None, str | None]:
    """The run's index columns: list order (last update), context and owner."""
    context = item.get("context_id")
    owner = item.get("owner")
    return (
        item["lsk"]["S"],
        None if context is None else context["S"],
        None if owner is None else owner["S"],
    )


def insert_run(conn: sqlite3.Connection, run_id: str, item: Item) -> None:
    """Insert a run's row (IntegrityError if the id is taken) and its lease index row."""
    conn.execute(
        "INSERT INTO runs (run_id, sort_key, context_id, owner, item) VALUES (?, ?, ?, ?, ?)",
        (run_id, *index_columns(item), dump(item)),
    )
    index_lease(conn, run_id, item)


def insert_step(conn: sqlite3.Connection, run_id: str, seq: int, item: Item) -> None:
    """Insert a step's row (IntegrityError if the step is taken); markers have no body."""
    item = dict(item)
    body = item.pop("body", {"B": b""})["B"]
    snapshot = bool(item.get("snapshot", {}).get("BOOL", False))
    conn.execute(
        "INSERT INTO checkpoints (run_id, seq, snapshot, item, body) VALUES (?, ?, ?, ?, ?)",
        (run_id, seq, snapshot, dump(item), body),
    )


def update_row(
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
        (*index_columns(item), dump(item), run_id),
    )
    index_lease(conn, run_id, item)
    return item


def index_lease(conn: sqlite3.Connection, run_id: str, item: Item) -> None:
    """Keep the lease index row in step with the item's ``gsi3sk`` (present or not)."""
    key = item.get("gsi3sk")
    if key is None:
        conn.execute("DELETE FROM leases WHERE run_id = ?", (run_id,))
    else:
        conn.execute(
            "INSERT OR REPLACE INTO leases (run_id, lease_key) VALUES (?, ?)", (run_id, key["S"])
        )


def fanout_row(conn: sqlite3.Connection, run_id: str, seq: int) -> Item:
    """A fan-out header's item; FanOutNotFound if there is none."""
    row = conn.execute(
        "SELECT item FROM fanouts WHERE run_id = ? AND seq = ?", (run_id, seq)
    ).fetchone()
    if row is None:
        raise not_found(run_id, seq)
    header: Item = json.loads(row[0])
    return header


def save_fanout(conn: sqlite3.Connection, run_id: str, seq: int, header: Item) -> None:
    """Write a fan-out header's item back to its row."""
    conn.execute(
        "UPDATE fanouts SET item = ? WHERE run_id = ? AND seq = ?", (dump(header), run_id, seq)
    )
