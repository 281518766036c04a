"""HTTP requests and responses as the A2A layer sees them, whatever carried them.

API Gateway events (:mod:`pflambda.aws.http`) and the local server both become an
:class:`HttpRequest`; an :class:`HttpResponse` whose body is an iterator is a stream
(live on the local server, buffered on Lambda).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["App", "HttpRequest", "HttpResponse"]


@dataclass
class HttpRequest:
    """One HTTP request."""

    method: str
    path: str
    """The resource path without the API stage, e.g. ``/agents/research/``."""
    headers: dict[str, str]
    """Lower-cased names."""
    query: dict[str, str]
    body: bytes
    principal: str | None = None
    """Who API Gateway's authorizer says is calling, if there is one."""
    claims: dict[str, Any] = field(default_factory=dict)
    base_url: str | None = None
    """The public URL prefix of the API (``https://host/stage``)."""
    source_ip: str | None = None
    context: Any = None
    """The Lambda context (for deadlines)."""


@dataclass
class HttpResponse:
    """One HTTP response; an iterator body is streamed (SSE)."""

    status: int
    headers: dict[str, str]
    body: bytes | Iterator[bytes] = b""


App = Callable[[HttpRequest], HttpResponse]
"""Anything that answers requests."""
