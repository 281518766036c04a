"""The durable engine against the in-memory ports: same results as an in-process run,
one checkpoint per node, and every interruption ends where a clean run ends."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine import checkpoints
from pflambda.engine.flowref import load_flow
from pflambda.engine.runner import Engine, RunOutcome
from pflambda.errors import (
    CheckpointConflict,
    ConfigError,
    FingerprintMismatch,
    InvalidRunState,
    RunNotFound,
    SerializationError,
)
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import LeaseHeld, RunStatus
from pflambda.stores.memory import MemoryStore

FLOWS = {
    "tests.flows.sample:loop": {"limit": 7},
    "tests.flows.sample:nested": {"items": [1, 2, 3], "files": ["a.txt", "b.txt", "c.txt"]},
    "tests.flows.sample:asynchronous": {"limit": 4},
}


def in_process(ref: str, shared: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The reference: PocketFlow semantics, run in one go."""
    flow = load_flow(ref)
    state = copy.deepcopy(shared)
    is_async = hasattr(flow, "run_async")
    result = asyncio.run(flow.run_async(state)) if is_async else flow.run(state)
    return state, result


@pytest.fixture
def engine() -> Engine:
    return Engine(
        MemoryStore(), MemoryBlobStore(), MemoryQueue(clock=FakeClock()), clock=FakeClock()
    )


def run_to_end(engine: Engine, outcome: RunOutcome) -> RunOutcome:
    while outcome.status == RunStatus.RUNNING:
        outcome = engine.resume(outcome.run_id, max_steps=1)
    return outcome


@pytest.mark.parametrize("ref", FLOWS)
def test_durable_run_matches_in_process_run(engine: Engine, ref: str) -> None:
    expected_shared, expected_result = in_process(ref, FLOWS[ref])
    outcome = engine.start(ref, copy.deepcopy(FLOWS[ref]))
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared == expected_shared
    assert outcome.result == expected_result
    assert engine.state(outcome.run_id)[0] == expected_shared


def test_one_checkpoint_per_leaf_node(engine: Engine) -> None:
    outcome = engine.start("tests.flows.sample:loop", {"limit": 4})
    timeline = list(engine.store.list_checkpoints(outcome.run_id))
    # seq 0 is the initial state; then Count, Other, Count, Other, Finish
    assert [c.seq for c in timeline] == [0, 1, 2, 3, 4, 5]
    assert [c.node_id for c in timeline] == [None, "Count", "Other", "Count", "Other", "Finish"]
    assert [c.action for c in timeline] == [None, "again", "again", "again", "done", "end"]


def test_nested_flow_steps_are_path_ids(engine: Engine) -> None:
    outcome = engine.start("tests.flows.sample:nested", {"items": [1], "files": ["x", "y"]})
    nodes = [c.node_id for c in engine.store.list_checkpoints(outcome.run_id)][1:]
    assert nodes == [
        "Double",
        "PerFile/Read",
        "PerFile/Tag",
        "PerFile/Read",
        "PerFile/Tag",
        "Finish",
    ]


@pytest.mark.parametrize("ref", FLOWS)
def test_stopping_after_every_step_and_resuming_gives_the_same_end(
    engine: Engine, ref: str
) -> None:
    expected_shared, expected_result = in_process(ref, FLOWS[ref])
    outcome = engine.start(ref, copy.deepcopy(FLOWS[ref]), max_steps=0)
    assert outcome.stopped == "max_steps"
    outcome = run_to_end(engine, outcome)
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared == expected_shared
    assert outcome.result == expected_result


class CrashingStore(MemoryStore):
    """Dies (like a killed process) right before the Nth checkpoint write."""

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.crash_at, self.writes = crash_at, 0

    def _tick(self) -> None:
        self.writes += 1
        if self.writes == self.crash_at:
            raise SystemExit("simulated crash")

    def start_run(self, record: Any, checkpoint: Any) -> None:
        self._tick()
        super().start_run(record, checkpoint)

    def put_checkpoint(self, checkpoint: Any) -> None:
        self._tick()
        super().put_checkpoint(checkpoint)

    def commit_step(self, checkpoint: Any, changes: Any, **kw: Any) -> None:
        self._tick()
        super().commit_step(checkpoint, changes, **kw)


@pytest.mark.parametrize("ref", FLOWS)
def test_a_crash_before_any_checkpoint_write_loses_nothing(ref: str) -> None:
    expected_shared, _ = in_process(ref, FLOWS[ref])
    total = len(list(_clean_timeline(ref)))
    for crash_at in range(2, total + 1):
        store, clock = CrashingStore(crash_at), FakeClock()
        engine = Engine(store, MemoryBlobStore(), clock=clock)
        with pytest.raises(SystemExit):
            engine.start(ref, copy.deepcopy(FLOWS[ref]), run_id="r")
        store.crash_at = -1
        with pytest.raises(LeaseHeld):  # the dead driver's lease still stands ...
            engine.resume("r")
        clock.advance(engine.lease_seconds)  # ... until it lapses
        assert [r.run_id for r in store.list_stalled(clock.now())] == ["r"]
        outcome = engine.resume("r")
        assert outcome.status == RunStatus.COMPLETED, crash_at
        assert outcome.shared == expected_shared, crash_at
        assert len(list(store.list_checkpoints("r"))) == total


def _clean_timeline(ref: str) -> list[Any]:
    engine = Engine(MemoryStore(), MemoryBlobStore(), clock=FakeClock())
    outcome = engine.start(ref, copy.deepcopy(FLOWS[ref]))
    return list(engine.store.list_checkpoints(outcome.run_id))


def test_two_resumers_cannot_both_advance_a_run() -> None:
    store, blobs = MemoryStore(), MemoryBlobStore()
    first = Engine(store, blobs, clock=FakeClock())
    second = Engine(store, blobs, clock=FakeClock())
    first.start("tests.flows.sample:loop", {"limit": 6}, run_id="r", max_steps=2)
    # Both load step 2; the first commits step 3, the second's step 3 conflicts.
    live_a = checkpoints.load(first, store.get_run("r"), allow_changed_flow=False)
    live_b = checkpoints.load(second, store.get_run("r"), allow_changed_flow=False)
    step_a = asyncio.run(live_a.stepper.step(live_a.cursor, live_a.shared))
    step_b = asyncio.run(live_b.stepper.step(live_b.cursor, live_b.shared))
    checkpoints.commit(first, live_a, step_a.node_id, step_a.action)
    with pytest.raises(CheckpointConflict):
        checkpoints.commit(second, live_b, step_b.node_id, step_b.action)
    outcome = second.resume("r")
    assert outcome.status == RunStatus.COMPLETED
    expected, _ = in_process("tests.flows.sample:loop", {"limit": 6})
    assert outcome.shared == expected


def test_a_losing_resumer_stops_cleanly(engine: Engine) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 6}, run_id="r", max_steps=1)
    original = engine.store.put_checkpoint

    def racing_put(checkpoint: Any) -> None:
        original(checkpoint)  # another invocation wins this step ...
        original(checkpoint)  # ... so ours conflicts

    engine.store.put_checkpoint = racing_put  # type: ignore[method-assign]
    outcome = engine.resume("r")
    assert outcome.stopped == "conflict"
    assert outcome.status == RunStatus.RUNNING


def test_pause_for_input_and_resume_with_reply(engine: Engine) -> None:
    outcome = engine.start("tests.flows.sample:approval", {"limit": 1}, run_id="r")
    assert outcome.status == RunStatus.PAUSED
    assert outcome.prompt == "approve the plan?"
    record = engine.store.get_run("r")
    assert (record.status, record.input_key) == (RunStatus.PAUSED, "approval")
    with pytest.raises(InvalidRunState, match="waiting for input"):
        engine.resume("r")
    done = engine.resume("r", reply="yes")
    assert done.status == RunStatus.COMPLETED
    assert done.shared["approval"] == "yes"
    assert done.shared["decision"] == "go"
    assert done.shared["finished"] is True
    with pytest.raises(InvalidRunState, match="completed"):
        engine.resume("r")


def test_reply_to_a_run_that_asked_nothing_is_refused(engine: Engine) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 3}, run_id="r", max_steps=1)
    with pytest.raises(InvalidRunState, match="not waiting for input"):
        engine.resume("r", reply="yes")


def test_cancel_of_a_run_nobody_drives_is_immediate(engine: Engine) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 10}, run_id="r", max_steps=2)
    assert engine.cancel("r").status == RunStatus.CANCELLED
    with pytest.raises(InvalidRunState, match="cancelled"):
        engine.resume("r")
    with pytest.raises(InvalidRunState, match="cancelled"):
        engine.cancel("r")


def test_cancel_reaches_a_driver_between_nodes_without_a_read_per_step(engine: Engine) -> None:
    reads = []
    original = engine.store.get_run
    engine.store.get_run = lambda run_id: reads.append(run_id) or original(run_id)  # type: ignore[method-assign]

    def on_step(event: Any) -> None:
        if event.seq == 2:
            engine.cancel("r")  # another request, while this invocation drives the run

    outcome = engine.start("tests.flows.sample:loop", {"limit": 10}, run_id="r", on_step=on_step)
    assert outcome.status == RunStatus.CANCELLED
    assert outcome.seq == 2  # the step after the cancel was never committed
    assert len(reads) == 2  # the cancel's own read, and the driver's one read on conflict
    assert [c.seq for c in engine.store.list_checkpoints("r")] == [0, 1, 2]


def test_cancel_a_paused_run_is_immediate(engine: Engine) -> None:
    engine.start("tests.flows.sample:approval", {}, run_id="r")
    assert engine.cancel("r").status == RunStatus.CANCELLED


def test_a_failing_node_fails_the_run_and_can_be_retried(engine: Engine) -> None:
    outcome = engine.start("tests.flows.sample:failing", {"limit": 1}, run_id="r")
    assert outcome.status == RunStatus.FAILED
    assert outcome.error == "node 'Boom' raised ValueError: kaboom"
    again = engine.resume("r")  # a retry from the last checkpoint: fails the same way
    assert again.status == RunStatus.FAILED
    assert len(list(engine.store.list_checkpoints("r"))) == 2


def test_unserialisable_shared_names_key_node_and_type(engine: Engine) -> None:
    outcome = engine.start("tests.flows.sample:bad_value", {"limit": 1}, run_id="r")
    assert outcome.status == RunStatus.FAILED
    assert (outcome.error or "").startswith(
        "node 'PutBad': cannot serialise shared['bad']['f'] of type builtin_function_or_method"
    )
    assert [c.node_id for c in engine.store.list_checkpoints("r")] == [None, "Count"]


def test_unserialisable_initial_state_stores_nothing(engine: Engine) -> None:
    with pytest.raises(SerializationError, match=r"shared\['bad'\]"):
        engine.start("tests.flows.sample:loop", {"bad": object()}, run_id="r")
    with pytest.raises(RunNotFound):
        engine.store.get_run("r")


def test_fork_starts_a_new_run_from_any_checkpoint(engine: Engine) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 5}, run_id="r")
    forked = engine.fork("r", 2, new_run_id="f")
    assert forked.attrs == {"forked_from": "r", "forked_at": 2}
    assert engine.state("f")[0] == engine.state("r", 2)[0]
    outcome = engine.resume("f")
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared == engine.state("r")[0]
    with pytest.raises(InvalidRunState, match="no checkpoint 99"):
        engine.fork("r", 99)


def test_a_fork_carries_its_lineage_in_the_summary_through_pauses_and_failures(
    engine: Engine,
) -> None:
    engine.start("tests.flows.speaking:gate", {"question": "hello"}, run_id="r")
    engine.fork("r", 0, new_run_id="paused")
    assert engine.resume("paused").status == RunStatus.PAUSED  # AuthRequired again
    engine.fork("r", 0, new_run_id="failed", update={"question": "forbidden"})
    assert engine.resume("failed").status == RunStatus.FAILED  # Rejected
    listed = {r.run_id: r.summary for r in engine.store.list_runs().runs}
    lineage = {"forked_from": "r", "forked_at": 0}
    assert listed["paused"] == lineage | {"state": "auth-required"}
    assert listed["failed"] == lineage | {"state": "rejected", "reason": "I do not answer that."}
    assert listed["r"] == {"state": "auth-required"}


def test_a_flow_changed_away_from_the_cursor_goes_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 4}, run_id="r", max_steps=1)
    import tests.flows.sample as sample

    original = sample.loop

    def changed() -> Any:
        flow = original()
        flow.start_node.successors["extra"] = sample.Finish(name="extra")
        return flow

    monkeypatch.setattr(sample, "loop", changed)
    assert engine.resume("r").status == RunStatus.COMPLETED


def test_a_changed_class_at_the_cursor_is_refused_unless_allowed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 4}, run_id="r", max_steps=1)
    import tests.flows.sample as sample

    def changed() -> Any:  # the run waits at Other; Other is now a Count
        a, b, fin = sample.Count(), sample.Count(name="Other"), sample.Finish()
        a - "again" >> b
        b - "again" >> a
        a - "done" >> fin
        b - "done" >> fin
        return sample.Flow(start=a)

    monkeypatch.setattr(sample, "loop", changed)
    with pytest.raises(FingerprintMismatch, match=r"Other was a tests\.flows\.sample\.Other"):
        engine.resume("r")
    assert engine.resume("r", allow_changed_flow=True).status == RunStatus.COMPLETED


def test_deadline_enqueues_a_continuation(engine: Engine) -> None:
    class Context:
        def __init__(self) -> None:
            self.left = 60_000

        def get_remaining_time_in_millis(self) -> int:
            self.left -= 10_000
            return self.left

    outcome = engine.start("tests.flows.sample:loop", {"limit": 20}, context=Context())
    assert outcome.stopped == "deadline"
    assert outcome.status == RunStatus.RUNNING
    assert engine.queue is not None
    messages = engine.queue.receive()
    assert [json.loads(m.body) for m in messages] == [
        {"kind": "continue", "run_id": outcome.run_id, "seq": outcome.seq}
    ]


def test_large_values_go_to_the_blob_store(engine: Engine) -> None:
    big = b"x" * 5_000_000
    outcome = engine.start("tests.flows.sample:loop", {"limit": 3, "blob": big})
    assert outcome.status == RunStatus.COMPLETED
    assert engine.state(outcome.run_id)[0]["blob"] == big
    assert all(c.size < 100_000 for c in engine.store.list_checkpoints(outcome.run_id))


def test_state_past_a_megabyte_runs_and_resumes(engine: Engine) -> None:
    outcome = engine.start("tests.flows.sample:big_state", {"limit": 8}, max_steps=3)
    outcome = run_to_end(engine, outcome)
    assert outcome.status == RunStatus.COMPLETED
    shared = engine.state(outcome.run_id)[0]
    assert sum(len(v) for k, v in shared.items() if isinstance(k, int)) == 1_600_000


def test_unknown_run_and_bad_flow_refs(engine: Engine) -> None:
    with pytest.raises(RunNotFound):
        engine.resume("nope")
    with pytest.raises(ConfigError, match="module:factory"):
        engine.start("no-colon")
    with pytest.raises(ConfigError, match="cannot import"):
        engine.start("tests.flows.nonexistent:flow")
    with pytest.raises(TypeError, match="shared must be a dict"):
        engine.start("tests.flows.sample:loop", [1, 2])  # type: ignore[arg-type]


def test_checkpoints_record_the_node_time_and_retries() -> None:
    clock = FakeClock()
    engine = Engine(MemoryStore(), MemoryBlobStore(), clock=clock)
    outcome = engine.start("tests.flows.flaky:flaky")
    infos = list(engine.store.list_checkpoints(outcome.run_id))
    assert [(i.node_id, i.retries) for i in infos] == [(None, 0), ("Flaky", 2)]
    assert [i.position for i in infos] == ["Flaky", None]
    assert infos[0].duration_ms is None  # the initial state ran nothing
    assert infos[1].duration_ms is not None
    assert infos[1].duration_ms >= 0


def test_fork_with_edited_state(engine: Engine) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 5, "note": "x"}, run_id="r")
    forked = engine.fork("r", 2, new_run_id="f", update={"limit": 3, 7: (1, 2)}, remove=["note"])
    assert forked.attrs["edited"] == ["'limit'", "'note'", "7"]
    shared = engine.state("f")[0]
    expected = engine.state("r", 2)[0]
    del expected["note"]
    assert shared == {**expected, "limit": 3, 7: (1, 2)}
    assert engine.resume("f").shared["n"] == 3  # the edited limit holds
    with pytest.raises(InvalidRunState, match="no key 'nope'"):
        engine.fork("r", 2, remove=["nope"])
    with pytest.raises(SerializationError):
        engine.fork("r", 2, new_run_id="g", update={"bad": object()})
    with pytest.raises(RunNotFound):
        engine.store.get_run("g")  # nothing was written


def test_a_cancel_that_arrives_while_a_node_pauses_cancels_the_run(engine: Engine) -> None:
    original = engine.store.update_run

    def cancel_first(run_id: str, changes: Any, **kw: Any) -> Any:
        if changes.get("status") == RunStatus.PAUSED:  # the cancel lands just before
            engine.cancel(run_id)
        return original(run_id, changes, **kw)

    engine.store.update_run = cancel_first  # type: ignore[method-assign]
    outcome = engine.start("tests.flows.sample:approval", {"limit": 1}, run_id="r")
    engine.store.update_run = original  # type: ignore[method-assign]
    assert outcome.status == RunStatus.CANCELLED
