"""JSON-RPC and A2A errors, and the one table that maps pflambda's errors onto them.

Every failure a client sees is one of these codes (with HTTP 200, as JSON-RPC over
HTTP wants; the HTTP+JSON binding uses each error's ``http_status``). Messages are
written for the client: they never carry a stack trace, a class path or a store key.

A2A 1.0 (section 9.5 for JSON-RPC, 11.6 for HTTP+JSON) asks every A2A-specific error
to carry a ``google.rpc.ErrorInfo`` detail: ``reason`` (``TASK_NOT_FOUND``...) and the
domain ``a2a-protocol.org``. :meth:`A2AError.error_info` builds it; JSON-RPC puts it in
``error.data`` (a list), HTTP+JSON in ``error.details``.
"""

from __future__ import annotations

from typing import Any

from pflambda import errors as core
from pflambda.stores.base import ItemTooLarge

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


DOMAIN = "a2a-protocol.org"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


class A2AError(Exception):
    """An error with its JSON-RPC code; ``message`` is safe to show the client."""

    code = -32603
    default = "Internal error"
    reason: str | None = None
    """The ErrorInfo reason: A2A 1.0 names one for each of its own codes (-32001...);
    the plain JSON-RPC errors (-32700...) have none and carry no ErrorInfo."""
    http_status = 500
    """The status of the HTTP+JSON binding (A2A 1.0 section 11.6)."""

    def __init__(self, message: str | None = None, data: Any = None) -> None:
        self.message = message or self.default
        self.data = data
        super().__init__(self.message)

    def error_info(self) -> list[dict[str, Any]]:
        """The ``google.rpc.ErrorInfo`` detail of an A2A error, in ProtoJSON ``Any`` form
        (a list of one; empty for the plain JSON-RPC errors)."""
        if self.reason is None:
            return []
        return [{"@type": ERROR_INFO_TYPE, "reason": self.reason, "domain": DOMAIN}]

    def to_json(self, *, error_info: bool = False) -> dict[str, Any]:
        """The JSON-RPC ``error`` member; with ``error_info`` (1.0), ``data`` is a list
        holding the ErrorInfo (and ``data`` given to the constructor, when there is one)."""
        doc: dict[str, Any] = {"code": self.code, "message": self.message}
        details = self.error_info() if error_info else []
        if details:
            doc["data"] = [*details, *([] if self.data is None else [self.data])]
        elif self.data is not None:
            doc["data"] = self.data
        return doc

    def to_problem(self) -> dict[str, Any]:
        """The HTTP+JSON error body (google.rpc.Status, as AIP-193 writes it)."""
        return {
            "error": {
                "code": self.http_status,
                "status": _STATUS_NAMES.get(self.http_status, "UNKNOWN"),
                "message": self.message,
                "details": self.error_info(),
            }
        }


class ParseError(A2AError):
    code, default = -32700, "Invalid JSON payload"
    reason, http_status = None, 400


class InvalidRequest(A2AError):
    code, default = -32600, "Request payload validation error"
    reason, http_status = None, 400


class MethodNotFound(A2AError):
    code, default = -32601, "Method not found"
    reason, http_status = None, 404


class InvalidParams(A2AError):
    code, default = -32602, "Invalid parameters"
    reason, http_status = None, 400


class InternalError(A2AError):
    code, default = -32603, "Internal error"
    reason, http_status = None, 500


class TaskNotFound(A2AError):
    code, default = -32001, "Task not found"
    reason, http_status = "TASK_NOT_FOUND", 404


class TaskNotCancelable(A2AError):
    code, default = -32002, "Task cannot be canceled"
    reason, http_status = "TASK_NOT_CANCELABLE", 409


class PushNotSupported(A2AError):
    code, default = -32003, "Push Notification is not supported"
    reason, http_status = "PUSH_NOTIFICATION_NOT_SUPPORTED", 400


class UnsupportedOperation(A2AError):
    code, default = -32004, "This operation is not supported"
    reason, http_status = "UNSUPPORTED_OPERATION", 400


class ContentTypeNotSupported(A2AError):
    code, default = -32005, "Incompatible content types"
    reason, http_status = "CONTENT_TYPE_NOT_SUPPORTED", 415


class ExtendedCardNotConfigured(A2AError):
    code, default = -32007, "Extended agent card is not configured"
    reason, http_status = "EXTENDED_AGENT_CARD_NOT_CONFIGURED", 400


class VersionNotSupported(A2AError):
    code, default = -32009, "A2A protocol version not supported"
    reason, http_status = "VERSION_NOT_SUPPORTED", 400


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    409: "FAILED_PRECONDITION",
    415: "INVALID_ARGUMENT",
    500: "INTERNAL",
    502: "INTERNAL",
}
"""HTTP status -> google.rpc.Code name, for the ``status`` of an HTTP+JSON error."""

_TABLE: tuple[tuple[type[BaseException], type[A2AError], str | None], ...] = (
    (core.RunNotFound, TaskNotFound, None),
    # A task id another principal (or agent) holds: "not found", as for every other
    # method, so that ids cannot be probed (0.1 clients choose their task ids).
    (core.RunExists, TaskNotFound, "task not found"),
    (ItemTooLarge, InvalidParams, "the message is too large to store: send less"),
    (core.InvalidRunState, UnsupportedOperation, None),
    (
        core.FingerprintMismatch,
        UnsupportedOperation,
        "the agent changed where this task is waiting; an operator can move the task onto "
        "it with: pflambda migrate TASK_ID --map OLD=NEW",
    ),
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
