"""Task streams: SendStreamingMessage and SubscribeToTask, one event per checkpoint.

A stream drives the task in a thread (:meth:`TaskStreams.stream`) and turns what the
engine commits into A2A events as it goes: the task first, then for each checkpoint the
artifact chunks it committed (``TaskArtifactUpdateEvent``, :mod:`pflambda.a2a.chunks`)
and a status update naming the node that finished; at the end the final artifacts not
streamed as chunks and the final status. When the run goes on elsewhere (a fan-out, a
worker) or a client subscribes, the stream follows the run's checkpoints instead.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pflambda.a2a.chunks import updates, upto
from pflambda.a2a.errors import UnsupportedOperation
from pflambda.a2a.model import (
    ArtifactUpdate,
    Message,
    Part,
    StatusUpdate,
    Task,
    TaskState,
    TaskStatus,
    iso_time,
)
from pflambda.a2a.wire import SendConfig
from pflambda.engine.lease import QUEUED
from pflambda.engine.runner import Engine, RunOutcome, StepEvent
from pflambda.stores.base import TERMINAL, RunRecord, RunStatus

if TYPE_CHECKING:
    from pflambda.a2a.agent import Agent
    from pflambda.a2a.tasks import Caller, TaskService

__all__ = ["PING", "TaskStreams", "handed_off", "stable_id", "time_left"]

PING: Any = object()
"""Yielded by streams when nothing happened for a while (a keep-alive)."""
_NAMESPACE = uuid.UUID("7a1f3c52-2b8e-4c39-9a51-6d0f8e2b4c10")


def stable_id(*parts: object) -> str:
    """The same id for the same (task, thing): re-reading a task gives identical JSON."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(map(str, parts))))


def handed_off(record: RunRecord, outcome: RunOutcome | None) -> bool:
    """The run goes on elsewhere: its items are with the workers, another invocation
    drives it, or this request gave it to the queue -- at its deadline, or after a
    retryable error (see the engine's driver): a blocking send or a stream waits for it
    rather than answer "working" or "try again"."""
    stopped = outcome.stopped if outcome is not None else None
    if record.status != RunStatus.RUNNING:
        return False
    return stopped in ("fanout", "conflict") or (
        stopped in ("retry", "deadline") and record.lease_owner == QUEUED
    )


def time_left(caller: Caller) -> int:
    """Milliseconds this invocation has left (a lot, outside Lambda)."""
    deadline = caller.deadline
    return 1 << 30 if deadline is None else deadline.get_remaining_time_in_millis()


def of_step(log: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    """The chunks checkpoint ``seq`` committed."""
    return [e for e in log if e["s"] == seq]


class TaskStreams:
    """The streaming operations of one agent's :class:`~pflambda.a2a.tasks.TaskService`."""

    def __init__(self, tasks: TaskService) -> None:
        self.tasks = tasks

    @property
    def engine(self) -> Engine:
        """The agent's engine."""
        return self.tasks.engine

    @property
    def agent(self) -> Agent:
        """The agent."""
        return self.tasks.agent

    def stream(
        self, message: Message, config: SendConfig, caller: Caller, task_id: str | None = None
    ) -> Iterator[Any]:
        """SendStreamingMessage: the task first, then one event per checkpoint (and one
        artifact update per chunk the checkpoint committed)."""
        events: queue.Queue[Any] = queue.Queue()
        done = object()

        def work() -> None:
            try:
                record, outcome = self.tasks._dispatch(
                    message, replace(config, blocking=True), caller, task_id, events.put
                )
                events.put(("end", record, outcome))
            except BaseException as exc:  # handed to the consumer, which re-raises
                events.put(("error", exc))
            finally:
                events.put(done)

        thread = threading.Thread(target=work, name="pflambda-stream", daemon=True)
        thread.start()
        answering = (task_id or message.task_id) is not None
        yield from self._drain(events, done, config, caller, answering)

    def _drain(
        self,
        events: queue.Queue[Any],
        done: object,
        config: SendConfig,
        caller: Caller,
        answering: bool = False,
    ) -> Iterator[Any]:
        """Stream events as the driver commits steps. ``answering``: the task existed
        before (a reply): its first event shows the artifacts streamed before."""
        task: Task | None = None
        while True:
            try:
                item = events.get(timeout=self.agent.ping_seconds)
            except queue.Empty:
                yield PING
                continue
            if item is done:
                return
            if isinstance(item, StepEvent):
                if task is None:  # the run may be further by now: events must not regress
                    task = self._first(item, answering)
                    yield task
                yield from updates(task.id, task.context_id, item.chunks)
                yield self._progress(task, item)
            elif item[0] == "error":
                raise item[1]
            elif handed_off(item[1], item[2]):  # workers go on: follow their checkpoints
                if task is None:
                    log = item[2].chunks
                    task = self.tasks.task(item[1], chunks=upto(log, item[2].seq), closing=False)
                    yield task
                yield from self._follow(task, item[2].seq, caller)
            else:
                final = self.tasks._after(item[1], item[2], config)
                if task is None:
                    yield final
                streamed = {e["id"] for e in (item[2].chunks if item[2] else [])}
                yield from self._closing(final, streamed)

    def _first(self, event: StepEvent, answering: bool) -> Task:
        """A stream's first event: the task as the first committed step found it."""
        record = self.engine.store.get_run(event.run_id)
        before: list[dict[str, Any]] = []
        if answering:  # the artifacts streamed before this reply (this step's come next)
            before = upto(self.engine.artifact_log(event.run_id)[0], event.seq - 1)
        first = self.tasks.task(record, artifacts=bool(before), chunks=before, closing=False)
        working = TaskStatus(TaskState.WORKING, first.status.timestamp)
        return replace(first, status=working)

    def _progress(self, task: Task, event: StepEvent) -> StatusUpdate:
        note = Message(
            message_id=stable_id(task.id, "step", event.seq),
            role="agent",
            parts=(Part(text=f"{event.node_id or 'input'} done"),),
            task_id=task.id,
            context_id=task.context_id,
        )
        status = TaskStatus(TaskState.WORKING, iso_time(self.engine.clock.now()), note)
        meta = {"node": event.node_id, "step": event.seq}
        return StatusUpdate(task.id, task.context_id, status, metadata=meta)

    def _closing(self, task: Task, streamed: set[str]) -> Iterator[Any]:
        """The final artifacts (those not streamed as chunks), then the final status."""
        for artifact in task.artifacts:
            if artifact.artifact_id not in streamed:
                yield ArtifactUpdate(task.id, task.context_id, artifact)
        yield StatusUpdate(task.id, task.context_id, task.status)

    def subscribe(self, task_id: str, caller: Caller) -> Iterator[Any]:
        """SubscribeToTask: the current task, then its progress, until it stops."""
        record = self.tasks.record(task_id, caller)
        if record.status in TERMINAL:
            raise UnsupportedOperation(f"task {task_id} is {self.tasks.state_of(record)}")
        log, seq = self.engine.artifact_log(task_id)  # one read: the chunks up to seq
        task = self.tasks.task(record, chunks=log, closing=False)
        yield task
        if record.status == RunStatus.PAUSED and not (yield from self._await_reply(record, caller)):
            return
        yield from self._follow(task, seq, caller)

    def _await_reply(self, paused: RunRecord, caller: Caller) -> Generator[Any, None, bool]:
        """Wait (pinging) until a paused task is answered; False if time runs out first."""
        clock, idle = self.engine.clock, 0.0
        while time_left(caller) >= 2_000:
            record = self.engine.store.get_run(paused.run_id)
            if record.status != RunStatus.PAUSED or record.updated_at != paused.updated_at:
                return True
            clock.sleep(self.agent.poll_seconds)
            idle += self.agent.poll_seconds
            if idle >= self.agent.ping_seconds:
                idle = 0.0
                yield PING
        return False

    def _follow(self, task: Task, seq: int, caller: Caller) -> Iterator[Any]:
        """Events of the checkpoints after ``seq`` as others commit them, until the task
        stops: each checkpoint's chunks, then its progress."""
        clock, idle = self.engine.clock, 0.0
        while True:
            ckpts = list(self.engine.store.list_checkpoints(task.id, after=seq))
            log = self.engine.artifact_log(task.id)[0] if ckpts else []
            for ckpt in ckpts:
                step = StepEvent(task.id, ckpt.seq, ckpt.node_id, ckpt.action, 0, False, 0.0, False)
                yield from updates(task.id, task.context_id, of_step(log, ckpt.seq))
                yield self._progress(task, step)
                seq = ckpt.seq
                idle = 0.0
            record = self.engine.store.get_run(task.id)
            if record.status != RunStatus.RUNNING:
                shared, log, _ = self.engine.view(task.id)
                yield from updates(task.id, task.context_id, [e for e in log if e["s"] > seq])
                final = self.tasks.task(record, shared=shared, chunks=log)
                yield from self._closing(final, {e["id"] for e in log})
                return
            if time_left(caller) < 2_000:
                return
            clock.sleep(self.agent.poll_seconds)
            idle += self.agent.poll_seconds
            if idle >= self.agent.ping_seconds:
                idle = 0.0
                yield PING
