"""One A2A call, whatever binding carried it: method, params, version and caller.

The JSON-RPC and HTTP+JSON bindings both turn a request into a :class:`Call` and
hand it to the same :class:`~pflambda.a2a.dispatcher.Dispatcher` method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pflambda import limits
from pflambda.a2a import errors as err
from pflambda.a2a.tasks import Caller
from pflambda.a2a.wire import Version
from pflambda.http import HttpRequest

__all__ = ["ApiDeadline", "Call", "agent_url", "declared_version"]


def agent_url(request: HttpRequest, path: str) -> str:
    """``base_url`` + the agent's ``path``, ending in a slash (what its card says)."""
    return (request.base_url or "").rstrip("/") + path.rstrip("/") + "/"


@dataclass
class Call:
    """One request, validated: its id (JSON-RPC; ``None`` for HTTP+JSON), method, params."""

    id: str | int | None
    method: str
    params: dict[str, Any]
    version: Version
    caller: Caller
    url: str = ""
    """The agent's URL as the caller addressed it (for the extended card)."""


def declared_version(request: HttpRequest) -> str | None:
    """The ``A2A-Version`` header (or query parameter) of a request, if it has one."""
    value = request.headers.get("a2a-version") or request.query.get("A2A-Version")
    return value.strip() if value else None


def check_version(method: str, version: Version, request: HttpRequest, default: str) -> None:
    """Refuse a call whose ``A2A-Version`` does not fit ``version`` (-32009)."""
    declared = declared_version(request) or default
    major = declared.split(".")[0]
    if version is Version.V1_0 and major != "1":
        raise err.VersionNotSupported(
            f"{method} is an A2A 1.0 method: send the header A2A-Version: 1.0 (got {declared})"
        )
    if major not in ("0", "1"):
        raise err.VersionNotSupported(f"A2A-Version {declared} is not supported (1.0, 0.3)")


class ApiDeadline:
    """The tighter of the Lambda's remaining time and API Gateway's 29 s budget."""

    def __init__(self, context: Any, clock: Any) -> None:
        self.context, self.clock = context, clock
        self.until = clock.monotonic() + limits.API_TIMEOUT_MS / 1000

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left for this request."""
        left = int((self.until - self.clock.monotonic()) * 1000)
        if self.context is not None and hasattr(self.context, "get_remaining_time_in_millis"):
            left = min(left, int(self.context.get_remaining_time_in_millis()))
        return left
