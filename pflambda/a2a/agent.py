"""An Agent: a flow, how A2A messages become its shared state, and its Lambda handlers.

::

    agent = Agent(name="research", flow="flows.research.flow:create_flow",
                  description="Answers questions", skills=[Skill("qa", "Q&A", "...")])
    handler = agent.api_handler        # API Gateway -> A2A JSON-RPC
    worker = agent.worker_handler      # SQS -> continuations

Auth defaults to ``"auto"``: bearer tokens are required when ``PFLAMBDA_TOKEN``,
``PFLAMBDA_TOKEN_SECRET`` or ``PFLAMBDA_TOKEN_PARAMETER`` is set (the template's
``AuthMode=bearer`` sets the secret), none otherwise; pass ``auth=None`` to turn it off.

By default the text of an incoming message goes to ``shared[input_key]`` (data parts
to ``shared["data"]``, file parts to ``shared["files"]``), and ``shared[output_key]``
comes back as the task's artifact and the agent's reply. Override ``to_shared`` /
``to_artifacts`` for anything else.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from pflambda import limits
from pflambda.a2a.card import CardInfo, Skill
from pflambda.a2a.model import Artifact, Message, Part
from pflambda.engine.flowref import FlowSource, ref_of
from pflambda.errors import PflambdaError

if TYPE_CHECKING:
    from pflambda.a2a.auth import BearerAuth
    from pflambda.a2a.dispatcher import Dispatcher
    from pflambda.a2a.notify import Pushes
    from pflambda.a2a.tasks import TaskService
    from pflambda.aws.config import Settings
    from pflambda.aws.invoke import Invoker
    from pflambda.aws.worker import Worker
    from pflambda.engine.runner import Engine
    from pflambda.http import HttpResponse
    from pflambda.stores.base import RunRecord

__all__ = ["REGISTRY", "Agent"]

log = logging.getLogger("pflambda.agent")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

REGISTRY: dict[str, Agent] = {}
"""Every Agent defined in this process, by name (the worker finds push targets here)."""


class Agent:
    """A PocketFlow flow served as a durable A2A agent."""

    def __init__(
        self,
        name: str,
        flow: FlowSource,
        *,
        description: str = "",
        version: str = "1.0.0",
        skills: Sequence[Skill] = (),
        input_key: str = "question",
        output_key: str = "answer",
        to_shared: Callable[[Message], dict[str, Any]] | None = None,
        to_artifacts: Callable[[dict[Any, Any], str], list[Artifact] | Message] | None = None,
        to_reply: Callable[[Message], Any] | None = None,
        context_memory: bool | Callable[[dict[Any, Any]], dict[Any, Any]] = False,
        auth: BearerAuth | str | None = "auto",
        streaming: bool = True,
        push_notifications: bool = True,
        expose_errors: bool = False,
        settings: Settings | None = None,
        engine: Engine | None = None,
        max_body_bytes: int = 1_000_000,
        card: CardInfo | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"agent name must be lowercase letters, digits and '-': {name!r}")
        self.name, self.flow_ref = name, ref_of(flow)
        self.description = description or f"PocketFlow agent {name}"
        self.version, self.skills = (
            version,
            list(skills) or [Skill(id=name, name=name, description=self.description, tags=[name])],
        )
        self.input_key, self.output_key = input_key, output_key
        self._to_shared, self._to_artifacts = to_shared, to_artifacts
        self._to_reply, self.context_memory = to_reply, context_memory
        if isinstance(auth, str) and auth != "auto":
            raise ValueError(f"auth must be a BearerAuth, None or 'auto', not {auth!r}")
        self.auth: BearerAuth | None = _auth_from_env() if isinstance(auth, str) else auth
        self.streaming, self.push_notifications = streaming, push_notifications
        self.card_info = card or CardInfo()
        """What the card says beyond name, skills and capabilities (modes, provider...)."""
        self.expose_errors, self.max_body_bytes = expose_errors, max_body_bytes
        self._settings, self._engine = settings, engine
        self.api_margin_ms = limits.API_MARGIN_MS
        self.ping_seconds, self.poll_seconds, self.cancel_wait_seconds = 2.0, 0.25, 3.0
        REGISTRY[name] = self
        if engine is None and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            self.prewarm()

    def prewarm(self) -> None:
        """Build what every request needs -- the A2A layer, the engine, the DynamoDB
        client -- now, in Lambda's init phase (run at import of the handler module,
        before the first request; S3 and SQS clients stay lazy). Called by the
        constructor on Lambda; a failure here is left for the first request to report.
        """
        try:
            _ = self.dispatcher, self.engine
        except Exception:
            log.debug("agent %s: prewarm failed; the first request will build", self.name)

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, flow={self.flow_ref!r})"

    # -- wiring (lazy: nothing is built at import, for cold starts) -------------------

    @cached_property
    def settings(self) -> Settings:
        """Configuration, from the environment unless given."""
        from pflambda.aws.config import Settings

        return self._settings or Settings.from_env()

    @cached_property
    def engine(self) -> Engine:
        """The durable engine, with push notifications queued at status changes."""
        engine = self._engine or self.settings.engine()
        engine.listeners.append(self._pushes.on_status)
        engine.step_listeners.append(self._pushes.on_step)
        return engine

    @cached_property
    def tasks(self) -> TaskService:
        """The task operations."""
        from pflambda.a2a.tasks import TaskService

        return TaskService(self)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        """The JSON-RPC front."""
        from pflambda.a2a.dispatcher import Dispatcher

        return Dispatcher(self)

    def http(self, event: dict[str, Any], context: Any) -> HttpResponse:
        """An API Gateway event in, an unbuffered response out (the local server streams it).

        A request refused for a run pinned to other code is answered by that code
        (:mod:`pflambda.aws.pinning`)."""
        from pflambda.aws import pinning
        from pflambda.aws.http import parse_event

        return pinning.answer(
            event,
            lambda: self.dispatcher.handle(parse_event(event, context)),
            self._invoker,
            pinning.from_proxy_response,
        )

    def api_handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda handler for API Gateway (REST v1 or HTTP API v2 events), and for the
        internal events another version hands to this one (:mod:`pflambda.aws.invoke`)."""
        from pflambda.aws import pinning
        from pflambda.aws.http import lambda_handler
        from pflambda.aws.invoke import internal_of

        body = internal_of(event)
        if body is not None:
            self.worker.handle_internal(body, context, margin_ms=self.api_margin_ms)
            return {"handled": body["kind"], "run_id": body["run_id"]}
        return pinning.answer(
            event,
            lambda: lambda_handler(self.dispatcher.handle)(event, context),
            self._invoker,
            lambda proxied: proxied,
        )

    def _invoker(self) -> Invoker:
        from pflambda.aws.invoke import default_invoker

        return default_invoker()

    @cached_property
    def worker(self) -> Worker:
        """The SQS worker for this agent's runs (and its push notifications)."""
        from pflambda.a2a.notify import KIND, PushDelivery
        from pflambda.aws.worker import Worker

        return Worker(self.engine, kinds={KIND: PushDelivery(self._only_me)})

    def worker_handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda handler for the SQS work queue."""
        response: dict[str, Any] = self.worker(event, context)
        return response

    # -- mapping between A2A and shared ---------------------------------------------

    def shared_for(self, message: Message) -> dict[str, Any]:
        """The initial shared state for a task's first message."""
        if self._to_shared is not None:
            custom = self._to_shared(message)
            if not isinstance(custom, dict):
                raise TypeError(f"to_shared must return a dict, got {type(custom).__name__}")
            return custom
        shared: dict[str, Any] = {self.input_key: message.text}
        data = [p.data for p in message.parts if p.kind == "data"]
        files = [p.to_json() for p in message.parts if p.kind == "file"]
        if data:
            shared["data"] = data
        if files:
            shared["files"] = files
        return shared

    def reply_for(self, message: Message) -> Any:
        """What a reply to a paused task stores in shared: ``to_reply(message)`` if given
        (it sees the whole message: id, parts, metadata), else its text, else its data."""
        if self._to_reply is not None:
            return self._to_reply(message)
        if message.text:
            return message.text
        data = [p.data for p in message.parts if p.kind == "data"]
        return data[0] if len(data) == 1 else data

    def outcome(self, shared: dict[Any, Any], task_id: str) -> list[Artifact] | Message:
        """What a completed task answers: artifacts, or a :class:`Message` when
        ``to_artifacts`` returns one or the flow put one at ``shared[output_key]``."""
        if self._to_artifacts is not None:
            result = self._to_artifacts(shared, task_id)
            return result if isinstance(result, Message) else list(result)
        if isinstance(shared.get(self.output_key), Message):
            return cast("Message", shared[self.output_key])
        return self.artifacts(shared, task_id)

    def remembered(self, shared: dict[Any, Any]) -> dict[Any, Any]:
        """What a task passes on to the next one in its context (``context_memory``)."""
        if callable(self.context_memory):
            kept = self.context_memory(dict(shared))
            if not isinstance(kept, dict):
                raise TypeError(f"context_memory must return a dict, got {type(kept).__name__}")
            return kept
        return dict(shared)

    def artifacts(self, shared: dict[Any, Any], task_id: str) -> list[Artifact]:
        """The task's artifacts from its final shared state (none for a Message reply)."""
        if self._to_artifacts is not None:
            result = self._to_artifacts(shared, task_id)
            return [] if isinstance(result, Message) else list(result)
        if self.output_key not in shared:
            return []
        value = shared[self.output_key]
        if isinstance(value, Message):
            return []
        part = Part(text=value) if isinstance(value, str) else Part(data=_jsonable(value))
        return [
            Artifact(
                artifact_id=f"{task_id}-{self.output_key}", parts=(part,), name=self.output_key
            )
        ]

    def reply(self, shared: dict[Any, Any]) -> str:
        """The agent's closing words: the output when it is text."""
        value = shared.get(self.output_key)
        return value if isinstance(value, str) else ""

    def describe_error(self, error: str | None) -> str:
        """What a client learns of a failure (details only with ``expose_errors``)."""
        if self.expose_errors and error:
            return error
        return "The agent could not complete this task."

    # -- push notifications -----------------------------------------------------------

    @cached_property
    def _pushes(self) -> Pushes:
        from pflambda.a2a.notify import Pushes

        return Pushes(self._only_me)

    def _only_me(self, name: str) -> Agent | None:
        return self if name == self.name else None

    def check_push_url(self, url: str) -> None:
        """Refuse push URLs that are not https, or resolve to private addresses."""
        from pflambda.a2a.errors import InvalidParams, PushNotSupported
        from pflambda.a2a.push import PushConfigError, validate_push_url

        if not self.push_notifications:
            raise PushNotSupported()
        try:
            validate_push_url(url, allow_private=self.settings.allow_private_push)
        except PushConfigError as exc:
            raise InvalidParams(str(exc)) from None

    def on_status(self, record: RunRecord) -> None:
        """Engine listener: queue a push of the task to every push config it has
        (:mod:`pflambda.a2a.notify`; the worker delivers them)."""
        self._pushes.on_status(record)


def _auth_from_env() -> BearerAuth | None:
    """``auth="auto"``: bearer tokens when a token source is configured, else none."""
    import os

    names = ("PFLAMBDA_TOKEN", "PFLAMBDA_TOKEN_SECRET", "PFLAMBDA_TOKEN_PARAMETER")
    if not any(os.environ.get(n) for n in names):
        return None
    from pflambda.a2a.auth import BearerAuth

    return BearerAuth()


def _jsonable(value: Any) -> Any:
    """A value of shared as readable JSON for an artifact (never the codec's tags)."""
    from pflambda.engine.codec import to_display_json

    try:
        return to_display_json(value)
    except PflambdaError:
        return {"value": repr(value)}
