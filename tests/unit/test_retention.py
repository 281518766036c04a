"""Retention on a fake clock: a run and everything it owns live exactly as long as its record.

The embedded stores emulate DynamoDB's TTL and the reaper with ``retention.prune`` (what
``pflambda runs prune`` and the local sweep call), run here after every simulated day.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pflambda import Flow, Node
from pflambda.blobs.base import BlobNotFound, BlobStore
from pflambda.blobs.disk import DiskBlobStore
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine import compat, retention
from pflambda.engine.runner import Engine
from pflambda.errors import RunNotFound
from pflambda.graph import describe
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore
from pflambda.stores.sqlite import SQLiteStore

DAY = 86_400
BIG = b"\x01\x02" * 100_000
"""200 KB: goes to the blob store (over INLINE_VALUE_LIMIT), under runs/<id>/."""

CLOCK = FakeClock()
"""The clock the ``daily`` flow's node moves: each of its steps takes a day."""


class Day(Node):
    def exec(self, prep_res: Any) -> None:
        CLOCK.advance(DAY)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["days"] = shared.get("days", 0) + 1
        return "again" if shared["days"] < shared["limit"] else "done"


class Done(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["finished"] = True


def daily() -> Flow:
    """A step a day until shared['limit'] days, then Done."""
    day = Day()
    day - "again" >> day
    day - "done" >> Done()
    return Flow(start=day)


class Forever:
    """A Lambda context that never runs short (no lease renewals get in the count)."""

    def get_remaining_time_in_millis(self) -> int:
        return 10**12


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    CLOCK.__init__()  # type: ignore[misc]
    if request.param == "memory":
        yield Engine(MemoryStore(), MemoryBlobStore(), clock=CLOCK)
        return
    store = SQLiteStore(tmp_path / "pflambda.db")
    yield Engine(store, DiskBlobStore(tmp_path / "blobs"), clock=CLOCK)
    store.close()


def prune(engine: Engine) -> int:
    store: Any = engine.store
    return retention.prune(store, engine.blobs, engine.clock.now())


def run_blobs(blobs: BlobStore, run_id: str) -> list[str]:
    """The keys under ``runs/<id>/`` (memory and disk stores can say)."""
    if isinstance(blobs, MemoryBlobStore):
        return sorted(k for k in blobs._blobs if k.startswith(f"runs/{run_id}/"))
    assert isinstance(blobs, DiskBlobStore)
    if not (blobs.root / "runs" / run_id).exists():
        return []
    return sorted(key for key, _ in blobs.modified(f"runs/{run_id}/"))


def assert_gone(engine: Engine, run_id: str) -> None:
    with pytest.raises(RunNotFound):
        engine.store.get_run(run_id)
    assert engine.store.load_checkpoints(run_id) == []
    assert run_blobs(engine.blobs, run_id) == []


def test_a_run_paused_45_days_resumes_with_its_large_values(engine: Engine) -> None:
    outcome = engine.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG})
    assert outcome.status == RunStatus.PAUSED
    run_id = outcome.run_id
    assert run_blobs(engine.blobs, run_id)  # the 200 KB value lives in the blob store
    record = engine.store.get_run(run_id)
    assert record.expires_at == int(CLOCK.now()) + 90 * DAY  # the paused retention
    for _ in range(45):
        CLOCK.advance(DAY)
        assert prune(engine) == 0
    done = engine.resume(run_id, reply="yes")
    assert done.status == RunStatus.COMPLETED
    assert done.shared["doc"] == BIG
    assert done.shared["decision"] == "go"
    record = engine.store.get_run(run_id)
    assert record.expires_at == int(CLOCK.now()) + 30 * DAY  # completed: the retention


def test_a_paused_run_past_its_retention_is_reaped_whole(engine: Engine) -> None:
    run_id = engine.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}).run_id
    CLOCK.advance(90 * DAY - 1)
    assert prune(engine) == 0
    CLOCK.advance(1)
    assert prune(engine) == 1
    assert_gone(engine, run_id)


def test_a_run_stepping_for_40_days_keeps_its_record_with_one_write_per_step(
    engine: Engine,
) -> None:
    writes: list[str] = []
    store = engine.store
    for name in ("put_checkpoint", "commit_step", "update_run", "acquire_lease"):
        real = getattr(store, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            writes.append(_name)
            return _real(*args, **kw)

        setattr(store, name, counted)
    expiries: list[int] = []
    start = CLOCK.now()
    outcome = engine.start(
        "tests.unit.test_retention:daily",
        {"limit": 40, "doc": BIG},
        context=Forever(),
        on_step=lambda _: expiries.append(store.get_run(outcome_id[0]).expires_at or 0),
        run_id=(outcome_id := ["r40"])[0],
    )
    assert outcome.status == RunStatus.COMPLETED
    assert CLOCK.now() - start == 40 * DAY
    # one write per step: 40 steps of Day and Done's, the last completing the run
    assert len(writes) == 41
    refreshes = [i for i, name in enumerate(writes) if name == "commit_step"]
    # the expiry is pushed out, in that step's one write, once less than 15 days are left:
    # on days 16 and 32; the last step completes the run (a status change)
    assert refreshes == [15, 31, 40]
    assert all(e > start + (i + 1) * DAY for i, e in enumerate(expiries))
    assert min(e - (start + (i + 1) * DAY) for i, e in enumerate(expiries)) >= 15 * DAY
    assert engine.state("r40")[0]["doc"] == BIG


def test_a_run_stepping_for_40_days_survives_every_daily_prune(engine: Engine) -> None:
    outcome = engine.start(
        "tests.unit.test_retention:daily", {"limit": 40, "doc": BIG}, max_steps=0
    )
    run_id = outcome.run_id
    while outcome.status == RunStatus.RUNNING:
        outcome = engine.resume(run_id, max_steps=1)
        assert prune(engine) == 0
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared["doc"] == BIG
    assert outcome.shared["days"] == 40


def test_a_finished_run_goes_whole_after_its_retention(engine: Engine) -> None:
    """Unreferenced blobs are still cleaned up: a completed run's go with it."""
    done = engine.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG})
    done = engine.resume(done.run_id, reply="yes")
    keep = engine.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG[:-2]})
    assert run_blobs(engine.blobs, done.run_id)
    CLOCK.advance(30 * DAY)
    assert prune(engine) == 1
    assert_gone(engine, done.run_id)
    assert engine.state(keep.run_id)[0]["doc"] == BIG[:-2]  # paused: 90 days
    assert run_blobs(engine.blobs, keep.run_id)


def test_a_failed_run_keeps_the_retention_for_a_retry() -> None:
    clock = FakeClock()
    engine = Engine(MemoryStore(), MemoryBlobStore(), clock=clock)
    failed = engine.start("tests.flows.sample:failing", {})
    assert failed.status == RunStatus.FAILED
    record = engine.store.get_run(failed.run_id)
    assert record.expires_at == int(clock.now()) + 30 * DAY


def test_retention_is_configurable() -> None:
    clock = FakeClock()
    engine = Engine(MemoryStore(), MemoryBlobStore(), clock=clock, ttl_days=2, paused_ttl_days=5)
    paused = engine.start("tests.flows.sample:approval", {"limit": 1})
    assert engine.store.get_run(paused.run_id).expires_at == int(clock.now()) + 5 * DAY
    done = engine.resume(paused.run_id, reply="yes")
    assert engine.store.get_run(done.run_id).expires_at == int(clock.now()) + 2 * DAY


def test_checkpoints_and_fan_out_items_carry_no_expiry_of_their_own() -> None:
    from pflambda.queues.memory import MemoryQueue

    clock = FakeClock()
    engine = Engine(MemoryStore(), MemoryBlobStore(), MemoryQueue(clock), clock=clock)
    outcome = engine.start("tests.flows.batch:squares", {"items": list(range(4))})
    assert outcome.stopped == "fanout"
    ckpts = [engine.store.load_checkpoints(outcome.run_id, seq) for seq in (0, 1)]
    assert [c.seq for c in ckpts[0] + ckpts[1]] == [0, 0, 1]
    assert all(c.expires_at is None for c in ckpts[0] + ckpts[1])
    header = engine.store.get_fanout(outcome.run_id, 1)
    assert header.expires_at is None


def test_a_reap_leaves_a_new_run_with_the_same_id_alone(engine: Engine) -> None:
    first = engine.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}, run_id="same")
    first = engine.resume(first.run_id, reply="yes")
    CLOCK.advance(31 * DAY)
    assert prune(engine) == 1
    engine.start("tests.flows.sample:approval", {"limit": 1, "doc": BIG}, run_id="same")
    # a reaper that comes late (a redelivered stream record) for the old one
    assert retention.reap(engine.store, engine.blobs, "same", CLOCK.now()) is None
    assert engine.state("same")[0]["doc"] == BIG


def test_shapes_are_written_again_while_a_process_keeps_running_them() -> None:
    blobs = MemoryBlobStore()
    puts: list[str] = []
    real = blobs.put
    blobs.put = lambda key, data: (puts.append(key), real(key, data))[1]  # type: ignore[method-assign]
    graph = describe(daily())
    now = 1_700_000_000.0
    compat.remember(blobs, graph, now)
    compat.remember(blobs, graph, now + 6 * DAY)
    assert len(puts) == 1
    compat.remember(blobs, graph, now + 7 * DAY)
    assert len(puts) == 2
    assert puts[0] == f"shapes/{graph.fingerprint()}"


def test_a_fork_writes_its_source_shape_again() -> None:
    clock = FakeClock()
    engine = Engine(MemoryStore(), MemoryBlobStore(), clock=clock)
    source = engine.start("tests.flows.sample:approval", {"limit": 1})
    key = f"shapes/{engine.store.get_run(source.run_id).fingerprint}"
    engine.blobs.put(key, b'{"":"x"}')
    puts: list[str] = []
    real = engine.blobs.put
    engine.blobs.put = lambda k, d: (puts.append(k), real(k, d))[1]  # type: ignore[method-assign]
    engine.fork(source.run_id, 0)
    assert key in puts
    with pytest.raises(BlobNotFound):
        engine.blobs.get("shapes/none")
