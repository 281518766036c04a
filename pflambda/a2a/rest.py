"""The HTTP+JSON binding of A2A 1.0 (spec section 11): REST routes below the agent's URL.

=========  ===========================================  ============================
method     path (after the agent's URL)                 operation
=========  ===========================================  ============================
POST       ``message:send``                             SendMessage
POST       ``message:stream``                           SendStreamingMessage (SSE)
GET        ``tasks``                                    ListTasks (query parameters)
GET        ``tasks/{id}``                               GetTask (``?historyLength=``)
POST       ``tasks/{id}:cancel``                        CancelTask
POST, GET  ``tasks/{id}:subscribe``                     SubscribeToTask (SSE)
POST, GET  ``tasks/{id}/pushNotificationConfigs``       Create / List push configs
GET, DEL   ``tasks/{id}/pushNotificationConfigs/{c}``   Get / Delete a push config
GET        ``extendedAgentCard``                        GetExtendedAgentCard
=========  ===========================================  ============================

Bodies and answers are the 1.0 ProtoJSON objects the JSON-RPC binding carries in
``params``/``result``; a streamed event is one SSE ``data:`` line holding a
``StreamResponse``. Errors are ``google.rpc.Status`` bodies (``{"error": {"code",
"status", "message", "details": [ErrorInfo]}}``) with the HTTP status of section 11.6.
These routes are 1.0 only: an ``A2A-Version`` header other than 1.x is refused, and a
missing one means 1.0 (0.3's HTTP+JSON binding used other paths).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pflambda.a2a import errors as err
from pflambda.a2a.call import ApiDeadline, Call, agent_url, declared_version
from pflambda.a2a.jsonrpc import JSON, is_json, sse_response, to_bytes
from pflambda.a2a.tasks import PING, Caller
from pflambda.a2a.wire import Version, camel_keys, check_text, render_event
from pflambda.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from pflambda.a2a.dispatcher import Dispatcher

__all__ = ["Route", "handle", "match"]

_ID = r"(?P<id>[^/:]+)"
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (verb, re.compile(pattern + "$"), method)
    for verb, pattern, method in (
        ("POST", r"/message:send", "SendMessage"),
        ("POST", r"/message:stream", "SendStreamingMessage"),
        ("GET", r"/tasks", "ListTasks"),
        ("GET", rf"/tasks/{_ID}", "GetTask"),
        ("POST", rf"/tasks/{_ID}:cancel", "CancelTask"),
        ("POST", rf"/tasks/{_ID}:subscribe", "SubscribeToTask"),
        ("GET", rf"/tasks/{_ID}:subscribe", "SubscribeToTask"),
        ("POST", rf"/tasks/{_ID}/pushNotificationConfigs", "CreateTaskPushNotificationConfig"),
        ("GET", rf"/tasks/{_ID}/pushNotificationConfigs", "ListTaskPushNotificationConfigs"),
        (
            "GET",
            rf"/tasks/{_ID}/pushNotificationConfigs/(?P<cid>[^/]+)",
            "GetTaskPushNotificationConfig",
        ),
        (
            "DELETE",
            rf"/tasks/{_ID}/pushNotificationConfigs/(?P<cid>[^/]+)",
            "DeleteTaskPushNotificationConfig",
        ),
        ("GET", r"/extendedAgentCard", "GetExtendedAgentCard"),
    )
)
_INTS = ("historyLength", "pageSize")


@dataclass(frozen=True)
class Route:
    """A request's HTTP+JSON operation (``method`` None: the path exists, not the verb)."""

    method: str | None
    path_params: dict[str, str]
    allow: tuple[str, ...] = ()
    root: str = "/"
    """The agent's path: the request's path before the route."""


def match(request: HttpRequest) -> Route | None:
    """The HTTP+JSON route of ``request``; ``None`` when it is not one (JSON-RPC's POSTs)."""
    verb = "GET" if request.method == "HEAD" else request.method
    allow: list[str] = []
    for route_verb, pattern, method in _ROUTES:
        found = pattern.search(request.path)
        if found is None:
            continue
        if route_verb == verb:
            params = {k: v for k, v in found.groupdict().items() if v is not None}
            return Route(method, params, root=request.path[: found.start()])
        allow.append(route_verb)
    if not allow or verb == "POST":  # a POST no route takes is a JSON-RPC call
        return None
    return Route(None, {}, tuple(sorted(set(allow))))


def handle(
    dispatcher: Dispatcher, request: HttpRequest, principal: str, route: Route
) -> HttpResponse:
    """Answer one HTTP+JSON request."""
    from pflambda.a2a.dispatcher import METHODS

    if route.method is None:
        allow = ", ".join(route.allow)
        refusal = err.MethodNotFound(f"{request.method} is not allowed here (use {allow})")
        return _problem(refusal, 405, {"Allow": allow})
    _, handler, streaming = METHODS[route.method]
    call = None
    try:
        call = _call(dispatcher, request, principal, route)
        if streaming:
            if not dispatcher.agent.streaming:
                raise err.UnsupportedOperation("this agent does not stream")
            return _stream(dispatcher, call, handler(dispatcher, call))
        result = handler(dispatcher, call)
        return HttpResponse(200, dict(JSON), to_bytes({} if result is None else result))
    except Exception as exc:
        error = dispatcher.fault(call, exc) if call is not None else err.from_exception(exc)
        return _problem(error)


def _call(dispatcher: Dispatcher, request: HttpRequest, principal: str, route: Route) -> Call:
    method = str(route.method)
    declared = declared_version(request)
    if declared is not None and declared.split(".")[0] != "1":
        raise err.VersionNotSupported(
            f"the HTTP+JSON routes are A2A 1.0: send A2A-Version: 1.0 (got {declared})"
        )
    params: dict[str, Any] = {k: _query_value(k, v) for k, v in request.query.items()}
    params.pop("A2A-Version", None)
    params.update(_body(request))
    params = camel_keys(params, "request")
    path = route.path_params
    if "cid" in path:
        params["taskId"], params["id"] = path["id"], path["cid"]
    elif method.endswith("PushNotificationConfigs") or method.startswith("Create"):
        params["taskId"] = path["id"]
    elif "id" in path:
        params["id"] = path["id"]
    check_text(params, "request")
    deadline = ApiDeadline(request.context, dispatcher.agent.engine.clock)
    caller = Caller(principal=principal, deadline=deadline, protocol=Version.V1_0.value)
    return Call(None, method, params, Version.V1_0, caller, agent_url(request, route.root))


def _body(request: HttpRequest) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    kind = request.headers.get("content-type", "application/json")
    if not is_json(kind):
        raise _UnsupportedBody(f"send the body as application/json, not {kind.partition(';')[0]}")
    try:
        doc = json.loads(request.body)
    except (ValueError, RecursionError):
        raise err.ParseError("the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise err.InvalidRequest("the body must be a JSON object")
    return doc


class _UnsupportedBody(err.InvalidRequest):
    http_status = 415


def _query_value(key: str, value: str) -> Any:
    """Query strings are text: whole numbers and booleans as ProtoJSON reads them."""
    if key in _INTS or key in ("history_length", "page_size"):
        return int(value) if value.lstrip("-").isdigit() else value
    if value in ("true", "false"):
        return value == "true"
    return value


def _stream(dispatcher: Dispatcher, call: Call, events: Iterator[Any]) -> HttpResponse:
    first = next(events, PING)

    def frames() -> Iterator[bytes]:
        try:
            for event in _chain(first, events):
                if event is PING:
                    yield b": ping\n\n"
                else:
                    yield b"data: " + to_bytes(render_event(event, Version.V1_0)) + b"\n\n"
        except Exception as exc:
            yield b"data: " + to_bytes(dispatcher.fault(call, exc).to_problem()) + b"\n\n"

    return sse_response(frames())


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _problem(
    error: err.A2AError, status: int | None = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    doc = error.to_problem()
    if status is not None:
        doc["error"]["code"] = status
    return HttpResponse(status or error.http_status, {**JSON, **(headers or {})}, to_bytes(doc))
