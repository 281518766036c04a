"""Tasks are runs: the A2A task operations, on the durable engine.

A task id is a run id; the run's record holds the A2A side in ``attrs["a2a"]``
(the agent's name, the conversation history, push configs). Sending a message
starts a run (or answers the question of a paused one) and drives it in this
invocation -- until it finishes, pauses, or the API deadline is near, when the
worker takes over. Streaming drives it the same way, one event per checkpoint
(:mod:`pflambda.a2a.streams`).
A task is visible only to the principal that created it: anyone else gets
"task not found", exactly as for a task that does not exist.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pflambda.a2a import history
from pflambda.a2a.chunks import artifacts_of, merged
from pflambda.a2a.errors import InvalidParams, TaskNotCancelable, TaskNotFound, UnsupportedOperation
from pflambda.a2a.listing import ListQuery, TaskPage, list_tasks
from pflambda.a2a.model import (
    Artifact,
    Message,
    Part,
    Task,
    TaskState,
    TaskStatus,
    iso_time,
)
from pflambda.a2a.push_configs import DEFAULT_ID, fits, with_push, with_push_attrs
from pflambda.a2a.streams import PING, TaskStreams, handed_off, stable_id, time_left
from pflambda.a2a.wire import PushConfig, SendConfig
from pflambda.engine.runner import Deadline, Engine, RunOutcome
from pflambda.errors import RunExists, RunNotFound
from pflambda.stores.base import TERMINAL, RunRecord, RunStatus

if TYPE_CHECKING:
    from pflambda.a2a.agent import Agent

__all__ = ["PING", "TaskService"]

_STATES = {
    RunStatus.RUNNING: TaskState.WORKING,
    RunStatus.PAUSED: TaskState.INPUT_REQUIRED,
    RunStatus.COMPLETED: TaskState.COMPLETED,
    RunStatus.FAILED: TaskState.FAILED,
    RunStatus.CANCELLED: TaskState.CANCELED,
}
_ASKED_STATES = frozenset({TaskState.REJECTED.value, TaskState.AUTH_REQUIRED.value})
"""States a flow can ask for (see ``Agent``): stored in the run's summary."""


@dataclass(frozen=True)
class Caller:
    """Who is asking, and until when this invocation may work."""

    principal: str
    deadline: Deadline | None = None
    protocol: str = "1.0"


class TaskService:
    """The A2A task operations of one agent."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    @property
    def engine(self) -> Engine:
        """The agent's engine."""
        return self.agent.engine

    # -- reading --------------------------------------------------------------------

    def record(self, task_id: str, caller: Caller) -> RunRecord:
        """The run behind a task the caller may see; :class:`TaskNotFound` otherwise."""
        try:
            record = self.engine.store.get_run(task_id)
        except RunNotFound:
            raise TaskNotFound(f"task {task_id} not found") from None
        if record.owner != caller.principal or record.agent != self.agent.name:
            raise TaskNotFound(f"task {task_id} not found")
        return record

    def state_of(self, record: RunRecord) -> TaskState:
        """The task state of a run, from what its listing holds (status and summary)."""
        asked = record.summary.get("state")
        if record.status in (RunStatus.PAUSED, RunStatus.FAILED) and asked in _ASKED_STATES:
            return TaskState(asked)
        state = _STATES[record.status]
        if (
            state is TaskState.WORKING
            and record.summary.get("submitted")
            and record.updated_at == record.created_at
        ):
            return TaskState.SUBMITTED
        return state

    def task(
        self,
        record: RunRecord,
        *,
        history_length: int | None = None,
        artifacts: bool = True,
        shared: dict[Any, Any] | None = None,
        closing: bool = True,
        chunks: list[dict[str, Any]] | None = None,
    ) -> Task:
        """The A2A view of a run. ``closing=False`` leaves out what only the final state
        tells (a completed task's reply), so nothing but the record is read.

        ``artifacts``: the artifacts streamed so far (``chunks``, the run's artifact log,
        read when not given), then -- once completed -- the final ones not streamed."""
        state = self.state_of(record)
        a2a = record.attrs.get("a2a", {})
        outputs: tuple[Artifact, ...] = ()
        message = None
        if record.status == RunStatus.COMPLETED and (closing or artifacts):
            if shared is None:
                shared, log, _ = self.engine.view(record.run_id)
                chunks = log if chunks is None else chunks
            result = self.agent.outcome(shared, record.run_id)
            if isinstance(result, Message):
                message = self._reply_message(record, result)
            else:
                outputs = tuple(result)
                reply = self.agent.reply(shared)
                message = self._agent_message(record, "reply", reply) if reply else None
        elif record.status == RunStatus.PAUSED:
            question = self.engine.prompt(record) or ""
            message = self._agent_message(record, f"ask-{record.updated_at}", question)
        elif record.status == RunStatus.FAILED:
            text = record.summary.get("reason") if state is TaskState.REJECTED else None
            message = self._agent_message(
                record, "error", text or self.agent.describe_error(record.error)
            )
        if artifacts:
            if chunks is None:
                chunks = self.engine.artifact_log(record.run_id)[0]
            outputs = merged(artifacts_of(chunks), outputs)
        entries = list(a2a.get("history", []))
        if history_length is not None:  # slice first: only the messages shown are read
            entries = entries[-history_length:] if history_length else []
        messages = tuple(Message.from_json(m) for m in history.load(self.engine.blobs, entries))
        return Task(
            id=record.run_id,
            context_id=record.context_id or record.run_id,
            status=TaskStatus(state, iso_time(record.updated_at), message or None),
            artifacts=outputs if artifacts else (),
            history=messages,
        )

    def _agent_message(self, record: RunRecord, what: str, text: str) -> Message:
        return Message(
            message_id=stable_id(record.run_id, what),
            role="agent",
            parts=(Part(text=text),),
            task_id=record.run_id,
            context_id=record.context_id,
        )

    def _reply_message(self, record: RunRecord, reply: Message) -> Message:
        """A flow's Message reply, as the agent's message on this task."""
        return replace(
            reply,
            message_id=reply.message_id or stable_id(record.run_id, "reply"),
            role="agent",
            task_id=record.run_id,
            context_id=record.context_id,
        )

    def get(self, task_id: str, caller: Caller, history_length: int | None = None) -> Task:
        """GetTask."""
        return self.task(self.record(task_id, caller), history_length=history_length)

    def list(self, caller: Caller, query: ListQuery) -> TaskPage:
        """ListTasks: the caller's tasks of this agent, most recently updated first."""
        return list_tasks(self, caller, query)

    # -- sending --------------------------------------------------------------------

    def send(
        self, message: Message, config: SendConfig, caller: Caller, task_id: str | None = None
    ) -> Task | Message:
        """SendMessage (blocking or not): start or continue a task, drive it, answer --
        with the task, or with the flow's Message when it replied with one (not to 0.1)."""
        record, outcome = self._dispatch(message, config, caller, task_id, on_step=None)
        if config.blocking and handed_off(record, outcome):
            record, outcome = self._wait(record.run_id, caller), None
        task = self._after(record, outcome, config)
        reply = task.status.message
        if (
            caller.protocol != "0.1"
            and reply is not None
            and not task.artifacts
            and task.status.state is TaskState.COMPLETED
            and self._replied(record, outcome)
        ):
            return reply
        return task

    def _replied(self, record: RunRecord, outcome: RunOutcome | None) -> bool:
        """Whether the completed run answered with a Message (not artifacts)."""
        shared = outcome.shared if outcome is not None else self.engine.state(record.run_id)[0]
        return isinstance(self.agent.outcome(shared, record.run_id), Message)

    def _wait(self, task_id: str, caller: Caller) -> RunRecord:
        """Poll a task the workers are running (a fan-out) until it stops or time runs out."""
        clock = self.engine.clock
        record = self.engine.store.get_run(task_id)
        while record.status == RunStatus.RUNNING and time_left(caller) > 2_000:
            clock.sleep(self.agent.poll_seconds)
            record = self.engine.store.get_run(task_id)
        return record

    def _dispatch(
        self,
        message: Message,
        config: SendConfig,
        caller: Caller,
        task_id: str | None,
        on_step: Any,
    ) -> tuple[RunRecord, RunOutcome | None]:
        """Start a new task or answer a paused one; drive it as far as allowed."""
        task_id = task_id or message.task_id
        if task_id is not None:
            try:
                record = self.record(task_id, caller)
            except TaskNotFound:
                if caller.protocol != "0.1":  # only 0.1 clients choose task ids
                    raise
            else:
                return self._answer(record, message, config, caller, on_step)
        try:
            return self._start(message, config, caller, task_id, on_step)
        except RunExists:  # another principal's (or agent's) id: no existence oracle
            raise TaskNotFound(f"task {task_id} not found") from None

    def _start(
        self,
        message: Message,
        config: SendConfig,
        caller: Caller,
        task_id: str | None,
        on_step: Any,
    ) -> tuple[RunRecord, RunOutcome | None]:
        run_id = task_id or str(uuid.uuid4())
        context_id = message.context_id or str(uuid.uuid4())
        message = replace(message, task_id=run_id, context_id=context_id)
        a2a: dict[str, Any] = {
            "agent": self.agent.name,
            "protocol": caller.protocol,
            "history": [history.store(self.engine.blobs, run_id, message.to_json())],
        }
        if config.push is not None:
            a2a = with_push(a2a, config.push)
        shared = self.agent.shared_for(message)
        if self.agent.context_memory and message.context_id:
            shared = {**self._remembered(message.context_id, caller), **shared}
        engine = self.engine
        outcome = _run(
            engine.start_async(
                self.agent.flow_ref,
                shared,
                run_id=run_id,
                owner=caller.principal,
                agent=self.agent.name,
                context_id=context_id,
                attrs={"a2a": a2a},
                summary={"submitted": True} if not config.blocking else {},
                context=caller.deadline,
                max_steps=None if config.blocking else 0,
                on_step=on_step,
                margin_ms=self.agent.api_margin_ms,
                hand_off=True,
            ),
        )
        return self._settled(run_id, outcome, config)

    def _remembered(self, context_id: str, caller: Caller) -> dict[Any, Any]:
        """What the caller's last completed task in this context passes on (one listing
        page of one run, and its final state)."""
        page = self.engine.store.list_runs(
            limit=1,
            owner=caller.principal,
            agent=self.agent.name,
            context_id=context_id,
            status=RunStatus.COMPLETED,
        )
        if not page.runs:
            return {}
        return self.agent.remembered(self.engine.state(page.runs[0].run_id)[0])

    def _answer(
        self, record: RunRecord, message: Message, config: SendConfig, caller: Caller, on_step: Any
    ) -> tuple[RunRecord, RunOutcome | None]:
        """A message on an existing task: the reply to its question."""
        if message.context_id and record.context_id and message.context_id != record.context_id:
            raise InvalidParams("contextId does not match the task's context")
        if record.status in TERMINAL:
            raise UnsupportedOperation(
                f"task {record.run_id} is {_STATES[record.status]}: start a new task"
            )
        if record.status != RunStatus.PAUSED:
            raise UnsupportedOperation(f"task {record.run_id} is working and not waiting for input")
        a2a = dict(record.attrs.get("a2a", {}))
        asked = self._agent_message(
            record, f"ask-{record.updated_at}", self.engine.prompt(record) or ""
        )
        message = replace(message, task_id=record.run_id, context_id=record.context_id)
        blobs = self.engine.blobs
        a2a["history"] = [
            *a2a.get("history", []),
            history.store(blobs, record.run_id, asked.to_json()),
            history.store(blobs, record.run_id, message.to_json()),
        ]
        if config.push is not None:
            a2a = with_push(a2a, config.push)
            fits(replace(record, attrs={**record.attrs, "a2a": a2a}))
        outcome = _run(
            self.engine.resume_async(  # the reply, the history and the status: one write
                record.run_id,
                reply=self.agent.reply_for(message),
                context=caller.deadline,
                max_steps=None if config.blocking else 0,
                on_step=on_step,
                margin_ms=self.agent.api_margin_ms,
                hand_off=True,
                record=record,
                attrs={**record.attrs, "a2a": a2a},
            ),
        )
        return self._settled(record.run_id, outcome, config)

    def _settled(
        self, run_id: str, outcome: RunOutcome, config: SendConfig
    ) -> tuple[RunRecord, RunOutcome]:
        """After driving: the record as the engine's last write left it (no re-read).

        A non-blocking send's run was handed to the worker by the engine itself."""
        record = outcome.record
        return (record if record is not None else self.engine.store.get_run(run_id)), outcome

    def _after(self, record: RunRecord, outcome: RunOutcome | None, config: SendConfig) -> Task:
        shared = outcome.shared if outcome and record.status == RunStatus.COMPLETED else None
        chunks = outcome.chunks if outcome is not None else None
        return self.task(record, history_length=config.history_length, shared=shared, chunks=chunks)

    # -- streams (pflambda.a2a.streams) ------------------------------------------------

    @cached_property
    def streams(self) -> TaskStreams:
        """The streaming operations."""
        return TaskStreams(self)

    def stream(
        self, message: Message, config: SendConfig, caller: Caller, task_id: str | None = None
    ) -> Iterator[Any]:
        """SendStreamingMessage (see :meth:`TaskStreams.stream`)."""
        return self.streams.stream(message, config, caller, task_id)

    def subscribe(self, task_id: str, caller: Caller) -> Iterator[Any]:
        """SubscribeToTask (see :meth:`TaskStreams.subscribe`)."""
        return self.streams.subscribe(task_id, caller)

    # -- cancel, push -------------------------------------------------------------------

    def cancel(self, task_id: str, caller: Caller) -> Task:
        """CancelTask: paused tasks at once; working ones at their next node."""
        record = self.record(task_id, caller)
        if record.status in TERMINAL:
            raise TaskNotCancelable(f"task {task_id} is {_STATES[record.status]}")
        record = self.engine.cancel(task_id)
        if record.status == RunStatus.RUNNING:
            record = self._await_cancel(task_id)
        return self.task(record)

    def _await_cancel(self, task_id: str) -> RunRecord:
        """Give a running task's driver a moment to stop at its node boundary."""
        clock = self.engine.clock
        until = clock.monotonic() + self.agent.cancel_wait_seconds
        record = self.engine.store.get_run(task_id)
        while record.status == RunStatus.RUNNING and clock.monotonic() < until:
            clock.sleep(0.05)
            record = self.engine.store.get_run(task_id)
        return record

    def push_configs(self, task_id: str, caller: Caller) -> dict[str, PushConfig]:
        """The task's push configs by id."""
        record = self.record(task_id, caller)
        stored = record.attrs.get("a2a", {}).get("push", {})
        return {cid: PushConfig(**doc) for cid, doc in stored.items()}

    def set_push(self, task_id: str, config: PushConfig, caller: Caller) -> PushConfig:
        """Create (or replace, by id) a push config."""
        self.agent.check_push_url(config.url)
        record = self.record(task_id, caller)
        config = replace(config, id=config.id or DEFAULT_ID)  # as a send's config without id
        self.engine.store.update_run(task_id, {"attrs": with_push_attrs(record, config)})
        return config

    def delete_push(self, task_id: str, config_id: str, caller: Caller) -> None:
        """Delete a push config (deleting one that is not there is fine)."""
        record = self.record(task_id, caller)
        a2a = dict(record.attrs.get("a2a", {}))
        push = {k: v for k, v in a2a.get("push", {}).items() if k != config_id}
        a2a["push"] = push
        self.engine.store.update_run(task_id, {"attrs": {**record.attrs, "a2a": a2a}})


def _run(coro: Coroutine[Any, Any, RunOutcome]) -> RunOutcome:
    """Drive an engine coroutine to completion on this thread's own event loop.

    A retryable failure (throttling) once the run is stored does not raise: the engine
    answers ``stopped="retry"`` and the run stays working, its lease the trigger that
    gets it continued. One before (the start, the reply) reaches the client unchanged:
    nothing was stored, and the same send may be retried."""
    return asyncio.run(coro)
