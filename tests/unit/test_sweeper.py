"""The sweep: only runs whose lease lapsed, each taken once; the local sweep thread."""

from __future__ import annotations

import json

from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine.runner import Engine
from pflambda.engine.sweeper import sweep
from pflambda.local.sweeper import SweepThread
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore

FLOW = "tests.flows.sample:loop"


def make(queue: bool = True) -> tuple[Engine, FakeClock]:
    clock = FakeClock()
    q = MemoryQueue(clock) if queue else None
    return Engine(MemoryStore(), MemoryBlobStore(), q, clock=clock), clock


def test_only_lapsed_leases_are_swept_and_each_once() -> None:
    engine, clock = make()
    engine.start(FLOW, {"limit": 5}, run_id="lapsed", max_steps=1)  # its lease lapses now
    engine.start(FLOW, {"limit": 5}, run_id="done")
    engine.start("tests.flows.sample:approval", {"limit": 1}, run_id="paused")
    clock.advance(1)
    first = sweep(engine)
    assert (first.found, first.continued) == (1, ["lapsed"])
    assert sweep(engine).continued == []  # the queued lease is the queue's now
    assert engine.queue is not None
    (message,) = engine.queue.receive(10)
    assert json.loads(message.body)["run_id"] == "lapsed"


def test_without_a_queue_the_sweep_drives_the_run() -> None:
    engine, clock = make(queue=False)
    engine.start(FLOW, {"limit": 5}, run_id="r", max_steps=1)
    clock.advance(1)
    assert sweep(engine).continued == ["r"]
    assert engine.store.get_run("r").status == RunStatus.COMPLETED


def test_the_local_sweep_thread_sweeps_and_stops() -> None:
    engine, clock = make()
    engine.start(FLOW, {"limit": 5}, run_id="r", max_steps=1)
    clock.advance(1)
    thread = SweepThread(lambda: engine, every=3600)
    thread.start()
    assert thread.sweep_once().continued == ["r"]
    thread.stop()
    assert thread.sweeps == 1
