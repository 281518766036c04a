"""Push notifications, off the request path: a status change queues its pushes, the worker
delivers them.

A webhook that never answers used to hold the invocation that changed the task -- an API
request -- for about 30 s per config (5 tries x 5 s). Now the process that changes a task's
status renders the task as it is at that moment and sends one work message per push config
(one ``SendMessageBatch``); nothing waits on a webhook but the worker, which POSTs each
message once per delivery:

- delivered, or refused for good (a 4xx, a URL now refused, a config deleted, a task
  gone): done, with a log line;
- a failure that may pass (timeout, refused connection, 5xx, 429): the message is sent
  again with ``DelaySeconds`` growing 2, 4, 8 ... s (at most 900; a ``Retry-After`` wins)
  and its attempt number one higher;
- after :data:`PUSH_ATTEMPTS` attempts the worker reports the message failed: SQS delivers
  it again after the queue's visibility timeout (one more try each time) and, after
  ``MAX_RECEIVES`` receives, moves it to the dead-letter queue, whose alarm fires.

Delivery is at least once and in no particular order (each payload carries the task's
status timestamp). A message carries the rendered payload (or, when it is too large for
SQS, the key of a blob holding it) and the config's id -- never its token or credentials:
the worker reads the config from the task when it delivers, so deleting a config stops
its retries. Without a queue (an engine built without one) pushes go out inline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pflambda.a2a.model import TaskState, TaskStatus, iso_time
from pflambda.a2a.push import PushSender, PushTarget
from pflambda.errors import RetryableError, RunNotFound
from pflambda.stores.base import RunRecord, RunStatus

if TYPE_CHECKING:
    from pflambda.a2a.agent import Agent
    from pflambda.engine.runner import Engine, StepEvent

__all__ = ["PUSH_ATTEMPTS", "PushDelivery", "PushUndelivered", "Pushes", "push_message"]

log = logging.getLogger("pflambda.push")

KIND = "push"
"""The ``kind`` of a push work message."""
PUSH_ATTEMPTS = 8
"""POSTs the worker makes (re-queued with growing delays) before it leaves the message to
SQS's redelivery and dead-letter queue."""
BASE_DELAY_SECONDS = 2
MAX_DELAY_SECONDS = 900
"""SQS's longest ``DelaySeconds``."""
INLINE_PAYLOAD_BYTES = 200 * 1024
"""A payload larger than this goes to the blob store; the message carries its key."""

AgentLookup = Callable[[str], "Agent | None"]


class PushUndelivered(RetryableError):
    """A push still failing after :data:`PUSH_ATTEMPTS` POSTs: SQS retries it, then DLQs it."""


def push_message(run_id: str, agent: str, config_id: str, payload: Any, attempt: int = 1) -> str:
    """A push work message (``payload`` is the rendered JSON, or ``{"ref": blob key}``)."""
    doc = {"kind": KIND, "run_id": run_id, "agent": agent, "config": config_id}
    return json.dumps({**doc, "attempt": attempt, "payload": payload}, separators=(",", ":"))


class Pushes:
    """Engine listeners that queue a push per config at each of a task's status changes.

    ``agents`` finds the :class:`~pflambda.a2a.agent.Agent` a run belongs to by name: one
    agent for its own engine, every declared agent for the shared worker.
    """

    def __init__(self, agents: AgentLookup) -> None:
        self.agents = agents

    def on_status(self, record: RunRecord) -> None:
        """Status listener: the task as it is now, to every push config it has."""
        self._push(record, None)

    def on_step(self, record: RunRecord, event: StepEvent) -> None:
        """Step listener: a task sent with ``returnImmediately`` turns from SUBMITTED to
        WORKING when a worker commits its first step -- a change the run's status does not
        show, so it is pushed here. A step's artifact chunks are pushed too, to a task of
        A2A 1.0 (whose push payload is a StreamResponse: one ``artifactUpdate`` each; a
        0.3 push carries the Task, whose artifacts show the chunks at the next status)."""
        a2a = record.attrs.get("a2a", {})
        submitted = record.summary.get("submitted") or a2a.get("submitted")
        if event.seq == 1 and submitted:  # before the status listeners hear more
            self._push(replace(record, status=RunStatus.RUNNING), TaskState.WORKING)
        if event.chunks and a2a.get("protocol") == "1.0":
            self._push_chunks(record, event)

    def _push_chunks(self, record: RunRecord, event: StepEvent) -> None:
        a2a = record.attrs.get("a2a", {})
        configs = a2a.get("push") or {}
        agent = self.agents(a2a.get("agent", "")) if configs else None
        if agent is None or not agent.push_notifications:
            return
        from pflambda.a2a.chunks import updates
        from pflambda.a2a.wire import Version, render_event

        context_id = record.context_id or record.run_id
        payloads = [
            render_event(u, Version.V1_0) for u in updates(record.run_id, context_id, event.chunks)
        ]
        engine = agent.engine
        if engine.queue is None:
            for payload in payloads:
                _send_inline(agent, record, configs, payload)
            return
        carried = [_carry(engine, record.run_id, p) for p in payloads]
        engine.queue.send(
            [push_message(record.run_id, agent.name, cid, c) for c in carried for cid in configs]
        )

    def _push(self, record: RunRecord, state: TaskState | None) -> None:
        a2a = record.attrs.get("a2a", {})
        configs = a2a.get("push") or {}
        agent = self.agents(a2a.get("agent", "")) if configs else None
        if agent is None or not agent.push_notifications:
            return
        from pflambda.a2a.wire import Version, render_event

        version = Version.V1_0 if a2a.get("protocol") == "1.0" else Version.V0_3
        task = agent.tasks.task(record)
        if state is not None:
            now = iso_time(agent.engine.clock.now())
            task = replace(task, status=TaskStatus(state, now, None))
        payload = render_event(task, version)
        engine = agent.engine
        if engine.queue is None:
            _send_inline(agent, record, configs, payload)
            return
        carried = _carry(engine, record.run_id, payload)
        bodies = [push_message(record.run_id, agent.name, cid, carried) for cid in configs]
        engine.queue.send(bodies)


def _carry(engine: Engine, run_id: str, payload: Any) -> Any:
    """The payload itself, or a reference to a blob holding it when too large for SQS."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) <= INLINE_PAYLOAD_BYTES:
        return payload
    key = f"runs/{run_id}/push-{hashlib.sha256(text).hexdigest()[:40]}"
    engine.blobs.put(key, zlib.compress(text, 6))
    return {"ref": key}


def _send_inline(agent: Agent, record: RunRecord, configs: dict[str, Any], payload: Any) -> None:
    sender = PushSender(allow_private=agent.settings.allow_private_push)
    for config_id, config in configs.items():
        result = sender.send(_target(config_id, config), payload)
        if not result.delivered:
            log.warning("push %s of task %s failed: %s", config_id, record.run_id, result.error)


def _target(config_id: str, config: dict[str, Any]) -> PushTarget:
    auth = None
    if config.get("scheme") and config.get("credentials"):
        auth = f"{config['scheme']} {config['credentials']}"
    return PushTarget(config["url"], config.get("token"), auth, config_id)


class PushDelivery:
    """The worker's side: one POST per delivery of a push message (see the module doc)."""

    def __init__(
        self,
        agents: AgentLookup,
        *,
        attempts: int = PUSH_ATTEMPTS,
        sender: Callable[[bool], PushSender] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.agents, self.attempts = agents, attempts
        self._sender = sender or (lambda private: PushSender(allow_private=private, max_attempts=1))
        self._rng = rng or random.Random()

    def __call__(self, engine: Engine, message: dict[str, Any], receive_count: int = 1) -> None:
        """Deliver ``message`` once; re-queue it, or raise :class:`PushUndelivered`."""
        run_id, config_id = message["run_id"], message["config"]
        try:
            record = engine.store.get_run(run_id)
        except RunNotFound:
            log.info("push %s: task %s is gone; dropped", config_id, run_id)
            return
        config = record.attrs.get("a2a", {}).get("push", {}).get(config_id)
        if config is None:
            log.info("push %s of task %s: the config was deleted; dropped", config_id, run_id)
            return
        payload = message["payload"]
        if isinstance(payload, dict) and set(payload) == {"ref"}:
            payload = json.loads(zlib.decompress(engine.blobs.get(payload["ref"])))
        agent = self.agents(message.get("agent", ""))
        private = agent.settings.allow_private_push if agent is not None else False
        result = self._sender(private).send(_target(config_id, config), payload)
        if result.delivered:
            return
        attempt = int(message.get("attempt", 1))
        if not result.retryable:
            log.warning("push %s of task %s refused: %s", config_id, run_id, result.error)
            return
        if attempt >= self.attempts or engine.queue is None:
            raise PushUndelivered(
                f"push {config_id} of task {run_id} failed {attempt} times: {result.error}"
            )
        delay = self._delay(attempt, result.retry_after)
        agent_name, carried = message.get("agent", ""), message["payload"]
        again = push_message(run_id, agent_name, config_id, carried, attempt + 1)
        engine.queue.send([again], delay_seconds=delay)
        log.info(
            "push %s of task %s: attempt %d failed (%s); again in %d s",
            config_id, run_id, attempt, result.error, delay,
        )  # fmt: skip

    def _delay(self, attempt: int, retry_after: float | None) -> int:
        if retry_after is not None:
            return min(MAX_DELAY_SECONDS, max(1, int(retry_after)))
        ceiling = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** min(attempt - 1, 16))
        return max(1, int(self._rng.uniform(ceiling / 2, ceiling)))
