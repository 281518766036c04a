"""A run as this process sees it: its live state, and what driving it returns.

:class:`Live` is the run loaded in memory (record, graph, cursor, shared, step
number); :class:`RunOutcome` and :class:`StepEvent` are what callers of the engine
get back. The modules that drive steps, commit checkpoints and move a run through
its lifecycle all work on a ``Live``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pflambda.engine.artifacts import ArtifactLog
from pflambda.engine.cursor import Cursor
from pflambda.engine.state import SharedTracker
from pflambda.engine.stepper import Stepper
from pflambda.graph import Graph
from pflambda.stores.base import RunRecord, RunStatus

__all__ = [
    "NO_REPLY",
    "Budget",
    "Deadline",
    "Live",
    "RunOutcome",
    "StatusListener",
    "StepCallback",
    "StepEvent",
    "continuation",
    "outcome",
]

NO_REPLY: Any = object()
"""Default of ``reply``: resume without answering a question."""


class Deadline(Protocol):
    """What the runner needs of a Lambda context."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds before the invocation is killed."""
        ...


@dataclass(frozen=True)
class StepEvent:
    """One committed checkpoint, for progress output and streaming."""

    run_id: str
    seq: int
    node_id: str | None
    action: Any
    size: int
    snapshot: bool
    duration_ms: float
    finished: bool
    retries: int = 0
    """Attempts beyond the first that the node's ``exec`` needed."""
    fan_out_items: int = 0
    """Items this step sent to the workers (a fanned-out batch node)."""
    chunks: tuple[dict[str, Any], ...] = ()
    """Artifact chunks this step committed (entries of :mod:`pflambda.engine.artifacts`)."""


@dataclass
class RunOutcome:
    """Where a run stands after ``start``/``resume`` returned."""

    run_id: str
    status: RunStatus
    seq: int
    shared: dict[Any, Any]
    result: Any = None
    """The root flow's return value, once completed."""
    prompt: str | None = None
    """The question of a paused run."""
    stopped: str | None = None
    """Why a still-running run returned: ``deadline``, ``max_steps``, ``fanout``,
    ``conflict`` (another invocation drives it) or ``retry`` (a retryable failure:
    ``error`` says which; the run stays running and must be tried again)."""
    error: str | None = None
    record: RunRecord | None = None
    """The run's record as this invocation's last write or read left it."""
    chunks: list[dict[str, Any]] = field(default_factory=list)
    """The run's committed artifact chunks (:mod:`pflambda.engine.artifacts` entries)."""


def continuation(run_id: str, seq: int) -> str:
    """The queue message that tells a worker to continue ``run_id`` from ``seq``."""
    return json.dumps({"kind": "continue", "run_id": run_id, "seq": seq})


@dataclass
class Live:
    """A run loaded in this process."""

    record: RunRecord
    graph: Graph
    stepper: Stepper
    tracker: SharedTracker
    cursor: Cursor
    shared: dict[Any, Any]
    seq: int
    result: Any = None
    events: list[StepEvent] = field(default_factory=list)
    driver: str | None = None
    """This invocation's lease id (``None``: driving without a lease)."""
    context: Deadline | None = None
    """The Lambda context whose deadline the lease follows (``None``: renewed leases)."""
    prompt: str | None = None
    """The question of a paused run, resolved when it is stored by reference."""
    artifacts: ArtifactLog = field(default_factory=ArtifactLog)
    """The run's artifact log and the running step's chunks."""


@dataclass(frozen=True)
class Budget:
    """How far one call may drive a run."""

    context: Deadline | None
    max_steps: int | None
    margin_ms: int | None
    hand_off: bool = False
    """When the step budget runs out, give the run to a worker instead of stopping."""


StepCallback = Callable[[StepEvent], None]
StatusListener = Callable[[RunRecord], None]


def outcome(live: Live, stopped: str | None = None) -> RunOutcome:
    """What a caller learns of ``live`` as it stands."""
    record = live.record
    return RunOutcome(
        run_id=record.run_id,
        status=record.status,
        seq=live.seq,
        shared=live.shared,
        result=live.result if record.status == RunStatus.COMPLETED else None,
        prompt=(live.prompt or record.prompt) if record.status == RunStatus.PAUSED else None,
        stopped=stopped,
        error=record.error,
        record=record,
        chunks=live.artifacts.entries(),
    )
