"""Artifact chunks: emitted by nodes, committed with their step, continued after a crash."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from pflambda import NoRunContext, Part, current_run
from pflambda.engine import artifacts
from pflambda.engine.artifacts import ArtifactLog, accumulate
from pflambda.engine.runner import Engine, StepEvent
from pflambda.engine.state import SIDE, SharedTracker, read_body
from pflambda.stores.base import RunStatus
from tests.flows.chunky import CRASH_AT
from tests.unit.test_fanout import drain, make_engine


def texts(engine: Engine, run_id: str) -> list[tuple[int, str, bool, bool]]:
    log, _ = engine.artifact_log(run_id)
    return [(e["s"], e["parts"][0].get("text"), e["append"], e["last"]) for e in log]


def counting(engine: Engine) -> list[str]:
    """Every store write, by method name."""
    calls: list[str] = []
    store = engine.store
    for name in ("put_checkpoint", "commit_step", "update_run", "start_run"):
        original = getattr(store, name)

        def wrapped(*a: Any, _o: Any = original, _n: str = name, **k: Any) -> Any:
            calls.append(_n)
            return _o(*a, **k)

        setattr(store, name, wrapped)
    return calls


# -- the log --------------------------------------------------------------------------


def test_accumulate_appends_replaces_and_completes() -> None:
    entries = [
        {"s": 1, "id": "a", "parts": [{"text": "x"}], "append": False, "last": False, "name": "A"},
        {"s": 2, "id": "b", "parts": [{"text": "b"}], "append": False, "last": True},
        {"s": 2, "id": "a", "parts": [{"text": "y"}], "append": True, "last": False},
        {"s": 3, "id": "a", "parts": [{"text": "z"}], "append": True, "last": True},
    ]
    found = accumulate(entries)
    assert list(found) == ["a", "b"]
    assert [p["text"] for p in found["a"].parts] == ["x", "y", "z"]
    assert found["a"].name == "A"
    assert found["a"].complete
    assert found["a"].chunks == 3
    replaced = accumulate([*entries[:1], {**entries[2], "append": False}])
    assert [p["text"] for p in replaced["a"].parts] == ["y"]
    assert not replaced["a"].complete
    assert artifacts.entries_after(entries, 2) == entries[3:]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("a", {"k": 1}), {}, TypeError, r"Part\(data="),
        (("a", b"raw"), {}, TypeError, "file_bytes"),
        (("a", 3), {}, TypeError, "parts are str or pflambda.Part"),
        (("a", []), {}, ValueError, "at least one part"),
        (("", "x"), {}, TypeError, "artifact_id"),
        (("a" * 300, "x"), {}, ValueError, "at most 256"),
        (("a", "x"), {"append": 1}, TypeError, "append must be True or False"),
        (("a", "x"), {"append": True}, ValueError, "cannot append to artifact 'a'"),
        (("a", "x"), {"name": 5}, TypeError, "name must be a str"),
        (("a", "x"), {"metadata": {1: 2}}, TypeError, "str keys"),
        (("a", Part(data=float("nan"))), {}, ValueError, "not JSON"),
        (("a", Part()), {}, ValueError, "exactly one of"),
        (("a", "\ud800"), {}, ValueError, "lone surrogate"),
        (("a", "x" * (artifacts.CHUNK_BYTES + 1)), {}, ValueError, "split it into chunks"),
    ],
)
def test_a_bad_chunk_is_refused_where_it_is_emitted(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    log = ArtifactLog()
    with pytest.raises(error, match=match):
        log.emit(1, *args, **kwargs)
    assert log.pending == []


def test_no_chunk_after_the_last_one_in_the_step_or_after_it() -> None:
    log = ArtifactLog()
    log.emit(1, "a", "x", last_chunk=True)
    with pytest.raises(ValueError, match="'a' is complete"):
        log.emit(1, "a", "y", append=True)
    log.committed(log.staged())
    again = ArtifactLog.of(log.texts)  # as a resumed run loads it
    for target in (log, again):
        with pytest.raises(ValueError, match="'a' is complete"):
            target.emit(2, "a", "z")


def test_a_runs_artifacts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "RUN_BYTES", 1000)
    log = ArtifactLog()
    log.emit(1, "a", "x" * 600)
    with pytest.raises(ValueError, match="over the 1,000-byte limit"):
        log.emit(1, "b", "y" * 600)


def test_emit_outside_a_run_or_in_a_fanned_out_item() -> None:
    with pytest.raises(NoRunContext):
        current_run().emit_artifact("a", "x")
    from pflambda.runcontext import RunContext, running

    with running(RunContext("r", 3, "n", "f", item=2)), pytest.raises(RuntimeError, match="item 2"):
        current_run().emit_artifact("a", "x")


# -- the engine -----------------------------------------------------------------------


def test_each_chunk_rides_in_its_steps_checkpoint_with_no_extra_write() -> None:
    engine = make_engine()
    calls = counting(engine)
    events: list[StepEvent] = []
    outcome = engine.start(
        "tests.flows.chunky:streaming", {"words": ["a", "b", "c"]}, on_step=events.append
    )
    assert outcome.status == RunStatus.COMPLETED
    assert calls == ["start_run", *["put_checkpoint"] * 3, "commit_step"]
    assert [[c["parts"][0]["text"] for c in e.chunks] for e in events] == [
        ["a "],
        ["b "],
        ["c "],
        [],
    ]
    for event in events[:3]:  # the chunk is in that step's body, as one append op
        body = read_body(engine.store.load_checkpoints(outcome.run_id, event.seq)[-1].body)
        side_ops = [op for op in body.ops if op[1] == [SIDE]]
        assert len(side_ops) == 1
    assert texts(engine, outcome.run_id) == [
        (1, "a ", False, False),
        (2, "b ", True, False),
        (3, "c ", True, True),
    ]
    assert SIDE not in outcome.shared
    assert SIDE not in engine.state(outcome.run_id)[0]


def test_a_crash_before_the_commit_loses_and_duplicates_nothing() -> None:
    engine = make_engine()
    CRASH_AT["r-crash"] = 2
    with pytest.raises(KeyboardInterrupt):
        engine.start("tests.flows.chunky:streaming", {"words": ["a", "b", "c"]}, run_id="r-crash")
    assert texts(engine, "r-crash") == [(1, "a ", False, False)]  # b was never committed
    outcome = engine.resume("r-crash", force=True)
    assert outcome.status == RunStatus.COMPLETED
    assert texts(engine, "r-crash") == [
        (1, "a ", False, False),
        (2, "b ", True, False),
        (3, "c ", True, True),
    ]


def test_a_resumed_run_continues_its_artifact_across_a_worker_hand_off() -> None:
    engine = make_engine()
    outcome = engine.start(
        "tests.flows.chunky:streaming", {"words": list("abcdef")}, max_steps=2, hand_off=True
    )
    assert outcome.status == RunStatus.RUNNING
    drain(engine)
    log, _ = engine.artifact_log(outcome.run_id)
    assert "".join(e["parts"][0]["text"] for e in log) == "a b c d e f "
    assert [e["append"] for e in log] == [False] + [True] * 5


def test_a_pausing_step_commits_no_chunk_and_its_rerun_emits_once() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.chunky:asking", {})
    assert outcome.status == RunStatus.PAUSED
    assert texts(engine, outcome.run_id) == [(1, "hello", False, True)]
    outcome = engine.resume(outcome.run_id, reply="yes")
    assert outcome.status == RunStatus.COMPLETED
    assert [t[1] for t in texts(engine, outcome.run_id)] == ["hello", "before ", "after yes"]


def test_a_failing_step_commits_no_chunk() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.chunky:bad", {"bad": [["a", "x"], {"append": True}]})
    assert outcome.status == RunStatus.FAILED
    assert "cannot append to artifact 'a'" in (outcome.error or "")
    assert texts(engine, outcome.run_id) == []


def test_async_and_batch_nodes_emit_too() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.chunky:asynchronous", {})
    assert outcome.status == RunStatus.COMPLETED
    log, _ = engine.artifact_log(outcome.run_id)
    found = accumulate(log)
    assert found["a"].parts == [{"text": "one"}, {"data": {"n": 1}}, {"text": "two"}]
    assert sorted(k for k in found if k.startswith("item-")) == ["item-0", "item-1", "item-2"]
    outcome = engine.start("tests.flows.chunky:batch", {"items": ["x", "y"]})
    assert [t[1:3] for t in texts(engine, outcome.run_id)] == [("x", False), ("y", True)]


def test_a_large_chunk_goes_to_the_blob_store_by_reference() -> None:
    engine = make_engine()
    big = "w" * 200_000
    outcome = engine.start("tests.flows.chunky:bad", {"bad": [["big", big], {}]})
    assert outcome.status == RunStatus.COMPLETED
    ckpt = engine.store.load_checkpoints(outcome.run_id)[-1]
    assert len(ckpt.body) < 10_000  # the chunk went by reference
    body = read_body(ckpt.body)
    assert [op[0] for op in body.ops if op[1] == [SIDE]] == ["s@"]
    log, _ = engine.artifact_log(outcome.run_id)
    assert log[0]["parts"][0]["text"] == big


def test_snapshots_and_forks_carry_the_log() -> None:
    engine = make_engine()
    words = [f"w{i}" for i in range(120)]  # past SNAPSHOT_EVERY: a snapshot is taken
    outcome = engine.start("tests.flows.chunky:streaming", {"words": list(words)})
    assert outcome.status == RunStatus.COMPLETED
    ckpts = engine.store.load_checkpoints(outcome.run_id)
    assert ckpts[0].seq > 0
    assert read_body(ckpts[0].body).snapshot
    log, _ = engine.artifact_log(outcome.run_id)
    assert [e["parts"][0]["text"] for e in log] == [f"{w} " for w in words]
    fork = engine.fork(outcome.run_id, 5)
    forked, _ = engine.artifact_log(fork.run_id)
    assert [e["s"] for e in forked] == [1, 2, 3, 4, 5]


def test_a_snapshot_that_brings_no_chunk_keeps_the_log() -> None:
    """What ``migrate`` writes: a snapshot by a tracker that loaded the run."""
    engine = make_engine()
    outcome = engine.start("tests.flows.chunky:streaming", {"words": ["a", "b"]})
    tracker = SharedTracker(outcome.run_id, engine.blobs)
    shared, body = tracker.load(engine.store.load_checkpoints(outcome.run_id))
    data = tracker.prepare(shared, body.cursor, seq=99, snapshot=True).body
    again = SharedTracker(outcome.run_id, engine.blobs)
    again.load([replace(engine.store.load_checkpoints(outcome.run_id)[-1], seq=99, body=data)])
    assert [json.loads(t)["parts"] for t in again.side] == [[{"text": "a "}], [{"text": "b "}]]


def test_an_exec_attempt_that_raises_takes_its_chunks_with_it() -> None:
    engine = make_engine()
    outcome = engine.start("tests.flows.chunky:retrying", {})
    assert outcome.status == RunStatus.COMPLETED
    log, _ = engine.artifact_log(outcome.run_id)
    assert [e["id"] for e in log if e["s"] == 1] == ["try-3"]  # attempts 1 and 2 raised
    assert [e["id"] for e in log if e["s"] == 2] == ["fallback"]
    assert sorted(e["id"] for e in log if e["s"] == 3) == [
        "item-0-first",
        "item-1-retry",  # its first attempt raised; the other items' chunks stay
        "item-2-first",
    ]


@pytest.mark.parametrize("crash_at", [1, 2, 3, 4])
def test_a_crash_at_any_step_leaves_the_log_an_uninterrupted_run_writes(crash_at: int) -> None:
    words = ["a", "b", "c", "d"]
    calm = make_engine()
    expected = calm.artifact_log(
        calm.start("tests.flows.chunky:streaming", {"words": list(words)}).run_id
    )
    engine = make_engine()
    run_id = f"r-{crash_at}"
    CRASH_AT[run_id] = crash_at
    with pytest.raises(KeyboardInterrupt):
        engine.start("tests.flows.chunky:streaming", {"words": list(words)}, run_id=run_id)
    assert [e["s"] for e in engine.artifact_log(run_id)[0]] == list(range(1, crash_at))
    assert engine.resume(run_id, force=True).status == RunStatus.COMPLETED
    assert engine.artifact_log(run_id) == expected


def test_a_step_another_invocation_took_commits_no_chunk() -> None:
    from pflambda.errors import CheckpointConflict

    engine = make_engine()
    store = engine.store
    original = store.put_checkpoint
    refused: list[int] = []

    def put(checkpoint: Any) -> None:
        if checkpoint.seq == 2 and not refused:
            refused.append(checkpoint.seq)
            raise CheckpointConflict("taken")
        original(checkpoint)

    store.put_checkpoint = put  # type: ignore[method-assign]
    outcome = engine.start("tests.flows.chunky:streaming", {"words": ["a", "b", "c"]})
    assert outcome.stopped == "conflict"
    assert texts(engine, outcome.run_id) == [(1, "a ", False, False)]
    assert engine.resume(outcome.run_id, force=True).status == RunStatus.COMPLETED
    assert [t[1] for t in texts(engine, outcome.run_id)] == ["a ", "b ", "c "]
