"""One agent's A2A front: routes a request to its card, the JSON-RPC or the HTTP+JSON
binding, and holds the A2A methods both bindings call.

Callers are authenticated before anything else is read: a request without acceptable
credentials is a 401 whatever its body. The bindings (:mod:`pflambda.a2a.jsonrpc`,
:mod:`pflambda.a2a.rest`) turn requests into :class:`~pflambda.a2a.call.Call` objects;
the methods here answer them in the call's protocol version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from pflambda.a2a import errors as err
from pflambda.a2a import jsonrpc, rest
from pflambda.a2a.auth import Unauthorized, principal_of
from pflambda.a2a.call import Call, declared_version
from pflambda.a2a.card import build_card, card_etag, media_accepted
from pflambda.a2a.listing import ListQuery
from pflambda.a2a.model import Message, TaskState
from pflambda.a2a.tasks import TaskService
from pflambda.a2a.wire import (
    Version,
    check_id,
    parse_message,
    parse_push_config,
    parse_send_config,
    render_event,
    render_message,
    render_push_config,
    render_task,
    whole_number,
)
from pflambda.aws import pinning
from pflambda.errors import ConfigError
from pflambda.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from pflambda.a2a.agent import Agent

__all__ = ["METHODS", "Call", "Dispatcher"]

log = logging.getLogger("pflambda.a2a")

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
JSON = jsonrpc.JSON


Handler = Callable[["Dispatcher", Call], Any]


class Dispatcher:
    """Turns HTTP requests into task operations and their results into A2A answers."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.tasks: TaskService = agent.tasks
        self.card_modified = formatdate(agent.engine.clock.now(), usegmt=True)
        """``Last-Modified`` of the card: it changes only with the code, so with the process."""

    # -- HTTP -----------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Route a request: the card (GET), HTTP+JSON routes, JSON-RPC (POST)."""
        if request.path.endswith(CARD_PATHS):
            if request.method not in ("GET", "HEAD"):
                return _http_error(405, "use GET for the agent card", {"Allow": "GET"})
            return self._card(request)
        try:
            principal = principal_of(request, self.agent.auth)
        except Unauthorized as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="a2a"'}
            return _http_error(401, str(exc), headers)
        route = rest.match(request)
        if route is not None:
            return rest.handle(self, request, principal, route)
        if request.method != "POST":
            return _http_error(405, "A2A JSON-RPC takes POST", {"Allow": "POST"})
        return jsonrpc.handle(self, request, principal)

    def card(self, request: HttpRequest, *, extended: bool = False) -> dict[str, Any]:
        """The agent card for the URL this request came in on, in the shape of the
        protocol the request asks for (:func:`card_protocol`)."""
        path = request.path
        for suffix in CARD_PATHS:
            if path.endswith(suffix):
                path = path[: -len(suffix)]
        url = (request.base_url or "").rstrip("/") + (path.rstrip("/") + "/")
        return self.card_at(url, card_protocol(request), extended=extended)

    def card_at(self, url: str, protocol: str, *, extended: bool = False) -> dict[str, Any]:
        """The card of this agent served at ``url``, for ``protocol`` "1.0" or "0.3"."""
        return build_card(
            name=self.agent.name,
            description=self.agent.description,
            version=self.agent.version,
            url=url,
            skills=self.agent.skills,
            streaming=self.agent.streaming,
            push=self.agent.push_notifications,
            bearer=self.agent.auth is not None,
            info=self.agent.card_info,
            protocol=protocol,
            extended=extended,
        )

    def _card(self, request: HttpRequest) -> HttpResponse:
        card = self.card(request)
        etag = card_etag(card)
        cache = {
            "Cache-Control": "public, max-age=300",
            "ETag": etag,
            "Last-Modified": self.card_modified,
            "Vary": "A2A-Version",
        }
        if request.headers.get("if-none-match") == etag or (
            "if-none-match" not in request.headers
            and request.headers.get("if-modified-since") == self.card_modified
        ):
            return HttpResponse(304, cache)
        body = b"" if request.method == "HEAD" else json.dumps(card).encode()
        return HttpResponse(200, {**JSON, **cache}, body)

    def fault(self, call: Call, exc: Exception) -> err.A2AError:
        """The A2A error a failed call answers with (unexpected ones are logged)."""
        pinning.note(exc)  # a run pinned to other code: the API may hand the request there
        mapped = err.from_exception(exc)
        if type(mapped) is err.InternalError and not isinstance(exc, err.A2AError):
            log.exception("%s failed", call.method)
        return mapped

    # -- methods --------------------------------------------------------------------

    def send(self, call: Call) -> Any:
        message, config, task_id = self._send_params(call)
        answer = self.tasks.send(message, config, call.caller, task_id)
        if call.version is Version.V1_0:
            return render_event(answer, call.version)
        if isinstance(answer, Message):
            return render_message(answer, call.version)
        return render_task(answer, call.version)

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
        self._check_media(message)
        return message, self._send_config(params.get("configuration"), v), None

    def _check_media(self, message: Any) -> None:
        """-32005 for a part whose media type the card's input modes do not accept."""
        modes = [*self.agent.card_info.input_modes]
        modes += [m for skill in self.agent.skills for m in skill.input_modes]
        implied = {"text": "text/plain", "data": "application/json"}
        for i, part in enumerate(message.parts):
            media = part.media_type or implied.get(part.kind)
            if media is not None and not media_accepted(media, modes):
                raise err.ContentTypeNotSupported(
                    f"params.message.parts[{i}]: this agent does not accept {media} "
                    f"(it accepts {', '.join(modes)})"
                )

    def _send_config(self, doc: Any, v: Version) -> Any:
        """A send's configuration; its push config is checked as a set's would be."""
        config = parse_send_config(doc, v)
        if config.push is not None:
            self.agent.check_push_url(config.push.url)
        return config

    def get(self, call: Call) -> Any:
        task_id = self._task_id(call)
        history = whole_number(call.params.get("historyLength"), "params.historyLength")
        task = self.tasks.get(task_id, call.caller, history)
        return render_task(task, self._task_version(call, task_id))

    def list(self, call: Call) -> Any:
        p = call.params
        size = p.get("pageSize", 50)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 100:
            raise err.InvalidParams("params.pageSize must be between 1 and 100")
        status = p.get("status")
        state = _parse_state(status) if status else None
        context = p.get("contextId") or None
        token = p.get("pageToken") or None
        if token is not None and not isinstance(token, str):
            raise err.InvalidParams("params.pageToken must be a string")
        include = p.get("includeArtifacts")
        if include is not None and not isinstance(include, bool):
            raise err.InvalidParams("params.includeArtifacts must be true or false")
        query = ListQuery(
            context_id=None if context is None else check_id(context, "params.contextId"),
            status=state,
            page_size=size,
            page_token=token,
            history_length=whole_number(p.get("historyLength"), "params.historyLength"),
            include_artifacts=bool(include),
        )
        try:
            page = self.tasks.list(call.caller, query)
        except ConfigError:  # the store could not read the token
            raise err.InvalidParams(
                "params.pageToken is not a token this agent gave: start again without it"
            ) from None
        rendered = [render_task(t, call.version) for t in page.tasks]
        return {
            "tasks": rendered,
            "nextPageToken": page.next_token or "",
            "pageSize": size,
            "totalSize": page.total_size,
        }

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
        if not self.agent.card_info.extended_skills:
            raise err.ExtendedCardNotConfigured()
        protocol = "1.0" if call.version is Version.V1_0 else "0.3"
        return self.card_at(call.url, protocol, extended=True)

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


def card_protocol(request: HttpRequest) -> str:
    """Which card a request gets: "0.3" at the legacy ``agent.json`` path or with an
    ``A2A-Version: 0.x`` header (or query parameter), else "1.0"."""
    if request.path.endswith("/.well-known/agent.json"):
        return "0.3"
    declared = declared_version(request)
    return "0.3" if declared is not None and declared.split(".")[0] == "0" else "1.0"


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


def _http_error(status: int, message: str, headers: dict[str, str]) -> HttpResponse:
    body = json.dumps({"error": message}).encode()
    return HttpResponse(status, {**JSON, **headers}, body)
