"""Checkpoint bodies: structural deltas, change tracking, snapshots, blobs, resume."""

from __future__ import annotations

import itertools
import json
import zlib
from typing import Any

import pytest

from pflambda import limits
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.engine import codec
from pflambda.engine.state import SharedTracker, read_body
from pflambda.engine.view import SharedView
from pflambda.errors import SerializationError
from pflambda.stores.base import Checkpoint


class CountingBlobs(MemoryBlobStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []
        self.gets: list[str] = []

    def put(self, key: str, data: bytes) -> None:
        self.puts.append(key)
        super().put(key, data)

    def get(self, key: str) -> bytes:
        self.gets.append(key)
        return super().get(key)


class Run:
    """A tracker and the checkpoints it committed, as the engine drives them."""

    def __init__(self, shared: dict[Any, Any], blobs: MemoryBlobStore | None = None) -> None:
        self.blobs = blobs or CountingBlobs()
        self.tracker = SharedTracker("r1", self.blobs)
        self.shared = SharedView(shared)
        self.ckpts: list[Checkpoint] = []
        self.step(snapshot=True)

    def step(self, snapshot: bool | None = None, node: str | None = None) -> list[list[Any]]:
        seq = len(self.ckpts)
        pending = self.tracker.prepare(self.shared, None, seq=seq, snapshot=snapshot, node_id=node)
        self.tracker.commit(pending)
        self.ckpts.append(
            Checkpoint("r1", seq, pending.body, pending.snapshot, 0.0, base=pending.base)
        )
        return read_body(pending.body).ops

    def resume(self) -> tuple[SharedView, SharedTracker]:
        base = max(c.seq for c in self.ckpts if c.snapshot)
        tracker = SharedTracker("r1", self.blobs)
        shared, _ = tracker.load(self.ckpts[base:])
        return shared, tracker


def same(a: dict[Any, Any], b: dict[Any, Any]) -> bool:
    """Exactly equal: same keys in the same order, same types (the codec tags types)."""
    return codec.dumps(dict(a.items())) == codec.dumps(dict(b.items()))


def test_an_append_is_one_op_whatever_the_list_size() -> None:
    sizes = []
    for n in (10, 10_000):
        run = Run({"log": [f"item-{i:05d}" for i in range(n)], "count": 0})
        run.shared["log"].append("one more")
        ops = run.step(snapshot=False)
        assert ops == [["a", ["log"], ["one more"]]]
        sizes.append(len(run.ckpts[-1].body))
    assert sizes[0] == sizes[1]


def test_a_nested_key_is_set_at_its_path() -> None:
    run = Run({"cfg": {"model": {"name": "a", "temp": 0.5}, "tags": ["x"]}})
    run.shared["cfg"]["model"]["temp"] = 0.7
    run.shared["cfg"]["extra"] = {"k": 1}
    del run.shared["cfg"]["tags"]
    ops = run.step(snapshot=False)
    assert ["s", ["cfg", "model", "temp"], 0.7] in ops
    assert ["s", ["cfg", "extra"], {"k": 1}] in ops
    assert ["d", ["cfg", "tags"]] in ops
    assert len(ops) == 3
    shared, _ = run.resume()
    assert same(shared, run.shared)


def test_list_edits_inside_and_truncation() -> None:
    run = Run({"rows": [{"id": 1}, {"id": 2}, {"id": 3}]})
    run.shared["rows"][1]["id"] = 20
    ops = run.step(snapshot=False)
    assert ops == [["s", ["rows", 1, "id"], 20]]
    run.shared["rows"].pop()
    assert run.step(snapshot=False) == [["t", ["rows"], 2]]
    run.shared["rows"].insert(0, {"id": 0})  # shifts everything: rewritten whole
    assert run.step(snapshot=False)[0][:2] == ["s", ["rows"]] or len(run.ckpts[-1].body) < 200
    shared, _ = run.resume()
    assert same(shared, run.shared)


def test_only_touched_keys_are_examined() -> None:
    encodes = []

    class Big:
        pass

    def encode(value: Big) -> str:
        encodes.append(1)
        return "big"

    codec.register_type(Big, tag="test.state.Big", encode=encode, decode=lambda v: Big())
    run = Run({"big": Big(), "n": 0})
    assert encodes == [1]
    for i in range(5):
        run.shared["n"] = i + 1
        run.step(snapshot=False)
    assert encodes == [1]  # never looked at again
    run.step(snapshot=True)
    assert encodes == [1]  # a snapshot reuses its cached encoding
    _ = run.shared["big"]  # read: may have been mutated, so it is compared
    run.step(snapshot=False)
    assert encodes == [1, 1]


def test_a_value_mutated_after_a_read_is_seen() -> None:
    run = Run({"items": [1, 2], "meta": {"a": 1}})
    items = run.shared["items"]  # a node holds a reference within its visit
    items.append(3)
    meta = run.shared.get("meta")
    meta["b"] = 2
    ops = run.step(snapshot=False)
    assert ["a", ["items"], [3]] in ops
    assert ["s", ["meta", "b"], 2] in ops


def test_whole_dict_access_marks_everything() -> None:
    run = Run({"a": [1], "b": [2]})
    for value in run.shared.values():
        value.append(0)
    ops = run.step(snapshot=False)
    assert sorted(op[1][0] for op in ops) == ["a", "b"]
    copied = dict(run.shared)  # CPython's merge goes through keys() and __getitem__
    copied["a"].append(9)
    assert run.step(snapshot=False) == [["a", ["a"], [9]]]
    assert json.loads(json.dumps(run.shared)) == {"a": [1, 0, 9], "b": [2, 0]}


def test_deleted_and_set_again_moves_to_the_end() -> None:
    run = Run({"a": 1, "b": 2, "c": 3})
    value = run.shared.pop("a")
    run.shared["a"] = value
    del run.shared["c"]
    run.step(snapshot=False)
    shared, _ = run.resume()
    assert list(shared) == ["b", "a"]
    assert same(shared, run.shared)


def test_non_str_keys_and_tagged_values() -> None:
    run = Run({1: {"x": (1, 2)}, "$pf": {3, 4}, ("t",): b"raw"})
    run.shared[1]["x"] = (1, 2, 3)
    run.shared["$pf"].add(5)
    run.step(snapshot=False)
    shared, _ = run.resume()
    assert same(shared, run.shared)
    assert shared[1]["x"] == (1, 2, 3)
    assert shared["$pf"] == {3, 4, 5}


def test_errors_name_the_path_and_node() -> None:
    run = Run({"data": {"rows": []}})
    run.shared["data"]["rows"].append(object())
    with pytest.raises(SerializationError, match=r"node 'Load'.*shared\['data'\]\['rows'\]\[0\]"):
        run.step(node="Load")


def test_a_resumed_tracker_goes_on_with_deltas() -> None:
    run = Run({"log": ["a"], "n": 0})
    run.shared["log"].append("b")
    run.step(snapshot=False)
    shared, tracker = run.resume()
    run.tracker, run.shared = tracker, shared
    run.shared["log"].append("c")
    assert run.step(snapshot=False) == [["a", ["log"], ["c"]]]
    assert run.resume()[0]["log"] == ["a", "b", "c"]


def test_large_values_go_to_blobs_once() -> None:
    blobs = CountingBlobs()
    big = "x" * (limits.INLINE_VALUE_LIMIT + 10)
    run = Run({"doc": big, "n": 0}, blobs)
    assert len(blobs.puts) == 1
    for _ in range(3):
        run.shared["n"] += 1
        run.step(snapshot=True)
    assert len(blobs.puts) == 1  # the same content is never written twice
    shared, tracker = run.resume()
    assert shared["doc"] == big
    run.tracker, run.shared = tracker, shared
    run.step(snapshot=True)
    assert len(blobs.puts) == 1  # ...not even after a resume


def test_a_growing_list_re_uploads_only_its_last_segment() -> None:
    blobs = CountingBlobs()
    item = "y" * 1000
    log = [f"{i:04d}{item}" for i in range(200)]
    run = Run({"log": list(log)}, blobs)  # ~200 KB: several segments
    first = len(blobs.puts)
    assert first >= 3
    run.shared["log"].append(item)
    ops = run.step(snapshot=False)
    assert ops == [["a", ["log"], [item]]]
    assert len(blobs.puts) == first
    run.step(snapshot=True)
    assert len(blobs.puts) == first + 1  # only the last, unsealed segment is new
    assert run.resume()[0]["log"] == [*log, item]


def test_format_1_bodies_still_load() -> None:
    blobs = MemoryBlobStore()
    blobs.put("runs/r1/k", zlib.compress(b'["from","blob"]', 1))
    v1 = [
        {"v": 1, "snap": True, "cursor": None, "set": {"a": 1, "b": [1]}, "blobs": {}, "del": []},
        {"v": 1, "snap": False, "cursor": None, "set": {"b": [1, 2]}, "blobs": {"c": "runs/r1/k"}},
        {"v": 1, "snap": False, "cursor": None, "set": {}, "blobs": {}, "del": ["a"]},
    ]
    ckpts = [
        Checkpoint("r1", i, json.dumps(body).encode(), body["snap"], 0.0)  # type: ignore[arg-type]
        for i, body in enumerate(v1)
    ]
    shared, _ = SharedTracker("r1", blobs).load(ckpts)
    assert shared == {"b": [1, 2], "c": ["from", "blob"]}


def test_snapshots_come_when_replaying_would_read_more() -> None:
    run = Run({"counter": 0, "last": ""})
    kinds = []
    for i in range(200):
        run.shared["counter"] = i
        run.shared["last"] = f"step {i} " + "z" * 100
        run.step()
        kinds.append(run.ckpts[-1].snapshot)
    snapshots = [i for i, snap in enumerate(kinds) if snap]
    assert snapshots, "a steady flow is snapshotted now and then"
    gaps = [b - a for a, b in itertools.pairwise(snapshots)]
    assert max(gaps) < limits.SNAPSHOT_EVERY
    replay = sum(len(c.body) + limits.CHECKPOINT_ITEM_OVERHEAD for c in run.ckpts[-gaps[-1] :])
    assert replay <= limits.SNAPSHOT_DELTA_BYTES + 2 * 1024


def test_shared_view_is_a_dict() -> None:
    view = SharedView({"a": 1})
    assert isinstance(view, dict)
    assert view == {"a": 1}
    assert codec.dumps(view) == '{"a":1}'
    view |= {"b": 2}
    assert view.take_touched().keys == {"b"}
    view.setdefault("c", [])
    assert view.take_touched().keys == {"c"}
    view.clear()
    touched = view.take_touched()
    assert touched.everything
    assert touched.removed == {"a", "b", "c"}


def test_a_large_dict_in_blobs_is_not_re_snapshotted_every_few_steps() -> None:
    blobs = CountingBlobs()
    notes = {f"k{i:05d}": f"note {i:05d} abcdefghijklmnopqrstuvwxyz" for i in range(3000)}
    run = Run({"notes": notes}, blobs)  # ~120 KB: the snapshot refers to a blob
    assert len(blobs.puts) == 1
    for i in range(60):
        run.shared["notes"][f"new{i}"] = "x" * 30
        run.step()
    assert not any(c.snapshot for c in run.ckpts[1:])  # the blob counts in a snapshot's cost
    assert len(blobs.puts) == 1


def test_probing_for_a_key_the_codec_cannot_encode_is_harmless() -> None:
    run = Run({"a": 1})
    assert run.shared.get(Run) is None  # a class as key: not encodable, and not there
    run.shared["a"] = 2
    assert run.step(snapshot=False) == [["s", ["a"], 2]]
