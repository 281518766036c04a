"""The JSON-RPC binding: a POST of a JSON-RPC request in, a result, an error or an SSE stream out.

The version of a call is told by its method name -- ``SendMessage`` (1.0),
``message/send`` (0.3), ``tasks/send`` (0.1) -- and a 1.0 call must carry an
``A2A-Version: 1.x`` header (or query parameter); a missing header means 0.3, as
the spec says. 1.0 params are read in camelCase or snake_case, as protobuf JSON
parsers read them. Every failure is a JSON-RPC error object with HTTP 200 (1.0 errors
carry a ``google.rpc.ErrorInfo`` in ``error.data``); a streaming call that fails before
its first event answers with an SSE stream holding one error event (0.3, 0.1) or a
plain JSON-RPC error (1.0).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pflambda.a2a import errors as err
from pflambda.a2a.call import ApiDeadline, Call, agent_url, check_version, declared_version
from pflambda.a2a.model import StatusUpdate, Task
from pflambda.a2a.tasks import PING, Caller
from pflambda.a2a.wire import Version, camel_keys, check_text, render_event
from pflambda.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from pflambda.a2a.dispatcher import Dispatcher

__all__ = ["JSON", "handle", "is_json", "sse_response", "to_bytes"]

log = logging.getLogger("pflambda.a2a")

JSON = {"Content-Type": "application/json"}
SSE = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

Handler = Callable[["Dispatcher", Call], Any]


def handle(dispatcher: Dispatcher, request: HttpRequest, principal: str) -> HttpResponse:
    """Answer one JSON-RPC request for ``dispatcher``'s agent."""
    from pflambda.a2a.dispatcher import METHODS

    kind = request.headers.get("content-type")
    if kind is not None and not is_json(kind):
        refusal = err.ContentTypeNotSupported(
            f"send JSON-RPC requests as application/json, not {kind.partition(';')[0]}"
        )
        declared = declared_version(request) or "0.3"
        return _error(None, refusal, Version.V1_0 if declared.startswith("1") else Version.V0_3)
    limit = dispatcher.agent.max_body_bytes
    if len(request.body) > limit:
        error: err.A2AError = err.InvalidRequest(f"request body is larger than {limit} bytes")
        return _error(None, error, Version.V0_3)
    try:
        call = _parse(dispatcher, request, principal)
    except err.A2AError as exc:
        return _error(_peek_id(request.body), exc, _peek_version(request.body))
    entry = METHODS.get(call.method)
    if entry is None:
        return _error(
            call.id, err.MethodNotFound(f"method {call.method!r} not found"), call.version
        )
    handler, streaming = entry[1], entry[2]
    try:
        if streaming:
            if not dispatcher.agent.streaming:
                raise err.UnsupportedOperation("this agent does not stream")
            return _stream(dispatcher, call, handler(dispatcher, call))
        return _result(call.id, handler(dispatcher, call))
    except Exception as exc:
        error = dispatcher.fault(call, exc)
        if streaming and call.version is not Version.V1_0:
            return sse_response(iter([_error_frame(call.id, error, call.version)]))
        return _error(call.id, error, call.version)


def _parse(dispatcher: Dispatcher, request: HttpRequest, principal: str) -> Call:
    from pflambda.a2a.dispatcher import METHODS

    try:
        doc = json.loads(request.body)
    except (ValueError, RecursionError):
        raise err.ParseError() from None
    if not isinstance(doc, dict):
        raise err.InvalidRequest("a request must be a JSON object (batches are not supported)")
    rid = doc.get("id")
    if doc.get("jsonrpc") != "2.0" or not isinstance(doc.get("method"), str):
        raise err.InvalidRequest('a request needs "jsonrpc": "2.0" and a string "method"')
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, str | int)):
        raise err.InvalidRequest("id must be a string, a number or null")
    if isinstance(rid, str):
        check_text(rid, "id", err.InvalidRequest)
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise err.InvalidParams("params must be an object")
    check_text(params, "params")
    method = doc["method"]
    entry = METHODS.get(method)
    version = entry[0] if entry is not None else Version.V0_3
    if entry is not None:
        check_version(method, version, request, default="0.3")
    if version is Version.V1_0:
        params = camel_keys(params, "params")
    deadline = ApiDeadline(request.context, dispatcher.agent.engine.clock)
    caller = Caller(principal=principal, deadline=deadline, protocol=version.value)
    return Call(rid, method, params, version, caller, agent_url(request, request.path))


def _stream(dispatcher: Dispatcher, call: Call, events: Iterator[Any]) -> HttpResponse:
    first = next(events, PING)  # errors before the stream starts: see handle()

    def frames() -> Iterator[bytes]:
        try:
            yield _frame(call, first)
            for event in events:
                yield _frame(call, event)
        except Exception as exc:
            yield _error_frame(call.id, dispatcher.fault(call, exc), call.version)

    return sse_response(frames())


def is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type: what a browser cannot send cross-site
    without a preflight (so a page elsewhere cannot make a user's browser call us)."""
    kind = content_type.partition(";")[0].strip().lower()
    return kind in ("application/json", "application/json-rpc") or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def sse_response(frames: Iterator[bytes]) -> HttpResponse:
    """An SSE response streaming ``frames``."""
    return HttpResponse(200, dict(SSE), frames)


def _frame(call: Call, event: Any) -> bytes:
    if event is PING:
        return b": ping\n\n"
    if isinstance(event, Task) and call.version is Version.V0_1:
        event = StatusUpdate(event.id, event.context_id, event.status)
    doc = {"jsonrpc": "2.0", "id": call.id, "result": render_event(event, call.version)}
    return b"data: " + to_bytes(doc) + b"\n\n"


def _error_frame(rid: Any, error: err.A2AError, version: Version) -> bytes:
    doc = {"jsonrpc": "2.0", "id": rid, "error": error.to_json(error_info=version is Version.V1_0)}
    return b"data: " + to_bytes(doc) + b"\n\n"


def to_bytes(doc: Any) -> bytes:
    """UTF-8 JSON; text that cannot be UTF-8 (a lone surrogate) is escaped, never a crash."""
    text = json.dumps(doc, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(doc).encode("ascii")


def _peek(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _peek_id(body: bytes) -> Any:
    rid = _peek(body).get("id")
    if isinstance(rid, str):
        try:
            check_text(rid, "id", err.InvalidRequest)
        except err.A2AError:
            return None  # an id we cannot echo: answer with null, as for an unreadable one
    return rid if isinstance(rid, str | int) and not isinstance(rid, bool) else None


def _peek_version(body: bytes) -> Version:
    from pflambda.a2a.dispatcher import METHODS

    entry = METHODS.get(str(_peek(body).get("method")))
    return entry[0] if entry is not None else Version.V0_3


def _result(rid: Any, result: Any) -> HttpResponse:
    return HttpResponse(200, dict(JSON), to_bytes({"jsonrpc": "2.0", "id": rid, "result": result}))


def _error(rid: Any, error: err.A2AError, version: Version) -> HttpResponse:
    body = {"jsonrpc": "2.0", "id": rid, "error": error.to_json(error_info=version is Version.V1_0)}
    return HttpResponse(200, dict(JSON), to_bytes(body))
