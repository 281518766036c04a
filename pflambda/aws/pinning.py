"""The API side of version pinning: a refused request is answered by the pinned version.

A reply to a paused task whose node the deployed flow no longer has is refused by the
engine with :class:`~pflambda.errors.PinnedElsewhere` before it writes anything. The
A2A layer reports every error it maps through :func:`note`; :func:`answer` runs the
request under :func:`watching`, and if such a refusal was noted, invokes the pinned
version with the very same API Gateway event (plus the ``x-pflambda-hops`` header) and
answers with *its* response -- the local refusal, which changed nothing, is dropped. A
pinned version that is gone leaves the local refusal (which names ``pflambda migrate``)
standing; an event that was handed on once already is never handed on again.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from pflambda.aws.invoke import Invoker, PinGone, hops_of, targets, with_hops
from pflambda.errors import PinnedElsewhere
from pflambda.http import HttpResponse

__all__ = ["answer", "from_proxy_response", "note", "watching"]

log = logging.getLogger("pflambda.invoke")

R = TypeVar("R")

_refusals: ContextVar[list[PinnedElsewhere] | None] = ContextVar("pflambda_pins", default=None)


@contextmanager
def watching() -> Iterator[list[PinnedElsewhere]]:
    """Collect the :class:`PinnedElsewhere` refusals :func:`note` hears in this context."""
    seen: list[PinnedElsewhere] = []
    token = _refusals.set(seen)
    try:
        yield seen
    finally:
        _refusals.reset(token)


def note(exc: BaseException) -> None:
    """Tell the request being answered (if any watches) that ``exc`` refused it."""
    seen = _refusals.get()
    if seen is not None and isinstance(exc, PinnedElsewhere):
        seen.append(exc)


def answer(
    event: Mapping[str, Any],
    local: Callable[[], R],
    invoker: Callable[[], Invoker],
    wrap: Callable[[dict[str, Any]], R],
) -> R:
    """``local()``'s answer to ``event``, unless it was refused for a run pinned elsewhere:
    then the pinned version's answer to the same event (``wrap`` makes it an ``R``)."""
    if hops_of(event) > 0:  # handed here by another version: answer here, whatever happens
        return local()
    with watching() as seen:
        response = local()
    if not seen:
        return response
    pinned = targets(seen[-1].pinned)[0]
    try:
        proxied = invoker().call(pinned, with_hops(event, 1))
    except PinGone as gone:
        log.warning("the pinned version is gone (%s); the refusal stands", gone)
        return response
    except Exception as exc:
        log.exception("the pinned version %s did not answer", pinned)
        return wrap(_failed(pinned, exc))
    log.info("request answered by the pinned version %s", pinned)
    _close(response)
    return wrap(proxied)


def _close(response: Any) -> None:
    """Close the local answer's streamed body (its refusal is not sent)."""
    close = getattr(getattr(response, "body", None), "close", None)
    if callable(close):
        close()


def _failed(pinned: str, exc: BaseException) -> dict[str, Any]:
    message = (
        f"the version this task is pinned to ({pinned}) did not answer: "
        f"{type(exc).__name__}; get the task to see where it is"
    )
    doc = {"jsonrpc": "2.0", "id": None, "error": {"code": -32603, "message": message}}
    return {
        "statusCode": 502,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(doc),
        "isBase64Encoded": False,
    }


def from_proxy_response(response: Mapping[str, Any]) -> HttpResponse:
    """An API Gateway proxy answer (REST v1 or HTTP v2 shape) as an :class:`HttpResponse`."""
    headers = {str(k): str(v) for k, v in dict(response.get("headers") or {}).items()}
    for name, values in dict(response.get("multiValueHeaders") or {}).items():
        if values:
            headers[str(name)] = str(values[-1])
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode()
    return HttpResponse(int(response.get("statusCode", 200)), headers, raw)
