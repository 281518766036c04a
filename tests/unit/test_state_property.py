"""Property: any sequence of mutations of shared, checkpointed step by step and resumed at
any step, rebuilds exactly the in-process state -- and a resumed run goes on exactly."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pflambda.blobs.memory import MemoryBlobStore
from pflambda.engine import codec
from pflambda.engine.state import SharedTracker
from pflambda.engine.view import SharedView
from pflambda.stores.base import Checkpoint, RunRecord, RunStatus
from pflambda.stores.memory import MemoryStore

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

keys = st.sampled_from(["a", "b", "c", "log", "$pf", "$pf:x", ""]) | st.integers(-2, 2)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from([0.0, -0.0, 1, 1.0, True])
    | st.text(max_size=6)
    | st.binary(max_size=4)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["x", "y", "z", "$pf"]), inner, max_size=3)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers(0, 5), max_size=3)
    ),
    max_leaves=8,
)
# A mutation: (kind, which container, key or index, value).
mutations = st.tuples(
    st.sampled_from(
        ["set", "set", "append", "extend", "del", "pop", "insert", "truncate", "clear", "readd"]
    ),
    st.integers(0, 50),
    keys,
    values,
)
steps = st.lists(st.lists(mutations, max_size=4), min_size=1, max_size=12)


def containers(value: Any, out: list[Any]) -> list[Any]:
    """Every mutable list and dict reachable from ``value`` (values of shared first)."""
    if isinstance(value, list | dict):
        out.append(value)
        items = value.values() if isinstance(value, dict) else value
        for item in list(items):
            containers(item, out)
    return out


def mutate(shared: SharedView, kind: str, pick: int, key: Any, value: Any) -> None:
    """Apply one mutation the way a node would: through shared, then in place."""
    value = copy.deepcopy(value)  # the script is replayed: never mutate its values
    if kind == "readd" and key in shared:
        shared[key] = shared.pop(key)
        return
    if kind in ("clear", "readd"):
        if pick % 7 == 0:
            shared.clear()
        return
    found: list[Any] = [shared]
    for top in list(dict.__iter__(shared)):
        containers(shared[top], found)  # read through the view, as a node does
    target = found[pick % len(found)]
    if isinstance(target, dict):
        if kind in ("del", "pop", "truncate") and target:
            del target[list(target)[pick % len(target)]]
        elif target is shared or isinstance(key, str):
            target[key] = value
    elif kind == "append":
        target.append(value)
    elif kind == "extend":
        target.extend([value, value] if not isinstance(value, list) else value)
    elif kind == "insert":
        target.insert(pick % (len(target) + 1), value)
    elif kind in ("del", "pop") and target:
        target.pop(pick % len(target))
    elif kind == "truncate":
        del target[pick % (len(target) + 1) :]
    elif target:
        target[pick % len(target)] = value


class Durable:
    """Commits every step to a memory store, the way the engine does."""

    def __init__(self, store: MemoryStore, blobs: MemoryBlobStore, shared: SharedView) -> None:
        self.store, self.blobs, self.shared = store, blobs, shared
        self.tracker = SharedTracker("r1", blobs)
        self.seq = -1

    def commit(self, snapshot: bool | None) -> None:
        self.seq += 1
        pending = self.tracker.prepare(self.shared, None, seq=self.seq, snapshot=snapshot)
        self.store.put_checkpoint(
            Checkpoint("r1", self.seq, pending.body, pending.snapshot, 0.0, base=pending.base)
        )
        self.tracker.commit(pending)

    def resume(self, at: int) -> Durable:
        again = Durable(self.store, self.blobs, SharedView())
        again.shared, _ = again.tracker.load(self.store.load_checkpoints("r1", at))
        again.seq = at
        return again


def exact(shared: dict[Any, Any]) -> str:
    """The state exactly: key order, types and values (the codec tags every type)."""
    return codec.dumps(dict(dict.items(shared)))


def fresh_store() -> MemoryStore:
    store = MemoryStore()
    store.create_run(RunRecord("r1", "f:f", "fp", RunStatus.RUNNING, 0.0, 0.0))
    return store


@SETTINGS
@given(
    initial=st.dictionaries(keys, values, max_size=4),
    script=steps,
    snapshots=st.lists(st.sampled_from([None, None, None, False, True]), min_size=13),
    resume_at=st.integers(0, 12),
)
def test_resume_at_any_step_rebuilds_exactly(
    initial: dict[Any, Any], script: list[Any], snapshots: list[Any], resume_at: int
) -> None:
    run = Durable(fresh_store(), MemoryBlobStore(), SharedView(initial))
    run.commit(snapshot=True)
    states = [exact(run.shared)]
    for index, step in enumerate(script):
        for mutation in step:
            mutate(run.shared, *mutation)
        run.commit(snapshots[index])
        states.append(exact(run.shared))
    at = resume_at % len(states)
    resumed = run.resume(at)
    assert exact(resumed.shared) == states[at]
    for index, step in enumerate(script[at:], start=at):  # and it goes on exactly
        for mutation in step:
            mutate(resumed.shared, *mutation)
        resumed.seq = index
        resumed.store = fresh_store()  # a separate history: the same steps again
        pending = resumed.tracker.prepare(resumed.shared, None, seq=index + 1)
        resumed.tracker.commit(pending)
        assert exact(resumed.shared) == states[index + 1]
    final = run.resume(len(states) - 1)
    assert exact(final.shared) == states[-1]


@SETTINGS
@given(script=steps)
def test_replaying_the_ops_of_a_continued_run_matches(script: list[Any]) -> None:
    """A run resumed mid-way and committed on: its own checkpoints rebuild it too."""
    run = Durable(fresh_store(), MemoryBlobStore(), SharedView({"log": [], "d": {}}))
    run.commit(snapshot=True)
    half = len(script) // 2
    for step in script[:half]:
        for mutation in step:
            mutate(run.shared, *mutation)
        run.commit(None)
    run = run.resume(run.seq)
    for step in script[half:]:
        for mutation in step:
            mutate(run.shared, *mutation)
        run.commit(None)
    assert exact(run.resume(run.seq).shared) == exact(run.shared)
