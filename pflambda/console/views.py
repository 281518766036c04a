"""What the console shows of runs: summaries for the list, and one run in full.

Everything here reads the store the engine writes and answers plain JSON. Listing
goes through the store's index (``list_runs``, newest first) and reads one small
item per listed run (its last checkpoint, without the body) for the step count and
the node it is at -- never a Scan, and never more than a page of runs at a time.

A run is *stalled* when it says ``running`` but its lease lapsed: the invocation
that drove it is gone and nobody has taken it over yet (the sweeper will; the console
offers to resume it now). Stalled runs are listed from the store's lease index.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pflambda.console.layout import layout
from pflambda.engine.cursor import decode_cursor
from pflambda.engine.flowref import load_flow
from pflambda.engine.state import SharedTracker
from pflambda.errors import PflambdaError
from pflambda.graph import Graph, GraphError, describe, is_flow
from pflambda.stores.base import (
    CheckpointInfo,
    FanOutNotFound,
    RunRecord,
    RunStatus,
    Store,
)

__all__ = [
    "STALL_AFTER",
    "RunFilter",
    "agent_of",
    "is_stalled",
    "list_page",
    "run_detail",
    "summary",
]

log = logging.getLogger("pflambda.console")

STALL_AFTER = 900.0
"""For a running run with no lease at all (written before leases): seconds without a
checkpoint or a status change after which it counts as stalled."""
MAX_PAGES = 5
"""Store pages one filtered listing reads before it answers with what it found."""
MAX_TIMELINE = 2000
"""Timeline rows a run page gets at once (the newest); visit counts cover every step."""


def agent_of(record: RunRecord) -> str | None:
    """The agent that started the run (A2A runs), ``None`` for runs started otherwise."""
    named = getattr(record, "agent", None)  # the record's own field, where the store has one
    if isinstance(named, str):
        return named
    a2a = record.attrs.get("a2a")
    agent = a2a.get("agent") if isinstance(a2a, dict) else None
    return agent if isinstance(agent, str) else None


def is_stalled(record: RunRecord, last: CheckpointInfo | None, now: float) -> bool:
    """Running, and its lease lapsed (no lease: untouched for :data:`STALL_AFTER` s)."""
    if record.status != RunStatus.RUNNING:
        return False
    if record.lease_until is not None:
        return not record.leased(now)
    active = max(record.updated_at, last.created_at if last is not None else 0.0)
    return now - active >= STALL_AFTER


@functools.lru_cache(maxsize=64)
def graph_of(flow: str) -> Graph:
    """The described graph of a flow reference (cached: a process's code does not change)."""
    return describe(load_flow(flow))


def next_leaf(flow: str, node_id: str | None) -> list[str]:
    """``node_id``, then -- if it is a nested flow not entered yet -- the nodes its start
    leads down to: where the run really goes next. Just ``[node_id]`` if the flow
    cannot be loaded here."""
    if node_id is None:
        return []
    path = [node_id]
    try:
        graph = graph_of(flow)
        while is_flow(graph.node(path[-1])):
            start = graph.level(path[-1]).start_id
            if start is None:
                break
            path.append(start)
    except (PflambdaError, GraphError, ImportError, AttributeError, TypeError):
        pass
    return path


def summary(record: RunRecord, last: CheckpointInfo | None, now: float) -> dict[str, Any]:
    """One row of the runs list."""
    finished = record.status == RunStatus.COMPLETED
    position = None if finished or last is None else last.position
    going = next_leaf(record.flow, position)
    return {
        "run_id": record.run_id,
        "agent": agent_of(record),
        "flow": record.flow,
        "status": str(record.status),
        "stalled": is_stalled(record, last, now),
        "node": going[-1] if going else None,
        "steps": 0 if last is None else last.seq,
        "created_at": record.created_at,
        "updated_at": max(record.updated_at, last.created_at if last else 0.0),
        "owner": record.owner,
        "prompt": record.prompt if record.status == RunStatus.PAUSED else None,
        "error": record.error if record.status == RunStatus.FAILED else None,
        "cancel_requested": record.cancel_requested,
        "lease_owner": record.lease_owner,
        "lease_until": record.lease_until,
        # the summary (listed records carry it); older forks had them in attrs only
        "forked_from": record.summary.get("forked_from", record.attrs.get("forked_from")),
        "forked_at": record.summary.get("forked_at", record.attrs.get("forked_at")),
    }


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing keeps; ``None`` fields keep everything."""

    owner: str | None = None
    """Only this principal's runs (applied by the index)."""
    agent: str | None = None
    status: RunStatus | None = None
    stalled: bool | None = None
    since: float | None = None
    """Created at or after (epoch seconds)."""
    until: float | None = None
    """Created at or before (epoch seconds)."""

    def keeps_record(self, record: RunRecord) -> bool:
        """Whether a run passes the filters its record alone decides (no extra read)."""
        if self.agent is not None and agent_of(record) != self.agent:
            return False
        if self.status is not None and record.status != self.status:
            return False
        if self.stalled and record.status != RunStatus.RUNNING:
            return False
        if self.since is not None and record.created_at < self.since:
            return False
        return self.until is None or record.created_at <= self.until

    def keeps(self, row: dict[str, Any]) -> bool:
        """Whether a summary row passes the rest (stalled needs the last checkpoint)."""
        return self.stalled is None or row["stalled"] == self.stalled


def list_page(
    store: Store,
    want: RunFilter,
    *,
    now: float,
    limit: int = 50,
    token: str | None = None,
    last_of: Callable[[list[RunRecord]], list[CheckpointInfo | None]] | None = None,
) -> dict[str, Any]:
    """One page of summaries, newest first: ``{"runs": [...], "next_token": ...}``.

    Reads index pages of ``limit`` runs until ``limit`` rows pass the filters or
    :data:`MAX_PAGES` pages were read; ``next_token`` goes on from there (``None``
    at the end). Pages are newest first, so a ``since`` filter stops the listing at
    the first run older than it. Only the runs the record-level filters keep cost
    their one ``last_checkpoint`` read.
    """
    rows: list[dict[str, Any]] = []
    lasts = last_of or (lambda records: [store.last_checkpoint(r.run_id) for r in records])
    if want.stalled:
        return _stalled_page(store, want, now, limit, lasts)
    for _ in range(MAX_PAGES):
        page = store.list_runs(
            limit=limit,
            next_token=token,
            owner=want.owner,
            agent=want.agent,
            status=want.status,
        )
        token = page.next_token
        candidates = [record for record in page.runs if want.keeps_record(record)]
        for record, last in zip(candidates, lasts(candidates), strict=True):
            row = summary(record, last, now)
            if want.keeps(row):
                rows.append(row)
        # whether the index is ordered by creation or by update, every run after one last
        # updated before ``since`` was also created before it
        oldest = page.runs[-1].updated_at if page.runs else None
        if want.since is not None and oldest is not None and oldest < want.since:
            token = None
        if token is None or len(rows) >= limit:
            break
    return {"runs": rows, "next_token": token}


def _stalled_page(
    store: Store,
    want: RunFilter,
    now: float,
    limit: int,
    lasts: Callable[[list[RunRecord]], list[CheckpointInfo | None]],
) -> dict[str, Any]:
    """Stalled runs from the lease index (oldest lapse first), then the other filters.
    One page only: the index answers the oldest lapses; the sweeper drains the rest."""
    owner = want.owner
    found = [
        r
        for r in store.list_stalled(now, limit=limit)
        if (owner is None or r.owner == owner) and want.keeps_record(r)
    ]
    rows = [summary(r, last, now) for r, last in zip(found, lasts(found), strict=True)]
    return {"runs": [row for row in rows if want.keeps(row)], "next_token": None}


def run_detail(store: Store, blobs: Any, record: RunRecord, now: float) -> dict[str, Any]:
    """A run's page: summary, graph, cursor, timeline, and what it waits for."""
    infos = list(store.list_checkpoints(record.run_id))
    last = infos[-1] if infos else None
    doc = summary(record, last, now)
    visits = Counter(i.node_id for i in infos if i.node_id is not None)
    doc["visits"] = dict(visits)
    doc["timeline"] = [_row(info, prev) for prev, info in zip([None, *infos], infos, strict=False)]
    doc["timeline"] = doc["timeline"][-MAX_TIMELINE:]
    doc["timeline_total"] = len(infos)
    doc["input_key"] = record.input_key
    doc["fingerprint"] = record.fingerprint
    doc["graph"] = _graph(record)
    doc["cursor"], doc["fanout"] = _cursor(store, blobs, record, last)
    return doc


def _row(info: CheckpointInfo, prev: CheckpointInfo | None) -> dict[str, Any]:
    return {
        "seq": info.seq,
        "node": info.node_id,
        "action": info.action,
        "bytes": info.size,
        "snapshot": info.snapshot,
        "created_at": info.created_at,
        "duration_ms": info.duration_ms,
        "retries": info.retries,
        "next": info.position,
    }


def _graph(record: RunRecord) -> dict[str, Any]:
    """The flow's drawing, or why there is none (the code cannot be loaded here)."""
    try:
        graph = graph_of(record.flow)
    except (PflambdaError, GraphError, ImportError, AttributeError, TypeError) as exc:
        return {"error": f"cannot load flow {record.flow}: {exc}"}
    drawing = layout(graph)
    if graph.fingerprint() != record.fingerprint:
        drawing["warning"] = "the flow changed shape since this run started"
    return drawing


def _cursor(
    store: Store, blobs: Any, record: RunRecord, last: CheckpointInfo | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The cursor's frames (flow, next node) and a fanned-out node's progress."""
    if last is None:
        return [], None
    try:  # the newest body alone: no blobs fetched, no shared rebuilt
        newest = store.load_checkpoints(record.run_id, last.seq)[-1]
        cursor = decode_cursor(SharedTracker(record.run_id, blobs).read(newest.body).cursor)
    except (PflambdaError, ValueError, TypeError) as exc:
        log.warning("run %s: cannot read its cursor: %s", record.run_id, exc)
        return [], None
    frames = [{"flow": f.flow_id, "node": f.node_id} for f in cursor.frames]
    if frames:  # a nested flow not entered yet: the run goes on at its start node
        below = next_leaf(record.flow, frames[-1]["node"])
        frames += [{"flow": outer, "node": inner} for outer, inner in itertools.pairwise(below)]
    pending = cursor.frames[-1].pending if cursor.frames else None
    if not pending:
        return frames, None
    try:
        fan = store.get_fanout(record.run_id, int(pending["seq"]))
    except FanOutNotFound:
        return frames, {"node": cursor.position, "chunks": None, "done": 0, "items": None}
    progress = {"node": fan.node_id, "chunks": fan.chunks, "done": fan.done, "items": fan.items}
    return frames, progress
