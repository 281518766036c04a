"""A retryable failure on the API path never leaves a client without its answer.

- a start whose own write landed but was reported as refused (a retried transaction,
  as moto answers one) goes on under the lease it wrote, not "held by another";
- a run that meets a retryable error mid-way (throttling, a transaction conflict) is
  handed to the queue after a short delay, and a blocking A2A send waits for the
  worker instead of answering a stalled "working" task.
"""

from __future__ import annotations

from typing import Any

import pytest

from pflambda import limits
from pflambda.a2a.agent import Agent
from pflambda.aws.config import Settings
from pflambda.aws.worker import Worker, parse
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine import lease
from pflambda.engine.runner import Engine
from pflambda.errors import RetryableError, RunExists
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore
from tests.unit.test_a2a_dispatcher import V1, msg_v1, rpc

ECHO = "tests.flows.chat:echo"


def make_engine(clock: FakeClock | None = None) -> Engine:
    clock = clock or FakeClock()
    return Engine(MemoryStore(), MemoryBlobStore(), MemoryQueue(clock=clock), clock=clock)


def fail_once(engine: Engine, method: str, error: Exception, *, after: bool = False) -> None:
    """The store's ``method`` raises ``error`` once: before writing, or ``after`` it."""
    real, left = getattr(engine.store, method), [1]

    def flaky(*args: Any, **kw: Any) -> Any:
        if not left:
            return real(*args, **kw)
        left.pop()
        if after:
            real(*args, **kw)
        raise error

    setattr(engine.store, method, flaky)


def drain(engine: Engine) -> int:
    """Deliver every message that is due through the worker; how many there were."""
    queue = engine.queue
    assert isinstance(queue, MemoryQueue)
    delivered = 0
    while batch := queue.receive(10):
        for message in batch:
            Worker(engine).handle(parse(message.body))
            queue.ack([message.receipt])
            delivered += 1
    return delivered


def test_a_start_whose_own_write_landed_goes_on_under_its_own_lease() -> None:
    engine = make_engine()
    fail_once(engine, "start_run", RunExists("run r already exists"), after=True)
    outcome = engine.start(ECHO, {"question": "hi"}, run_id="r")
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared["answer"] == "echo: hi"


def test_another_drivers_start_of_the_same_id_is_still_refused() -> None:
    """Only our own lease is ours: a live run another invocation drives is not taken."""
    from pflambda.stores.base import LeaseHeld

    engine = make_engine()
    engine.start(ECHO, {"question": "hi"}, run_id="r", max_steps=0)
    now = engine.clock.now()
    engine.store.acquire_lease("r", "inv:other", now + 60, now=now)
    with pytest.raises(LeaseHeld):
        engine.start(ECHO, {"question": "hi"}, run_id="r")
    assert engine.store.get_run("r").lease_owner == "inv:other"


def test_a_retryable_error_mid_run_hands_the_run_to_the_queue() -> None:
    engine = make_engine()
    fail_once(engine, "commit_step", RetryableError("TransactionConflict (injected)"))
    outcome = engine.start(ECHO, {"question": "hi"}, run_id="r", hand_off=True)
    assert outcome.stopped == "retry"
    record = engine.store.get_run("r")
    assert (record.status, record.lease_owner) == (RunStatus.RUNNING, lease.QUEUED)
    assert drain(engine) == 0  # delayed by the first backoff ...
    engine.clock.advance(limits.RETRY_DELAY_SECONDS)  # type: ignore[attr-defined]
    assert drain(engine) == 1  # ... then a worker continues it
    assert engine.store.get_run("r").status == RunStatus.COMPLETED
    assert engine.state("r")[0]["answer"] == "echo: hi"


def test_without_hand_off_the_lease_stays_with_the_caller() -> None:
    """The CLI and the worker retry themselves: nothing is queued behind their back."""
    engine = make_engine()
    fail_once(engine, "commit_step", RetryableError("ThrottlingException (injected)"))
    outcome = engine.start(ECHO, {"question": "hi"}, run_id="r")
    assert outcome.stopped == "retry"
    assert engine.store.get_run("r").lease_owner not in (None, lease.QUEUED)
    engine.clock.advance(limits.RETRY_DELAY_SECONDS)  # type: ignore[attr-defined]
    assert drain(engine) == 0


class WorkingClock(FakeClock):
    """A fake clock whose sleeps let the worker run what is due (the local poller)."""

    engine: Engine | None = None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.engine is not None:
            drain(self.engine)


def test_a_blocking_send_that_meets_a_transaction_conflict_is_answered() -> None:
    clock = WorkingClock()
    engine = clock.engine = make_engine(clock)
    agent = Agent(name="test-agent", flow=ECHO, engine=engine, settings=Settings(backend="memory"))
    fail_once(engine, "commit_step", RetryableError("TransactionConflict (injected)"))
    out = rpc(agent, "SendMessage", {"message": msg_v1("hi")}, V1)
    assert "error" not in out, out
    task = out["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    texts = [p["text"] for a in task["artifacts"] for p in a["parts"]]
    assert texts == ["echo: hi"]


def test_a_step_that_is_our_own_landed_commit_is_handed_on_at_once() -> None:
    """A write applied but reported refused (a retried write) finds its step taken while
    the lease is still ours: nobody else wrote it, so the queue goes on from it now."""
    from pflambda.errors import CheckpointConflict

    flow, shared = "tests.flows.sample:loop", {"limit": 3}
    expected = make_engine().start(flow, dict(shared), run_id="clean").shared
    engine = make_engine()
    real, calls = engine.store.put_checkpoint, [0]

    def landed_but_refused(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        real(*args, **kw)
        if calls[0] == 1:
            raise CheckpointConflict("run r already has checkpoint 1 (the retry's view)")

    engine.store.put_checkpoint = landed_but_refused  # type: ignore[method-assign]
    outcome = engine.start(flow, dict(shared), run_id="r", hand_off=True)
    assert outcome.stopped == "conflict"
    assert engine.store.get_run("r").lease_owner == lease.QUEUED
    assert drain(engine) == 1
    assert engine.store.get_run("r").status == RunStatus.COMPLETED
    assert engine.state("r")[0] == expected


def test_a_step_another_driver_took_is_left_to_it() -> None:
    from pflambda.errors import CheckpointConflict

    engine = make_engine()

    def taken(*args: Any, **kw: Any) -> Any:
        later = engine.clock.now() + 60
        engine.store.update_run("r", {"lease_owner": "inv:other", "lease_until": later})
        raise CheckpointConflict("run r already has checkpoint 1")

    engine.store.put_checkpoint = taken  # type: ignore[method-assign]
    outcome = engine.start("tests.flows.sample:loop", {"limit": 3}, run_id="r", hand_off=True)
    assert outcome.stopped == "conflict"
    assert engine.store.get_run("r").lease_owner == "inv:other"
    assert drain(engine) == 0
