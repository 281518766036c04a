"""Where a run is: the cursor, a stack of frames, one per flow being orchestrated.

The outermost frame is the root flow; a nested flow (or one iteration of a
BatchFlow) pushes a frame on top. A frame holds exactly what PocketFlow's
``_orch``/``_run`` keep in local variables, so a run can stop between any two nodes
and go on later, in another process, as if it had never stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pflambda.engine import codec

__all__ = ["Cursor", "Frame", "decode_cursor", "encode_cursor"]


@dataclass
class Frame:
    """One flow's orchestration in progress."""

    flow_id: str
    """The flow's node id (``""`` for the root flow)."""
    node_id: str | None
    """The next node to run in this flow; ``None`` when the orchestration is over."""
    own_params: dict[str, Any]
    """The params the enclosing flow set on this flow (``flow.params``)."""
    params: dict[str, Any]
    """The params every node of this orchestration gets."""
    prep: Any = None
    """What the flow's ``prep`` returned (its ``post`` gets it back)."""
    last_action: Any = None
    """The action the last node returned (the flow's ``post`` gets it)."""
    batch: list[Any] | None = None
    """BatchFlow only: the param dicts ``prep`` returned."""
    index: int = 0
    """BatchFlow only: which of ``batch`` is being run."""
    entered: bool = True
    """False only for the root frame of a run that has not started (``prep`` not run)."""
    pending: dict[str, Any] | None = None
    """A fanned-out batch node waiting for its items: ``{"prep": ..., "seq": ...}``."""


@dataclass
class Cursor:
    """The stack of frames, outermost first; empty when the run has finished."""

    frames: list[Frame] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Whether the root flow has finished."""
        return not self.frames

    @property
    def position(self) -> str | None:
        """The id of the next node to run (innermost frame), for humans."""
        return self.frames[-1].node_id if self.frames else None


_FIELDS = (
    "flow_id",
    "node_id",
    "own_params",
    "params",
    "prep",
    "last_action",
    "batch",
    "index",
    "entered",
    "pending",
)


def encode_cursor(cursor: Cursor) -> codec.JSONValue:
    """The cursor as tagged JSON (prep results and params may hold any codec type)."""
    frames = [[getattr(f, name) for name in _FIELDS] for f in cursor.frames]
    return codec.encode(frames, path="cursor")


def decode_cursor(data: codec.JSONValue) -> Cursor:
    """The inverse of :func:`encode_cursor`."""
    frames = codec.decode(data)
    if not isinstance(frames, list):
        raise ValueError("checkpoint cursor is not a list of frames")
    return Cursor([Frame(**dict(zip(_FIELDS, f, strict=False))) for f in frames])
