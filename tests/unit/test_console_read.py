"""The console's read side: graph layout, shared at a step (offloaded values by size), diffs."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.console.layout import layout
from pflambda.console.snapshot import Offloaded, diff, load_state, load_value
from pflambda.console.views import STALL_AFTER, RunFilter, is_stalled, list_page, run_detail
from pflambda.engine.flowref import load_flow
from pflambda.engine.runner import Engine
from pflambda.errors import InvalidRunState
from pflambda.graph import describe
from pflambda.limits import INLINE_VALUE_LIMIT
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore


@pytest.fixture
def engine() -> Engine:
    return Engine(MemoryStore(), MemoryBlobStore(), clock=FakeClock())


def _inside(inner: dict[str, Any], outer: dict[str, Any]) -> bool:
    return (
        outer["x"] <= inner["x"]
        and outer["y"] <= inner["y"]
        and inner["x"] + inner["w"] <= outer["x"] + outer["w"]
        and inner["y"] + inner["h"] <= outer["y"] + outer["h"]
    )


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return not (
        a["x"] + a["w"] <= b["x"]
        or b["x"] + b["w"] <= a["x"]
        or a["y"] + a["h"] <= b["y"]
        or b["y"] + b["h"] <= a["y"]
    )


def test_layout_puts_nested_flows_around_their_nodes() -> None:
    drawing = layout(describe(load_flow("tests.flows.sample:nested")))
    nodes = {n["id"]: n for n in drawing["nodes"]}
    assert set(nodes) == {"Double", "PerFile", "PerFile/Read", "PerFile/Tag", "Finish"}
    assert nodes["PerFile"]["kind"] == "flow"
    assert nodes["PerFile/Read"]["parent"] == "PerFile"
    assert _inside(nodes["PerFile/Read"], nodes["PerFile"])
    assert _inside(nodes["PerFile/Tag"], nodes["PerFile"])
    # layers go down: Double above PerFile above Finish; Read above Tag inside
    assert nodes["Double"]["y"] < nodes["PerFile"]["y"] < nodes["Finish"]["y"]
    assert nodes["PerFile/Read"]["y"] < nodes["PerFile/Tag"]["y"]
    for node in drawing["nodes"]:
        assert node["x"] >= 0
        assert node["y"] >= 0
        assert node["x"] + node["w"] <= drawing["width"] + 0.1
        assert node["y"] + node["h"] <= drawing["height"] + 0.1
    leaves = [n for n in drawing["nodes"] if n["kind"] == "node"]
    assert not any(_overlap(a, b) for i, a in enumerate(leaves) for b in leaves[i + 1 :])
    edges = {(e["source"], e["action"], e["target"]) for e in drawing["edges"]}
    assert ("PerFile", "next", "Finish") in edges
    assert ("PerFile/Read", "default", "PerFile/Tag") in edges


def test_layout_routes_loops_around_the_side() -> None:
    drawing = layout(describe(load_flow("tests.flows.sample:loop")))
    back = [e for e in drawing["edges"] if e["back"]]
    # Count is on top; Other and Finish share the next layer, so Other's edges go around
    assert [(e["source"], e["target"]) for e in back] == [("Other", "Count"), ("Other", "Finish")]
    nodes = {n["id"]: n for n in drawing["nodes"]}
    right = max(n["x"] + n["w"] for n in nodes.values())
    assert all(p[0] > right for p in back[0]["points"][1:3])  # the lane is outside the boxes


def test_state_at_a_step_shows_large_values_by_size(engine: Engine) -> None:
    big = "x" * (INLINE_VALUE_LIMIT + 10)
    engine.start("tests.flows.sample:loop", {"limit": 3, "big": big}, run_id="r")
    state = load_state(engine.store, engine.blobs, "r", 2)
    assert state.values["n"] == 2
    offloaded = state.values["big"]
    assert isinstance(offloaded, Offloaded)
    assert offloaded.size == len(big) + 2  # its JSON: the string in quotes
    assert load_value(state, "big") == big
    assert load_value(state, "n") == 2
    assert state.to_json()["offloaded"] == {"big": {"size": offloaded.size}}
    assert "big" not in state.to_json()["shared"]
    with pytest.raises(InvalidRunState, match="no checkpoint 99"):
        load_state(engine.store, engine.blobs, "r", 99)


def test_diff_names_the_paths_a_step_changed(engine: Engine) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 3}, run_id="r")
    first = diff(
        load_state(engine.store, engine.blobs, "r", 0),
        load_state(engine.store, engine.blobs, "r", 1),
    )
    assert [(c["op"], c["path"], c["after"]) for c in first["changes"]] == [
        ("added", ["n"], 1),
        ("added", ["trail"], ["Count:1:{}"]),
    ]
    second = diff(
        load_state(engine.store, engine.blobs, "r", 1),
        load_state(engine.store, engine.blobs, "r", 2),
    )
    assert [(c["op"], c["path"]) for c in second["changes"]] == [
        ("changed", ["n"]),
        ("added", ["trail", 1]),
    ]
    assert second["changes"][0]["before"] == 1
    assert second["changes"][0]["after"] == 2


def test_diff_of_large_values_compares_content(engine: Engine) -> None:
    before = load_state_like({"a": Offloaded("h1", 10), "b": Offloaded("h2", 5), "c": 1})
    after = load_state_like({"a": Offloaded("h1", 10), "b": Offloaded("h3", 7), "c": (1,)})
    changes = diff(before, after)["changes"]
    assert changes == [
        {"op": "changed", "path": ["b"], "before": {"offloaded": 5}, "after": {"offloaded": 7}},
        {"op": "changed", "path": ["c"], "before": 1, "after": (1,)},
    ]


def load_state_like(values: dict[str, Any]) -> Any:
    from pflambda.console.snapshot import StepState

    return StepState(seq=0, values=values)


def test_run_detail_has_cursor_visits_and_prompt(engine: Engine) -> None:
    engine.start("tests.flows.sample:approval", {"limit": 2}, run_id="r")
    record = engine.store.get_run("r")
    doc = run_detail(engine.store, engine.blobs, record, engine.clock.now())
    assert doc["status"] == "paused"
    assert doc["prompt"] == "approve the plan?"
    assert doc["cursor"] == [{"flow": "", "node": "Ask"}]
    assert doc["visits"] == {"Count": 1}
    assert [row["node"] for row in doc["timeline"]] == [None, "Count"]
    assert [row["next"] for row in doc["timeline"]] == ["Count", "Ask"]
    assert doc["node"] == "Ask"
    assert doc["steps"] == 1
    assert {n["id"] for n in doc["graph"]["nodes"]} == {"Count", "Ask", "Finish"}


def test_listing_filters_and_pages(engine: Engine) -> None:
    clock = engine.clock
    assert isinstance(clock, FakeClock)
    for i in range(7):
        clock.advance(10)
        flow = "tests.flows.sample:loop" if i % 2 else "tests.flows.sample:failing"
        engine.start(flow, {"limit": 1}, run_id=f"r{i}", owner="alice" if i < 5 else "bob")
    now = clock.now()
    page = list_page(engine.store, RunFilter(), now=now, limit=3)
    assert [r["run_id"] for r in page["runs"]] == ["r6", "r5", "r4"]
    rest = list_page(engine.store, RunFilter(), now=now, limit=3, token=page["next_token"])
    assert [r["run_id"] for r in rest["runs"]] == ["r3", "r2", "r1"]
    failed = list_page(engine.store, RunFilter(status=engine_status("failed")), now=now, limit=50)
    assert [r["run_id"] for r in failed["runs"]] == ["r6", "r4", "r2", "r0"]
    bobs = list_page(engine.store, RunFilter(owner="bob"), now=now, limit=50)
    assert [r["run_id"] for r in bobs["runs"]] == ["r6", "r5"]
    recent = list_page(engine.store, RunFilter(since=now - 25), now=now, limit=2)
    assert [r["run_id"] for r in recent["runs"]] == ["r6", "r5", "r4"][:2]
    assert (
        list_page(engine.store, RunFilter(since=now - 25), now=now, limit=5)["next_token"] is None
    )


def engine_status(name: str) -> Any:
    from pflambda.stores.base import RunStatus

    return RunStatus(name)


def test_a_running_run_whose_lease_lapsed_is_stalled(engine: Engine) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 5}, run_id="r", max_steps=1)
    engine.start("tests.flows.sample:loop", {"limit": 1}, run_id="done")
    now = engine.clock.now()
    record = engine.store.get_run("r")
    assert record.status == RunStatus.RUNNING
    assert not record.leased(now)  # the step budget ended; the lease lapsed
    rows = list_page(engine.store, RunFilter(), now=now)["runs"]
    assert [(r["run_id"], r["stalled"]) for r in rows] == [("r", True), ("done", False)]
    stalled = list_page(engine.store, RunFilter(stalled=True), now=now)
    assert [r["run_id"] for r in stalled["runs"]] == ["r"]
    # a run with a live lease is not stalled; one from before leases goes by time
    live = replace(record, lease_until=now + 60)
    assert not is_stalled(live, None, now)
    legacy = replace(record, lease_owner=None, lease_until=None, updated_at=now)
    assert not is_stalled(legacy, None, now)
    assert is_stalled(legacy, None, now + STALL_AFTER)


def test_run_detail_shows_fan_out_progress() -> None:
    from pflambda.engine.fanout import run_chunk
    from pflambda.queues.memory import MemoryQueue

    queue = MemoryQueue(clock=FakeClock())
    engine = Engine(MemoryStore(), MemoryBlobStore(), queue, clock=FakeClock())
    outcome = engine.start("tests.flows.batch:squares", {"items": list(range(25))})
    assert outcome.stopped == "fanout"
    record = engine.store.get_run(outcome.run_id)
    doc = run_detail(engine.store, engine.blobs, record, engine.clock.now())
    assert doc["fanout"] == {"node": "Square", "chunks": 3, "done": 0, "items": 25}
    first = queue.receive(1)[0]
    run_chunk(engine, json.loads(first.body), first.receive_count)
    doc = run_detail(engine.store, engine.blobs, record, engine.clock.now())
    assert doc["fanout"]["done"] == 1
    assert doc["cursor"][-1]["node"] == "Square"


def test_a_step_shows_readable_json_and_keeps_the_tagged_form(engine: Engine) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 1, "pair": (1, 2)}, run_id="r")
    doc = load_state(engine.store, engine.blobs, "r", 0).to_json()
    assert doc["display"]["pair"] == [1, 2]  # for people
    assert doc["shared"]["pair"] == {"$pf": "tuple", "v": [1, 2]}  # lossless, for edits
