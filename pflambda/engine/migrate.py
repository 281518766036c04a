"""Moving a run onto the code deployed now, by hand: ``pflambda migrate RUN --map OLD=NEW``.

For the runs :mod:`pflambda.engine.compat` refuses (their paused node was renamed, moved
or removed): an operator says which node of the new flow each old position becomes.
The cursor's node ids are renamed (a renamed flow renames the ids inside it), the result
must exist in the deployed flow where the cursor puts it, and the run gets one new
checkpoint -- a snapshot of the same shared with the renamed cursor -- together with the
new fingerprint, in one atomic write. Nothing is written when anything is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pflambda.engine import checkpoints, compat
from pflambda.engine.cursor import decode_cursor, encode_cursor
from pflambda.engine.flowref import load_flow
from pflambda.engine.state import SharedTracker
from pflambda.errors import InvalidRunState
from pflambda.graph import describe
from pflambda.stores.base import RunRecord, RunStatus

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = ["migrate", "parse_map"]


def parse_map(pairs: list[str]) -> dict[str, str]:
    """``["OLD=NEW", ...]`` as a mapping; ``ValueError`` saying what is wrong."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not new:
            raise ValueError(f"--map takes OLD=NEW (full node ids), not {pair!r}")
        mapping[old] = new
    return mapping


def migrate(engine: Engine, run_id: str, mapping: Mapping[str, str]) -> RunRecord:
    """Rename the run's cursor by ``mapping`` onto the deployed flow; the new record."""
    record = engine.store.get_run(run_id)
    if record.status in (RunStatus.COMPLETED, RunStatus.CANCELLED):
        raise InvalidRunState(f"run {run_id} is {record.status}: nothing to migrate")
    if record.status == RunStatus.RUNNING and record.leased(engine.clock.now()):
        raise InvalidRunState(
            f"run {run_id} is being driven right now: migrate it once it pauses or stops"
        )
    graph = describe(load_flow(record.flow))
    ckpts = engine.store.load_checkpoints(run_id)
    if not ckpts:
        raise InvalidRunState(f"run {run_id} has no checkpoints")
    tracker = SharedTracker(run_id, engine.blobs)
    shared, body = tracker.load(ckpts)
    cursor = compat.remap(decode_cursor(body.cursor), mapping)
    problems = compat.mismatches(None, graph, cursor)
    if problems:
        raise InvalidRunState(
            f"run {run_id} does not map onto {record.flow}: {'; '.join(problems)}"
        )
    seq = ckpts[-1].seq + 1
    cursor_json = encode_cursor(cursor)
    data = tracker.prepare(shared, cursor_json, seq=seq, snapshot=True, result=body.result).body
    step = checkpoints.checkpoint(engine, record, seq, data, True, action="migrate", base=seq)
    compat.remember(engine.blobs, graph, engine.clock.now())
    changes = {"fingerprint": graph.fingerprint(), "updated_at": engine.clock.now()}
    engine.store.commit_step(step, changes, expect_status={record.status})
    return engine.store.get_run(run_id)
