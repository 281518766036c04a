"""JSON-RPC over HTTP for one agent: the card, three protocol generations, SSE streams.

The version of a call is told by its method name -- ``SendMessage`` (1.0),
``message/send`` (0.3), ``tasks/send`` (0.1) -- and a 1.0 call must carry an
``A2A-Version: 1.x`` header (or query parameter); a missing header means 0.3, as
the spec says. ``tasks/get``, ``tasks/cancel`` and ``tasks/resubscribe`` exist in
0.1 and 0.3 alike: they answer in the version that created the task.

Every failure is a JSON-RPC error object with HTTP 200; only missing credentials
(401) and wrong HTTP methods (405) use HTTP status codes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pflambda.a2a import errors as err
from pflambda.a2a.auth import Unauthorized, principal_of
from pflambda.a2a.card import build_card, card_etag
from pflambda.a2a.model import StatusUpdate, Task, TaskState
from pflambda.a2a.tasks import PING, Caller, TaskService
from pflambda.a2a.wire import (
    Version,
    check_id,
    parse_message,
    parse_push_config,
    parse_send_config,
    render_event,
    render_push_config,
    render_task,
)
from pflambda.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from pflambda.a2a.agent import Agent

__all__ = ["Dispatcher"]

log = logging.getLogger("pflambda.a2a")

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
JSON = {"Content-Type": "application/json"}


@dataclass
class Call:
    """One JSON-RPC request, validated."""

    id: str | int | None
    method: str
    params: dict[str, Any]
    version: Version
    caller: Caller


Handler = Callable[["Dispatcher", Call], Any]


class Dispatcher:
    """Turns HTTP requests into task operations and their results into JSON-RPC."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.tasks: TaskService = agent.tasks

    # -- HTTP -----------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Route a request: the card (GET), JSON-RPC (POST)."""
        if request.path.endswith(CARD_PATHS):
            if request.method not in ("GET", "HEAD"):
                return _http_error(405, "use GET for the agent card", {"Allow": "GET"})
            return self._card(request)
        if request.method != "POST":
            return _http_error(405, "A2A JSON-RPC takes POST", {"Allow": "POST"})
        try:
            return self._rpc(request)
        except Unauthorized as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="a2a"'}
            return _http_error(401, str(exc), headers)

    def card(self, request: HttpRequest) -> dict[str, Any]:
        """The agent card for the URL this request came in on."""
        path = request.path
        for suffix in CARD_PATHS:
            if path.endswith(suffix):
                path = path[: -len(suffix)]
        url = (request.base_url or "").rstrip("/") + (path.rstrip("/") + "/")
        return build_card(
            name=self.agent.name,
            description=self.agent.description,
            version=self.agent.version,
            url=url,
            skills=self.agent.skills,
            streaming=self.agent.streaming,
            push=self.agent.push_notifications,
            bearer=self.agent.auth is not None,
        )

    def _card(self, request: HttpRequest) -> HttpResponse:
        card = self.card(request)
        etag = card_etag(card)
        headers = {**JSON, "Cache-Control": "public, max-age=300", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return HttpResponse(304, {"ETag": etag, "Cache-Control": headers["Cache-Control"]})
        body = b"" if request.method == "HEAD" else json.dumps(card).encode()
        return HttpResponse(200, headers, body)

    # -- JSON-RPC -------------------------------------------------------------------

    def _rpc(self, request: HttpRequest) -> HttpResponse:
        if len(request.body) > self.agent.max_body_bytes:
            limit = self.agent.max_body_bytes
            return _rpc_error(
                None, err.InvalidRequest(f"request body is larger than {limit} bytes")
            )
        try:
            call = self._parse(request)
        except err.A2AError as exc:
            return _rpc_error(_peek_id(request.body), exc)
        entry = METHODS.get(call.method)
        if entry is None:
            return _rpc_error(call.id, err.MethodNotFound(f"method {call.method!r} not found"))
        handler, streaming = entry[1], entry[2]
        try:
            if streaming:
                if not self.agent.streaming:
                    raise err.UnsupportedOperation("this agent does not stream")
                return self._stream(call, handler(self, call))
            return _rpc_result(call.id, handler(self, call))
        except Exception as exc:
            return _rpc_error(call.id, self._fault(call, exc))

    def _parse(self, request: HttpRequest) -> Call:
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
        params = doc.get("params", {})
        if not isinstance(params, dict):
            raise err.InvalidParams("params must be an object")
        method = doc["method"]
        version = _version_of(method, request)
        principal = principal_of(request, self.agent.auth)
        deadline = _ApiDeadline(request.context, self.agent.engine.clock)
        caller = Caller(principal=principal, deadline=deadline, protocol=version.value)
        return Call(rid, method, params, version, caller)

    def _fault(self, call: Call, exc: Exception) -> err.A2AError:
        mapped = err.from_exception(exc)
        if type(mapped) is err.InternalError and not isinstance(exc, err.A2AError):
            log.exception("%s failed", call.method)
        return mapped

    def _stream(self, call: Call, events: Iterator[Any]) -> HttpResponse:
        first = next(events, PING)  # errors before the stream starts are a plain JSON answer

        def frames() -> Iterator[bytes]:
            try:
                yield self._frame(call, first)
                for event in events:
                    yield self._frame(call, event)
            except Exception as exc:
                error = {"jsonrpc": "2.0", "id": call.id, "error": self._fault(call, exc).to_json()}
                yield b"data: " + json.dumps(error).encode() + b"\n\n"

        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        return HttpResponse(200, headers, frames())

    def _frame(self, call: Call, event: Any) -> bytes:
        if event is PING:
            return b": ping\n\n"
        if isinstance(event, Task) and call.version is Version.V0_1:
            event = StatusUpdate(event.id, event.context_id, event.status)
        doc = {"jsonrpc": "2.0", "id": call.id, "result": render_event(event, call.version)}
        return b"data: " + json.dumps(doc, ensure_ascii=False).encode() + b"\n\n"

    # -- methods --------------------------------------------------------------------

    def send(self, call: Call) -> Any:
        message, config, task_id = self._send_params(call)
        task = self.tasks.send(message, config, call.caller, task_id)
        return (
            render_event(task, call.version)
            if call.version is Version.V1_0
            else render_task(task, call.version)
        )

    def send_stream(self, call: Call) -> Iterator[Any]:
        message, config, task_id = self._send_params(call)
        return self.tasks.stream(message, config, call.caller, task_id)

    def _send_params(self, call: Call) -> tuple[Any, Any, str | None]:
        params, v = call.params, call.version
        if v is Version.V0_1:
            task_id = check_id(params.get("id"), "params.id")
            message = parse_message(params.get("message"), v)
            session = params.get("sessionId")
            if session is not None:
                message = _with_context(message, check_id(session, "params.sessionId"))
            history = params.get("historyLength")
            config = parse_send_config(
                {"historyLength": history} if history is not None else None, v
            )
            return message, config, task_id
        message = parse_message(params.get("message"), v)
        return message, parse_send_config(params.get("configuration"), v), None

    def get(self, call: Call) -> Any:
        task_id = self._task_id(call)
        history = call.params.get("historyLength")
        if history is not None and (
            not isinstance(history, int) or isinstance(history, bool) or history < 0
        ):
            raise err.InvalidParams("params.historyLength must be a whole number >= 0")
        task = self.tasks.get(task_id, call.caller, history)
        return render_task(task, self._task_version(call, task_id))

    def list(self, call: Call) -> Any:
        p = call.params
        size = p.get("pageSize", 50)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 100:
            raise err.InvalidParams("params.pageSize must be between 1 and 100")
        status = p.get("status")
        state = _parse_state(status) if status else None
        tasks, token = self.tasks.list(
            call.caller,
            context_id=p.get("contextId"),
            status=state,
            page_size=size,
            page_token=p.get("pageToken") or None,
            history_length=p.get("historyLength"),
            include_artifacts=bool(p.get("includeArtifacts")),
        )
        rendered = [render_task(t, call.version) for t in tasks]
        return {"tasks": rendered, "nextPageToken": token or "", "pageSize": size}

    def cancel(self, call: Call) -> Any:
        task_id = self._task_id(call)
        version = self._task_version(call, task_id)
        return render_task(self.tasks.cancel(task_id, call.caller), version)

    def resubscribe(self, call: Call) -> Iterator[Any]:
        task_id = self._task_id(call)
        call.version = self._task_version(call, task_id)
        return self.tasks.subscribe(task_id, call.caller)

    def set_push(self, call: Call) -> Any:
        p, v = call.params, call.version
        self._require_push()
        if v is Version.V1_0:
            task_id = check_id(p.get("taskId"), "params.taskId")
            config = parse_push_config(p, v, "params")
        else:
            task_id = check_id(p.get("taskId"), "params.taskId")
            config = parse_push_config(
                p.get("pushNotificationConfig"), v, "params.pushNotificationConfig"
            )
        return render_push_config(task_id, self.tasks.set_push(task_id, config, call.caller), v)

    def get_push(self, call: Call) -> Any:
        self._require_push()
        task_id, config_id = self._push_ids(call)
        configs = self.tasks.push_configs(task_id, call.caller)
        key = config_id or next(iter(configs), None)
        if key is None or key not in configs:
            raise err.TaskNotFound(
                f"task {task_id} has no push notification config {config_id or ''}".strip()
            )
        return render_push_config(task_id, configs[key], call.version)

    def list_push(self, call: Call) -> Any:
        self._require_push()
        task_id, _ = self._push_ids(call)
        configs = self.tasks.push_configs(task_id, call.caller)
        rendered = [render_push_config(task_id, c, call.version) for c in configs.values()]
        return (
            {"configs": rendered, "nextPageToken": ""} if call.version is Version.V1_0 else rendered
        )

    def delete_push(self, call: Call) -> Any:
        self._require_push()
        task_id, config_id = self._push_ids(call)
        if config_id is None:
            raise err.InvalidParams("the push notification config id is required")
        self.tasks.delete_push(task_id, config_id, call.caller)
        return None

    def extended_card(self, call: Call) -> Any:
        raise err.ExtendedCardNotConfigured()

    # -- small pieces ----------------------------------------------------------------

    def _require_push(self) -> None:
        if not self.agent.push_notifications:
            raise err.PushNotSupported()

    def _push_ids(self, call: Call) -> tuple[str, str | None]:
        p = call.params
        if call.version is Version.V1_0:
            task_id = check_id(p.get("taskId"), "params.taskId")
            config_id = p.get("id")
        else:
            task_id = check_id(p.get("id"), "params.id")
            config_id = p.get("pushNotificationConfigId")
        return task_id, None if config_id is None else check_id(config_id, "config id")

    def _task_id(self, call: Call) -> str:
        return check_id(call.params.get("id"), "params.id")

    def _task_version(self, call: Call, task_id: str) -> Version:
        """Shared 0.1/0.3 methods answer in the version that created the task."""
        if call.version is Version.V1_0:
            return call.version
        record = self.tasks.record(task_id, call.caller)
        created = record.attrs.get("a2a", {}).get("protocol")
        return Version.V0_1 if created == "0.1" else Version.V0_3


METHODS: dict[str, tuple[Version, Handler, bool]] = {
    "SendMessage": (Version.V1_0, Dispatcher.send, False),
    "SendStreamingMessage": (Version.V1_0, Dispatcher.send_stream, True),
    "GetTask": (Version.V1_0, Dispatcher.get, False),
    "ListTasks": (Version.V1_0, Dispatcher.list, False),
    "CancelTask": (Version.V1_0, Dispatcher.cancel, False),
    "SubscribeToTask": (Version.V1_0, Dispatcher.resubscribe, True),
    "CreateTaskPushNotificationConfig": (Version.V1_0, Dispatcher.set_push, False),
    "GetTaskPushNotificationConfig": (Version.V1_0, Dispatcher.get_push, False),
    "ListTaskPushNotificationConfigs": (Version.V1_0, Dispatcher.list_push, False),
    "DeleteTaskPushNotificationConfig": (Version.V1_0, Dispatcher.delete_push, False),
    "GetExtendedAgentCard": (Version.V1_0, Dispatcher.extended_card, False),
    "message/send": (Version.V0_3, Dispatcher.send, False),
    "message/stream": (Version.V0_3, Dispatcher.send_stream, True),
    "tasks/get": (Version.V0_3, Dispatcher.get, False),
    "tasks/cancel": (Version.V0_3, Dispatcher.cancel, False),
    "tasks/resubscribe": (Version.V0_3, Dispatcher.resubscribe, True),
    "tasks/pushNotificationConfig/set": (Version.V0_3, Dispatcher.set_push, False),
    "tasks/pushNotificationConfig/get": (Version.V0_3, Dispatcher.get_push, False),
    "tasks/pushNotificationConfig/list": (Version.V0_3, Dispatcher.list_push, False),
    "tasks/pushNotificationConfig/delete": (Version.V0_3, Dispatcher.delete_push, False),
    "agent/getAuthenticatedExtendedCard": (Version.V0_3, Dispatcher.extended_card, False),
    "tasks/send": (Version.V0_1, Dispatcher.send, False),
    "tasks/sendSubscribe": (Version.V0_1, Dispatcher.send_stream, True),
}
"""Method -> (protocol version, handler, streams?)."""


def _version_of(method: str, request: HttpRequest) -> Version:
    """The protocol of a call, checked against the ``A2A-Version`` header."""
    entry = METHODS.get(method)
    declared = request.headers.get("a2a-version") or request.query.get("A2A-Version") or "0.3"
    major = declared.strip().split(".")[0]
    if entry is None:
        return Version.V0_3
    version = entry[0]
    if version is Version.V1_0 and major != "1":
        raise err.VersionNotSupported(
            f"{method} is an A2A 1.0 method: send the header A2A-Version: 1.0 (got {declared})"
        )
    if major not in ("0", "1"):
        raise err.VersionNotSupported(f"A2A-Version {declared} is not supported (1.0, 0.3)")
    return version


def _parse_state(value: Any) -> TaskState:
    if isinstance(value, str) and value.startswith("TASK_STATE_"):
        value = value[len("TASK_STATE_") :].lower().replace("_", "-")
    try:
        return TaskState(value)
    except ValueError:
        raise err.InvalidParams(f"params.status: unknown task state {value!r}") from None


def _with_context(message: Any, context_id: str) -> Any:
    from dataclasses import replace

    return replace(message, context_id=context_id)


class _ApiDeadline:
    """The tighter of the Lambda's remaining time and API Gateway's 29 s budget."""

    def __init__(self, context: Any, clock: Any) -> None:
        from pflambda import limits

        self.context, self.clock = context, clock
        self.until = clock.monotonic() + limits.API_TIMEOUT_MS / 1000

    def get_remaining_time_in_millis(self) -> int:
        left = int((self.until - self.clock.monotonic()) * 1000)
        if self.context is not None and hasattr(self.context, "get_remaining_time_in_millis"):
            left = min(left, int(self.context.get_remaining_time_in_millis()))
        return left


def _peek_id(body: bytes) -> Any:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    rid = doc.get("id") if isinstance(doc, dict) else None
    return rid if isinstance(rid, str | int) and not isinstance(rid, bool) else None


def _rpc_result(rid: Any, result: Any) -> HttpResponse:
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}, ensure_ascii=False)
    return HttpResponse(200, dict(JSON), body.encode())


def _rpc_error(rid: Any, error: err.A2AError) -> HttpResponse:
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "error": error.to_json()}, ensure_ascii=False)
    return HttpResponse(200, dict(JSON), body.encode())


def _http_error(status: int, message: str, headers: dict[str, str]) -> HttpResponse:
    body = json.dumps({"error": message}).encode()
    return HttpResponse(status, {**JSON, **headers}, body)
