"""The Store protocol: run records and their checkpoints, and the rules every store keeps.

One run is one partition: a ``META`` record (:class:`RunRecord`) and one item per
committed step (:class:`Checkpoint`). The rules, which the contract tests hold every
implementation to:

- ``put_checkpoint`` is conditional on the step number: the second writer of a given
  ``(run_id, seq)`` gets :class:`~pflambda.errors.CheckpointConflict` and nothing changes.
- ``load_checkpoints`` answers with the latest snapshot at or before ``at`` and every
  delta after it, oldest first, in one query (pages aside): resuming at step 10,000
  reads as much as resuming at step 10.
- Reads return copies: mutating a returned record changes nothing stored.
- Items larger than DynamoDB's 400 KB are refused with :class:`ItemTooLarge` by every
  store, the in-memory one included.
- Listing runs never scans and never reads other principals' runs to list one
  principal's: it reads indexes partitioned by owner and agent (and context), sorted by
  last update (newest first), with a status filter in the key; the operator's listing
  (no owner or agent) reads a sharded index of every run. A page token is a position in
  update-time order: a run not updated while one pages through is listed exactly once
  (one updated meanwhile moves to the top). Listed records carry no ``attrs``.
- A running run carries a lease (``lease_owner`` + ``lease_until``): the invocation
  that drives it, and until when. The lease is in a sparse index while it is set, so
  :meth:`Store.list_stalled` finds the runs whose lease expired without reading any
  healthy run. A status other than ``running`` drops the lease in the same write.
- Starting a run (record + checkpoint 0) and committing a step together with a status
  change are each one atomic write: both happen or neither.
- Nothing refused changes anything: a refused conditional write leaves every item as
  it was, and oversize items are refused whole before anything is written.
- Everything of a run lives as long as its record: checkpoints, markers and fan-out
  items carry no expiry of their own; :meth:`Store.purge_run` deletes them all (the
  reaper calls it once DynamoDB's TTL has deleted the record; the embedded stores'
  :meth:`Expiring.list_expired` finds the runs due, as the TTL service would).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pflambda.errors import CheckpointConflict, TerminalError

__all__ = [
    "TERMINAL",
    "Checkpoint",
    "CheckpointInfo",
    "Expiring",
    "FanOut",
    "FanOutNotFound",
    "ItemTooLarge",
    "LeaseHeld",
    "Page",
    "RunRecord",
    "RunStatus",
    "Store",
]


class RunStatus(enum.StrEnum):
    """Where a run is in its life."""

    RUNNING = "running"
    PAUSED = "paused"
    """Waiting for a human: a node raised ``InputRequired``."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
"""Statuses a run never leaves."""


SUMMARY_LIMIT = 1024
"""Bytes a run's ``summary`` may take as compact JSON."""


class ItemTooLarge(TerminalError):
    """A record would exceed the store's item size limit."""


class LeaseHeld(CheckpointConflict):
    """Another invocation holds a live lease on the run: it drives it; stop, change nothing."""

    def __init__(self, run_id: str, owner: str | None, until: float | None, now: float) -> None:
        self.run_id, self.owner, self.until = run_id, owner, until
        left = max((until or now) - now, 0.0)
        super().__init__(
            f"run {run_id} is driven by {owner} for another {left:.0f} s; wait for its "
            "lease to lapse, or take it over (pflambda resume --force) if that process is gone"
        )


@dataclass(frozen=True)
class RunRecord:
    """A run's metadata (the ``META`` item). Changes only at lifecycle events."""

    run_id: str
    flow: str
    """How to rebuild the flow: ``"package.module:factory"``."""
    fingerprint: str
    status: RunStatus
    created_at: float
    updated_at: float
    owner: str | None = None
    """The principal that started the run; others cannot see it."""
    context_id: str | None = None
    """Groups runs (an A2A context); indexed for listing."""
    cancel_requested: bool = False
    error: str | None = None
    prompt: str | None = None
    """The question a paused run asks."""
    input_key: str | None = None
    """Where the reply to ``prompt`` goes in shared."""
    prompt_ref: str | None = None
    """The blob key of a question too large for the record (``prompt`` is then ``None``)."""
    expires_at: int | None = None
    """Epoch seconds after which the store may delete the run (DynamoDB TTL)."""
    attrs: Mapping[str, Any] = field(default_factory=dict)
    """Free JSON metadata for upper layers (e.g. the A2A task's history). Not in the
    listing indexes: records from :meth:`Store.list_runs` have it empty."""
    agent: str | None = None
    """The agent that serves the run; with ``owner``, what the listing indexes partition by."""
    summary: Mapping[str, Any] = field(default_factory=dict)
    """Small JSON (at most :data:`SUMMARY_LIMIT` bytes) that listings carry, for upper
    layers that render a run from its listing alone (e.g. A2A's ListTasks)."""
    lease_owner: str | None = None
    """Who drives the run now: an invocation, a queue message, or ``queued`` (any
    continuation may take it over)."""
    lease_until: float | None = None
    """Epoch seconds when the lease lapses; past it, the sweeper continues the run."""
    pinned: str | None = None
    """Where the code that last admitted the run is deployed (a Lambda ``function:version``,
    or a local twin's ``local:<id>``): a run the deployed flow refuses is handed there."""

    def leased(self, now: float) -> bool:
        """Whether someone holds a live lease on the run at ``now``."""
        return self.lease_until is not None and self.lease_until > now


UPDATABLE = frozenset(
    {
        "status",
        "updated_at",
        "cancel_requested",
        "error",
        "prompt",
        "input_key",
        "expires_at",
        "attrs",
        "fingerprint",
        "lease_owner",
        "lease_until",
        "prompt_ref",
        "summary",
        "pinned",
    }
)
"""Fields ``update_run`` may change."""


@dataclass(frozen=True)
class Checkpoint:
    """One committed step: the engine's encoded body plus what lists and indexes need."""

    run_id: str
    seq: int
    """Step number, from 0 (the initial state) up, without gaps."""
    body: bytes
    """The engine's encoding of cursor and shared (delta or snapshot); opaque here."""
    snapshot: bool
    """True when ``body`` holds all of shared, not just what changed."""
    created_at: float
    node_id: str | None = None
    """The node whose ``post`` this step committed (``None`` for the initial state)."""
    action: str | None = None
    expires_at: int | None = None
    duration_ms: float | None = None
    """How long the step took to run (prep, exec with its retries, post), if measured."""
    retries: int = 0
    """Attempts beyond the first that the node's ``exec`` needed."""
    position: str | None = None
    """The node the run goes to next (the cursor's innermost node), ``None`` once done."""
    base: int | None = None
    """The step of the snapshot this checkpoint builds on (its own step for a snapshot),
    so a load can read from there and nothing older. ``None``: not recorded."""


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint without its body, for timelines."""

    seq: int
    node_id: str | None
    action: str | None
    snapshot: bool
    size: int
    created_at: float
    duration_ms: float | None = None
    retries: int = 0
    position: str | None = None


@dataclass(frozen=True)
class FanOut:
    """A batch node's items spread over workers: the header of one fan-out.

    Items travel in chunks (several per queue message); each chunk's results are
    recorded once, together with the count of chunks done, in one atomic write.
    """

    run_id: str
    seq: int
    """The checkpoint that started the fan-out (its items and cursor are there)."""
    node_id: str
    chunks: int
    """How many chunks the items were split into."""
    items: int
    created_at: float
    done: int = 0
    """How many chunks have their results recorded."""
    claimed: bool = False
    """Whether a worker has claimed the fan-in (see ``claim_fanin``)."""
    expires_at: int | None = None


class FanOutNotFound(TerminalError):
    """No fan-out header for that run and step."""


@dataclass(frozen=True)
class Page:
    """One page of runs, and the token for the next (``None`` at the end)."""

    runs: list[RunRecord]
    next_token: str | None = None


class Store(Protocol):
    """Runs and checkpoints. See the module docstring for the rules."""

    def create_run(self, record: RunRecord) -> None:
        """Store a new run; :class:`~pflambda.errors.RunExists` if the id is taken."""
        ...

    def start_run(self, record: RunRecord, checkpoint: Checkpoint) -> None:
        """Store a new run and its checkpoint 0 in ONE atomic write; both or neither.

        :class:`~pflambda.errors.RunExists` if the id is taken (nothing is written).
        """
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run's record; :class:`~pflambda.errors.RunNotFound` if there is none."""
        ...

    def update_run(
        self,
        run_id: str,
        changes: Mapping[str, Any],
        *,
        expect_status: Collection[RunStatus] | None = None,
    ) -> RunRecord:
        """Change some fields (names in ``UPDATABLE``) and return the new record.

        With ``expect_status`` the change happens only if the run's status is one of
        them; otherwise :class:`~pflambda.errors.InvalidRunState` naming the status.
        :class:`~pflambda.errors.RunNotFound` if there is no such run. Fields not
        named are left as they are (a concurrent cancel request is never undone).
        """
        ...

    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Commit a step; :class:`~pflambda.errors.CheckpointConflict` if ``seq`` exists."""
        ...

    def commit_step(
        self,
        checkpoint: Checkpoint,
        changes: Mapping[str, Any],
        *,
        expect_status: Collection[RunStatus],
    ) -> None:
        """Commit a step and change the run's record in ONE atomic write; both or neither.

        :class:`~pflambda.errors.CheckpointConflict` if the step exists,
        :class:`~pflambda.errors.InvalidRunState` if the status is not one of
        ``expect_status`` (the step then stays free), ``RunNotFound`` without a run.
        """
        ...

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
        """Lease the run to ``owner`` until ``until`` (plus ``changes``) in one conditional
        write, and return the new record.

        Granted when the status is one of ``expect_status`` and the run has no live
        lease at ``now``, or the lease is ``owner``'s or one of ``takeover``'s.
        Otherwise :class:`LeaseHeld` (naming the holder) or
        :class:`~pflambda.errors.InvalidRunState`; nothing changes.
        """
        ...

    def claim_step(self, run_id: str) -> int:
        """Take the next free step number with a marker, so the run's driver cannot commit
        it (its put conflicts) -- how a cancel reaches a running driver with no read
        per step. Markers are invisible to loads and timelines. Returns the step."""
        ...

    def list_stalled(self, now: float, *, limit: int = 100) -> list[RunRecord]:
        """Runs whose lease lapsed before ``now``, oldest lapse first, read from the
        sparse lease index: the cost does not depend on how many runs are healthy."""
        ...

    def load_checkpoints(self, run_id: str, at: int | None = None) -> list[Checkpoint]:
        """The latest snapshot at or before ``at`` (default: the newest step) and every
        checkpoint after it up to ``at``, oldest first; ``[]`` if the run has none."""
        ...

    def list_checkpoints(self, run_id: str, after: int = -1) -> Iterator[CheckpointInfo]:
        """Every checkpoint with ``seq > after``, oldest first, without bodies."""
        ...

    def last_checkpoint(self, run_id: str) -> CheckpointInfo | None:
        """The newest checkpoint without its body (one small read); ``None`` if none."""
        ...

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
        """Runs, most recently updated first (ties by id); only those matching every
        filter given. A full page is never followed by an empty one with a token only
        because of filters: the store reads on until the page fills or the runs end.
        ``limit`` from 1 up; a bad ``next_token`` is a :class:`ConfigError`."""
        ...

    def count_runs(
        self,
        *,
        context_id: str | None = None,
        owner: str | None = None,
        agent: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
    ) -> int:
        """How many runs ``list_runs`` with these filters would list in all its pages.
        Exact, and it reads every matching index entry (see docs/deploy.md for the cost)."""
        ...

    def create_fanout(self, fanout: FanOut) -> FanOut:
        """Store a fan-out header, or return the one already stored for ``(run_id, seq)``
        (so a resumed run that re-dispatches its items counts nothing twice)."""
        ...

    def get_fanout(self, run_id: str, seq: int) -> FanOut:
        """The header (strongly consistent); :class:`FanOutNotFound` if there is none."""
        ...

    def record_chunk(
        self, run_id: str, seq: int, chunk: int, body: bytes, *, expires_at: int | None = None
    ) -> bool:
        """Store chunk ``chunk``'s results and count it done, in ONE atomic write.

        True if this call recorded it; False if it was recorded before (a duplicate
        delivery): then nothing changes, the first results stand. ``chunk`` must be in
        ``range(fanout.chunks)`` (:class:`ValueError` otherwise); bodies follow the item
        size limit (:class:`ItemTooLarge`). ``expires_at`` is the chunk item's TTL.
        """
        ...

    def claim_fanin(self, run_id: str, seq: int) -> bool:
        """True for exactly one caller, once every chunk is done (False before, and after)."""
        ...

    def load_chunks(self, run_id: str, seq: int) -> list[tuple[int, bytes]]:
        """Every recorded chunk as ``(chunk, body)``, in chunk order (one Query, pages aside)."""
        ...

    def purge_run(self, run_id: str) -> int:
        """Delete everything of ``run_id`` -- its record, checkpoints, markers, fan-out
        headers and chunks -- and say how many items there were (0 for a run that is gone).

        Checkpoint 0 goes last: a new run with the same id cannot start while a purge is
        half done (its start writes checkpoint 0 on condition that there is none).
        Blobs are not the store's: the caller deletes ``runs/<id>/`` in the blob store.
        """
        ...


class Expiring(Protocol):
    """A store with no TTL service behind it (memory, SQLite): it finds its own expired
    runs, so a prune can do what DynamoDB's TTL and the reaper do on AWS."""

    def list_expired(self, now: float, *, limit: int = 100) -> list[str]:
        """Ids of runs whose ``expires_at`` is at or before ``now``, soonest first."""
        ...
