"""MemoryStore: the strict in-memory Store, for tests and the local server.

It keeps the very items the DynamoDB store would write (see :mod:`pflambda.stores._item`),
so a record that is too large or not JSON fails here as it would on AWS, and every read
decodes a fresh copy: mutating what a read returned changes nothing stored.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from typing import Any

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
    is_marker,
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

__all__ = ["MemoryStore"]


class MemoryStore:
    """A :class:`~pflambda.stores.base.Store` in a dict; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, Item] = {}
        self._checkpoints: dict[str, dict[int, Item]] = {}
        self._fanouts: dict[tuple[str, int], Item] = {}
        self._chunks: dict[tuple[str, int], dict[int, Item]] = {}

    def create_run(self, record: RunRecord) -> None:
        """Store a new run; :class:`~pflambda.errors.RunExists` if the id is taken."""
        item = run_item(record)
        check_size(item, f"run {record.run_id}")
        with self._lock:
            if record.run_id in self._runs:
                raise RunExists(f"run {record.run_id} already exists")
            self._runs[record.run_id] = item

    def start_run(self, record: RunRecord, checkpoint: Checkpoint) -> None:
        """Store a new run and its checkpoint 0 together; RunExists (nothing written) if taken."""
        item = run_item(record)
        check_size(item, f"run {record.run_id}")
        step = checkpoint_item(checkpoint)
        check_size(step, f"checkpoint {checkpoint.seq} of run {checkpoint.run_id}")
        with self._lock:
            steps = self._checkpoints.get(record.run_id, {})
            if record.run_id in self._runs or checkpoint.seq in steps:
                raise RunExists(f"run {record.run_id} already exists")
            self._runs[record.run_id] = item
            self._checkpoints.setdefault(record.run_id, {})[checkpoint.seq] = step

    def get_run(self, run_id: str) -> RunRecord:
        """A copy of the run's record; :class:`~pflambda.errors.RunNotFound` if none."""
        with self._lock:
            item = self._runs.get(run_id)
        if item is None:
            raise RunNotFound(f"no run {run_id}")
        return run_from_item(item)

    def update_run(
        self,
        run_id: str,
        changes: Mapping[str, Any],
        *,
        expect_status: Collection[RunStatus] | None = None,
    ) -> RunRecord:
        """Change the named fields (``None`` removes one), if the status is as expected."""
        values = update_values(run_id, changes)
        with self._lock:
            item = self._changed(run_id, values, expect_status)
            self._runs[run_id] = item
        return run_from_item(item)

    def _changed(
        self,
        run_id: str,
        values: Mapping[str, dict[str, Any] | None],
        expect_status: Collection[RunStatus] | None,
    ) -> Item:
        """The run's item with ``values`` applied, checked (lock held); stores nothing."""
        current = self._runs.get(run_id)
        if current is None:
            raise RunNotFound(f"no run {run_id}")
        status = RunStatus(current["status"]["S"])
        if expect_status is not None and status not in expect_status:
            raise refused(run_id, status, expect_status)
        item = dict(current)
        for attr, value in values.items():
            if value is None:
                item.pop(attr, None)
            else:
                item[attr] = value
        item |= index_attrs(item)
        check_size(item, f"run {run_id}")
        return item

    def commit_step(
        self,
        checkpoint: Checkpoint,
        changes: Mapping[str, Any],
        *,
        expect_status: Collection[RunStatus],
    ) -> None:
        """Put the checkpoint and change the run, both or neither."""
        step = checkpoint_item(checkpoint)
        run_id = checkpoint.run_id
        check_size(step, f"checkpoint {checkpoint.seq} of run {run_id}")
        values = update_values(run_id, changes)
        with self._lock:
            steps = self._checkpoints.get(run_id, {})
            if checkpoint.seq in steps:
                raise CheckpointConflict(f"run {run_id} already has checkpoint {checkpoint.seq}")
            item = self._changed(run_id, values, expect_status)
            self._runs[run_id] = item
            self._checkpoints.setdefault(run_id, {})[checkpoint.seq] = step

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
        with self._lock:
            current = self._runs.get(run_id)
            if current is not None and RunStatus(current["status"]["S"]) in expect_status:
                holder = run_from_item(current)
                free = not holder.leased(now) or holder.lease_owner in {owner, *takeover}
                if not free:
                    raise LeaseHeld(run_id, holder.lease_owner, holder.lease_until, now)
            item = self._changed(run_id, values, expect_status)
            self._runs[run_id] = item
        return run_from_item(item)

    def claim_step(self, run_id: str) -> int:
        """Put a marker on the step after the newest one (or return the marker there)."""
        with self._lock:
            current = self._runs.get(run_id)
            if current is None:
                raise RunNotFound(f"no run {run_id}")
            steps = self._checkpoints.setdefault(run_id, {})
            top = max(steps, default=-1)
            if top >= 0 and is_marker(steps[top]):
                return top
            steps[top + 1] = marker_item(run_id, top + 1, MARKER_CANCEL, None)
            return top + 1

    def list_stalled(self, now: float, *, limit: int = 100) -> list[RunRecord]:
        """Leased runs whose lease ended before ``now``, oldest first (each shard read)."""
        with self._lock:
            leased = [i for i in self._runs.values() if "gsi3pk" in i]
        cut = lease_sk(now, "\uffff")
        found = sorted(
            (item for item in leased if item["gsi3sk"]["S"] < cut),
            key=lambda item: str(item["gsi3sk"]["S"]),
        )
        return [run_from_item(item) for item in found[:limit]]

    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Commit a step; :class:`~pflambda.errors.CheckpointConflict` if ``seq`` exists."""
        item = checkpoint_item(checkpoint)
        check_size(item, f"checkpoint {checkpoint.seq} of run {checkpoint.run_id}")
        with self._lock:
            steps = self._checkpoints.setdefault(checkpoint.run_id, {})
            if checkpoint.seq in steps:
                raise CheckpointConflict(
                    f"run {checkpoint.run_id} already has checkpoint {checkpoint.seq}"
                )
            steps[checkpoint.seq] = item

    def load_checkpoints(self, run_id: str, at: int | None = None) -> list[Checkpoint]:
        """The latest snapshot at or before ``at`` and the checkpoints after it."""
        newest_first: list[Item] = []
        with self._lock:
            steps = self._checkpoints.get(run_id, {})
            top = max(steps, default=-1) if at is None else min(at, max(steps, default=-1))
            for seq in range(top, -1, -1):  # steps have no gaps: this walks only what it returns
                item = steps.get(seq)
                if item is not None and not is_marker(item):
                    newest_first.append(item)
                    if item["snapshot"]["BOOL"]:
                        break
        return [checkpoint_from_item(run_id, item) for item in reversed(newest_first)]

    def list_checkpoints(self, run_id: str, after: int = -1) -> Iterator[CheckpointInfo]:
        """Every checkpoint with ``seq > after``, oldest first, without bodies."""
        with self._lock:
            steps = dict(self._checkpoints.get(run_id, {}))
        return iter(
            [
                info_from_item(steps[seq])
                for seq in sorted(steps)
                if seq > after and not is_marker(steps[seq])
            ]
        )

    def last_checkpoint(self, run_id: str) -> CheckpointInfo | None:
        """The newest checkpoint without its body; ``None`` if the run has none."""
        with self._lock:
            steps = self._checkpoints.get(run_id, {})
            real = [seq for seq, item in steps.items() if not is_marker(item)]
            item = steps[max(real)] if real else None
        return None if item is None else info_from_item(item)

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
        """Runs, most recently updated first (then by id); only the matching ones."""
        if limit < 1:
            raise ConfigError(f"list_runs limit must be at least 1, not {limit}")
        after = decode_token(next_token)
        matching = self._matching(Scope.of(owner, agent, context_id, status), after)
        page = matching[:limit]
        token = encode_token(page[-1]["lsk"]["S"]) if len(matching) > limit else None
        return Page([listed_from_item(item) for item in page], token)

    def count_runs(
        self,
        *,
        context_id: str | None = None,
        owner: str | None = None,
        agent: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
    ) -> int:
        """How many runs match (every page of ``list_runs`` together)."""
        return len(self._matching(Scope.of(owner, agent, context_id, status), None))

    def _matching(self, scope: Scope, after: str | None) -> list[Item]:
        with self._lock:
            items = list(self._runs.values())
        chosen = [
            item
            for item in items
            if (after is None or item["lsk"]["S"] < after) and scope.matches(item)
        ]
        return sorted(chosen, key=lambda item: str(item["lsk"]["S"]), reverse=True)

    def create_fanout(self, fanout: FanOut) -> FanOut:
        """Store a fan-out header, or return the one already stored for its step."""
        item = fanout_item(fanout)
        with self._lock:
            stored = self._fanouts.setdefault((fanout.run_id, fanout.seq), item)
        return fanout_from_item(stored)

    def get_fanout(self, run_id: str, seq: int) -> FanOut:
        """A copy of the header; :class:`~pflambda.stores.base.FanOutNotFound` if none."""
        with self._lock:
            item = self._fanouts.get((run_id, seq))
        if item is None:
            raise not_found(run_id, seq)
        return fanout_from_item(item)

    def record_chunk(
        self, run_id: str, seq: int, chunk: int, body: bytes, *, expires_at: int | None = None
    ) -> bool:
        """Store the chunk and count it done, both or neither; False for a duplicate."""
        item = chunk_item(run_id, seq, chunk, body, expires_at)
        key = (run_id, seq)
        with self._lock:
            header = self._fanouts.get(key)
            if header is None:
                raise not_found(run_id, seq)
            chunks = int(header["chunks"]["N"])
            if chunk >= chunks:
                raise out_of_range(run_id, seq, chunk, chunks)
            recorded = self._chunks.setdefault(key, {})
            if chunk in recorded:
                return False
            recorded[chunk] = item
            self._fanouts[key] = header | {"done": {"N": str(int(header["done"]["N"]) + 1)}}
        return True

    def claim_fanin(self, run_id: str, seq: int) -> bool:
        """True for the first caller once every chunk is done; False otherwise."""
        key = (run_id, seq)
        with self._lock:
            header = self._fanouts.get(key)
            if header is None:
                raise not_found(run_id, seq)
            finished = int(header["done"]["N"]) == int(header["chunks"]["N"])
            if header["claimed"]["BOOL"] or not finished:
                return False
            self._fanouts[key] = header | {"claimed": {"BOOL": True}}
        return True

    def load_chunks(self, run_id: str, seq: int) -> list[tuple[int, bytes]]:
        """Every recorded chunk as ``(chunk, body)``, in chunk order."""
        with self._lock:
            recorded = dict(self._chunks.get((run_id, seq), {}))
        return [chunk_from_item(recorded[chunk]) for chunk in sorted(recorded)]

    def purge_run(self, run_id: str) -> int:
        """Delete the run's record and every item of its partition; how many there were."""
        with self._lock:
            count = int(self._runs.pop(run_id, None) is not None)
            count += len(self._checkpoints.pop(run_id, {}))
            for key in [key for key in self._fanouts if key[0] == run_id]:
                count += 1 + len(self._chunks.pop(key, {}))
                del self._fanouts[key]
        return count

    def list_expired(self, now: float, *, limit: int = 100) -> list[str]:
        """Ids of runs whose ``expires_at`` is at or before ``now``, soonest first."""
        with self._lock:
            due = [
                (int(item["ttl"]["N"]), run_id)
                for run_id, item in self._runs.items()
                if "ttl" in item and int(item["ttl"]["N"]) <= now
            ]
        return [run_id for _, run_id in sorted(due)[:limit]]
