"""JSON-RPC and A2A errors, and the one table that maps pflambda's errors onto them.

Every failure a client sees is one of these codes (with HTTP 200, as JSON-RPC over
HTTP wants). Messages are written for the client: they never carry a stack trace,
a class path or a store key.
"""

from __future__ import annotations

from typing import Any

from pflambda import errors as core

__all__ = [
    "A2AError",
    "ContentTypeNotSupported",
    "ExtendedCardNotConfigured",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "MethodNotFound",
    "ParseError",
    "PushNotSupported",
    "TaskNotCancelable",
    "TaskNotFound",
    "UnsupportedOperation",
    "VersionNotSupported",
    "from_exception",
]


class A2AError(Exception):
    """An error with its JSON-RPC code; ``message`` is safe to show the client."""

    code = -32603
    default = "Internal error"

    def __init__(self, message: str | None = None, data: Any = None) -> None:
        self.message = message or self.default
        self.data = data
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member."""
        doc: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            doc["data"] = self.data
        return doc


class ParseError(A2AError):
    code, default = -32700, "Invalid JSON payload"


class InvalidRequest(A2AError):
    code, default = -32600, "Request payload validation error"


class MethodNotFound(A2AError):
    code, default = -32601, "Method not found"


class InvalidParams(A2AError):
    code, default = -32602, "Invalid parameters"


class InternalError(A2AError):
    code, default = -32603, "Internal error"


class TaskNotFound(A2AError):
    code, default = -32001, "Task not found"


class TaskNotCancelable(A2AError):
    code, default = -32002, "Task cannot be canceled"


class PushNotSupported(A2AError):
    code, default = -32003, "Push Notification is not supported"


class UnsupportedOperation(A2AError):
    code, default = -32004, "This operation is not supported"


class ContentTypeNotSupported(A2AError):
    code, default = -32005, "Incompatible content types"


class ExtendedCardNotConfigured(A2AError):
    code, default = -32007, "Extended agent card is not configured"


class VersionNotSupported(A2AError):
    code, default = -32009, "A2A protocol version not supported"


_TABLE: tuple[tuple[type[BaseException], type[A2AError], str | None], ...] = (
    (core.RunNotFound, TaskNotFound, None),
    (core.RunExists, InvalidParams, "a task with this id already exists"),
    (core.InvalidRunState, UnsupportedOperation, None),
    (core.FingerprintMismatch, UnsupportedOperation, "the agent changed since this task started"),
    (core.CheckpointConflict, UnsupportedOperation, "the task is being updated by another request"),
    (core.SerializationError, InvalidParams, "the message cannot be stored"),
    (core.RetryableError, InternalError, "temporarily unavailable, try again"),
)
"""pflambda error -> A2A error, and the message to show (``None``: the error's own)."""


def from_exception(exc: BaseException) -> A2AError:
    """The A2A error a client should see for ``exc`` (unknown errors: a bare -32603)."""
    if isinstance(exc, A2AError):
        return exc
    for kind, a2a, message in _TABLE:
        if isinstance(exc, kind):
            return a2a(message or _first_line(exc))
    return InternalError()


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
