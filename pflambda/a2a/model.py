"""A2A's objects, once, independent of protocol version: tasks, messages, parts, events.

The wire module renders these for A2A 1.0, 0.3 and the legacy 0.1 and parses
incoming messages into them; everything between (the task service, storage) sees
only these. Messages are stored in a run's metadata in :meth:`Message.to_json` form.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Artifact",
    "ArtifactUpdate",
    "Message",
    "Part",
    "StatusUpdate",
    "Task",
    "TaskState",
    "TaskStatus",
    "iso_time",
]


class TaskState(enum.StrEnum):
    """A task's state, in 0.3 spelling (the wire module renders the others)."""

    SUBMITTED = "submitted"
    WORKING = "working"
    INPUT_REQUIRED = "input-required"
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"
    REJECTED = "rejected"
    AUTH_REQUIRED = "auth-required"

    @property
    def final(self) -> bool:
        """Terminal, or waiting for the client: a stream ends here."""
        return self not in (TaskState.SUBMITTED, TaskState.WORKING)


def iso_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``, as every A2A client accepts."""
    stamp = datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@dataclass(frozen=True)
class Part:
    """One piece of content: text, structured data, or a file (inline bytes or a URL)."""

    text: str | None = None
    data: Any = None
    file_bytes: str | None = None
    """Base64."""
    file_uri: str | None = None
    media_type: str | None = None
    filename: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        """``text``, ``data`` or ``file``."""
        if self.text is not None:
            return "text"
        if self.file_bytes is not None or self.file_uri is not None:
            return "file"
        return "data"

    def to_json(self) -> dict[str, Any]:
        """Storage form."""
        raw = {
            "text": self.text,
            "data": self.data,
            "bytes": self.file_bytes,
            "uri": self.file_uri,
            "mediaType": self.media_type,
            "filename": self.filename,
            "metadata": self.metadata,
        }
        return {k: v for k, v in raw.items() if v is not None}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Part:
        """Inverse of :meth:`to_json`."""
        return cls(
            text=doc.get("text"),
            data=doc.get("data"),
            file_bytes=doc.get("bytes"),
            file_uri=doc.get("uri"),
            media_type=doc.get("mediaType"),
            filename=doc.get("filename"),
            metadata=doc.get("metadata"),
        )


@dataclass(frozen=True)
class Message:
    """A message from the user or the agent."""

    message_id: str
    role: str
    """``user`` or ``agent``."""
    parts: tuple[Part, ...]
    task_id: str | None = None
    context_id: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """All text parts, joined by blank lines."""
        return "\n\n".join(p.text for p in self.parts if p.text is not None)

    def to_json(self) -> dict[str, Any]:
        """Storage form."""
        doc: dict[str, Any] = {
            "messageId": self.message_id,
            "role": self.role,
            "parts": [p.to_json() for p in self.parts],
        }
        for key, value in (
            ("taskId", self.task_id),
            ("contextId", self.context_id),
            ("metadata", self.metadata),
        ):
            if value is not None:
                doc[key] = value
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Message:
        """Inverse of :meth:`to_json`."""
        return cls(
            message_id=doc["messageId"],
            role=doc["role"],
            parts=tuple(Part.from_json(p) for p in doc.get("parts", [])),
            task_id=doc.get("taskId"),
            context_id=doc.get("contextId"),
            metadata=doc.get("metadata"),
        )


@dataclass(frozen=True)
class Artifact:
    """An output of a task."""

    artifact_id: str
    parts: tuple[Part, ...]
    name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class TaskStatus:
    """A state, when it was reached, and what the agent said about it."""

    state: TaskState
    timestamp: str
    message: Message | None = None


@dataclass(frozen=True)
class Task:
    """A task: in pflambda, one durable run."""

    id: str
    context_id: str
    status: TaskStatus
    artifacts: tuple[Artifact, ...] = ()
    history: tuple[Message, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    """A streamed change of status (one per checkpoint while working)."""

    task_id: str
    context_id: str
    status: TaskStatus
    metadata: dict[str, Any] | None = None

    @property
    def final(self) -> bool:
        """Whether the stream ends with this event."""
        return self.status.state.final


@dataclass(frozen=True)
class ArtifactUpdate:
    """A streamed artifact."""

    task_id: str
    context_id: str
    artifact: Artifact
    append: bool = False
    last_chunk: bool = True
    metadata: dict[str, Any] | None = None


Event = Task | Message | StatusUpdate | ArtifactUpdate
"""What a stream carries."""
