"""Property tests: random node graphs behave the same on pflambda and pocketflow 0.0.3.

Hypothesis draws a graph *spec* (plain data): 2..8 nodes, each with a scripted
sequence of actions (wired ones, unknown ones, ``None`` and ``""``), a number of
failing attempts, ``max_retries`` and an optional fallback; random wiring with
``>>``, ``- "action" >>`` and ``.next`` (duplicates trigger overwrite warnings);
nodes that are nested Flows / BatchFlows (with their own sub-graph, batch params
and optionally an overridden ``post``), and for the async variant every async
node/flow class mixed with sync ones.  The same spec is then built and run on
each implementation and the final shared state (including a log of every
prep/exec/post with the params and retry counters seen), the return value, the
warnings and any escaping exception must be identical.

Every node visit increments ``shared["steps"]``; past ``BUDGET`` each node (and
each flow's overridden post) returns the unwired action ``"__stop__"``, so every
flow terminates.
"""

from __future__ import annotations

import asyncio
import types
from functools import cache
from types import ModuleType
from typing import Any

import pocketflow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.budget import examples
from tests.unit.core_impls import IMPLS, observe

BUDGET = 25
HARD_LIMIT = 2_000  # never reached unless an implementation loops forever

# scripted actions: wired ones are likelier than the unknown "zz"; None and "" mean "default"
ACTIONS = ["default", "a", "b", "default", "a", "b", "zz", None, ""]
EDGE_ACTIONS = ["default", "a", "b"]
STYLES = ["rshift", "minus", "next"]
SYNC_LEAVES = ["node", "batch"]
ASYNC_LEAVES = ["node", "batch", "async", "asyncbatch", "asyncpar"]
SYNC_FLOWS = ["flow", "batchflow"]
ASYNC_FLOWS = ["asyncflow", "asyncbatchflow", "asyncparbatchflow", "flow", "batchflow"]

SETTINGS = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Boom(Exception):
    pass


@types.coroutine
def _yield_to_loop():
    """Let other tasks run, like ``asyncio.sleep(0)`` (which the harness records)."""
    yield


# --------------------------------------------------------------------------- specs


# Strategies are built once: constructing them inside draws dominates the run time.
_D10 = st.integers(0, 9)
_IDX = st.integers(0, 7)  # taken modulo the number of nodes
_STYLE = st.sampled_from(STYLES)
_EDGE = st.tuples(_IDX, st.sampled_from(EDGE_ACTIONS), _IDX, _STYLE)
_PARAMS = st.dictionaries(st.sampled_from(["k", "p"]), st.integers(0, 3), max_size=2)
_BATCH_ITEM = st.dictionaries(st.sampled_from(["k", "i"]), st.integers(0, 3), max_size=2)
_BATCH = st.one_of(
    st.none(),
    st.lists(_BATCH_ITEM, max_size=3),
    st.lists(_BATCH_ITEM, min_size=1, max_size=3),
)
_NONEMPTY_BATCH = st.lists(_BATCH_ITEM, min_size=1, max_size=3)
_POST_ACTION = st.sampled_from([..., ..., None, "a", "zz"])
_ITEMS = st.lists(st.integers(0, 4), max_size=3)


def _leaf(kinds: list[str]):
    return st.fixed_dictionaries(
        {
            "kind": st.sampled_from(kinds),
            "script": st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=4),
            "fail": st.sampled_from([0, 0, 0, 1, 2]),
            "max_retries": st.integers(0, 3),
            "fallback": st.sampled_from([None, "fb"]),
            "items": _ITEMS,
            "items_none": _D10,  # items is None when this is 9
        }
    )


_LEAF = {False: _leaf(SYNC_LEAVES), True: _leaf(ASYNC_LEAVES)}
_FLOW_KIND = {False: st.sampled_from(SYNC_FLOWS), True: st.sampled_from(ASYNC_FLOWS)}


@st.composite
def graph_spec(draw, depth: int, is_async: bool) -> dict[str, Any]:
    k = draw(st.integers(2, 8) if depth == 0 else st.integers(2, 3))
    nodes = []
    for _ in range(k):
        if depth < 2 and draw(_D10) < 2:
            kind = draw(_FLOW_KIND[is_async])
            # a sync flow inside an async graph only holds sync nodes
            sub_async = is_async and kind.startswith("async")
            nodes.append(
                {
                    "kind": kind,
                    "graph": draw(_GRAPH[depth + 1, sub_async]),
                    "batch": draw(_BATCH),
                    "post_action": draw(_POST_ACTION),
                }
            )
        else:
            leaf = draw(_LEAF[is_async])
            if leaf.pop("items_none") == 9:
                leaf["items"] = None  # AsyncBatchNode raises TypeError (as pocketflow does)
            nodes.append(leaf)
    # each (node, action) pair is wired with probability 0.8, then a few extra
    # edges (which may overwrite, and warn), all applied in a random order
    edges = [
        (src, action, draw(_IDX) % k, draw(_STYLE))
        for src in range(k)
        for action in EDGE_ACTIONS
        if draw(_D10) < 8
    ]
    edges += [(s % k, a, t % k, style) for s, a, t, style in draw(st.lists(_EDGE, max_size=3))]
    return {
        "nodes": nodes,
        "edges": draw(st.permutations(edges)),
        "start": draw(_IDX) % k,
        "params": draw(_PARAMS),
    }


_GRAPH = {(d, a): graph_spec(d, a) for d in (0, 1, 2) for a in (False, True)}


@st.composite
def top_spec(draw, is_async: bool) -> dict[str, Any]:
    kinds = ["asyncflow", "asyncbatchflow", "asyncparbatchflow"] if is_async else SYNC_FLOWS
    return {
        "kind": draw(st.sampled_from(kinds)),
        "graph": draw(_GRAPH[0, is_async]),
        # one_of would favour its first branch: draw None explicitly and rarely
        "batch": None if draw(_D10) == 9 else draw(_NONEMPTY_BATCH),
        "post_action": ...,
    }


# --------------------------------------------------------------------------- building


def _params(node) -> list[tuple[str, Any]]:
    return sorted(node.params.items())


def _step(shared: dict[str, Any]) -> bool:
    """Count a visit; True once the budget is spent."""
    shared["steps"] = shared.get("steps", 0) + 1
    if shared["steps"] > HARD_LIMIT:
        raise AssertionError("runaway flow")  # fails the test, never compared
    return shared["steps"] > BUDGET


def _begin(self, shared: dict[str, Any]) -> int:
    visits = shared.setdefault("visits", {})
    v = visits[self.nid] = visits.get(self.nid, 0) + 1
    shared.setdefault("log", []).append((self.nid, "prep", v, _params(self)))
    return v


def _action(self, shared: dict[str, Any], v: int) -> Any:
    if _step(shared):
        return "__stop__"
    return self.spec["script"][v % len(self.spec["script"])]


@cache
def node_classes(pf: ModuleType) -> dict[str, type]:
    """Spec-driven node classes for implementation ``pf`` (one set per module)."""

    class Leaf(pf.Node):
        def __init__(self, nid, spec):
            super().__init__(max_retries=spec["max_retries"])
            self.nid, self.spec = nid, spec

        def prep(self, shared):
            self.attempts = 0
            return _begin(self, shared)

        def exec(self, v):
            self.attempts += 1
            self.log.append((self.nid, "exec", v, self.cur_retry))
            if self.attempts <= self.spec["fail"]:
                raise Boom(f"{self.nid} visit {v} attempt {self.attempts}")
            return f"{self.nid}:{v}"

        def exec_fallback(self, v, exc):
            self.log.append((self.nid, "fallback", v, str(exc)))
            if self.spec["fallback"] is None:
                return super().exec_fallback(v, exc)
            return self.spec["fallback"]

        def post(self, shared, v, exec_res):
            shared["log"].append((self.nid, "post", v, exec_res))
            return _action(self, shared, v)

    class Batch(pf.BatchNode):
        def __init__(self, nid, spec):
            super().__init__(max_retries=spec["max_retries"])
            self.nid, self.spec = nid, spec

        def prep(self, shared):
            self.attempts = {}
            self.v = _begin(self, shared)
            return self.spec["items"]

        def exec(self, item):
            n = self.attempts[item] = self.attempts.get(item, 0) + 1
            self.log.append((self.nid, "exec", item, self.cur_retry))
            if n <= self.spec["fail"]:
                raise Boom(f"{self.nid}[{item}] attempt {n}")
            return f"{self.nid}[{item}]"

        def exec_fallback(self, item, exc):
            self.log.append((self.nid, "fallback", item, str(exc)))
            if self.spec["fallback"] is None:
                return super().exec_fallback(item, exc)
            return self.spec["fallback"]

        def post(self, shared, items, exec_res):
            shared["log"].append((self.nid, "post", items, exec_res))
            return _action(self, shared, self.v)

    class Async(pf.AsyncNode):
        def __init__(self, nid, spec):
            super().__init__(max_retries=spec["max_retries"])
            self.nid, self.spec = nid, spec

        async def prep_async(self, shared):
            self.attempts = 0
            await _yield_to_loop()
            return _begin(self, shared)

        async def exec_async(self, v):
            self.attempts += 1
            # cur_retry is deliberately not logged: pocketflow 0.0.3 never sets it
            self.log.append((self.nid, "exec_async", v))
            await _yield_to_loop()
            if self.attempts <= self.spec["fail"]:
                raise Boom(f"{self.nid} visit {v} attempt {self.attempts}")
            return f"{self.nid}:{v}"

        async def exec_fallback_async(self, v, exc):
            self.log.append((self.nid, "fallback_async", v, str(exc)))
            if self.spec["fallback"] is None:
                return await super().exec_fallback_async(v, exc)
            return self.spec["fallback"]

        async def post_async(self, shared, v, exec_res):
            await _yield_to_loop()
            shared["log"].append((self.nid, "post_async", v, exec_res))
            return _action(self, shared, v)

    def async_batch(base):
        class AsyncBatchX(base):
            def __init__(self, nid, spec):
                super().__init__(max_retries=spec["max_retries"])
                self.nid, self.spec = nid, spec

            async def prep_async(self, shared):
                self.attempts = {}
                self.v = _begin(self, shared)
                return self.spec["items"]

            async def exec_async(self, item):
                n = self.attempts[item] = self.attempts.get(item, 0) + 1
                self.log.append((self.nid, "exec_async:start", item))
                await _yield_to_loop()
                self.log.append((self.nid, "exec_async:end", item))
                if n <= self.spec["fail"]:
                    raise Boom(f"{self.nid}[{item}] attempt {n}")
                return f"{self.nid}[{item}]"

            async def exec_fallback_async(self, item, exc):
                self.log.append((self.nid, "fallback_async", item, str(exc)))
                if self.spec["fallback"] is None:
                    return await super().exec_fallback_async(item, exc)
                return self.spec["fallback"]

            async def post_async(self, shared, items, exec_res):
                shared["log"].append((self.nid, "post_async", items, exec_res))
                return _action(self, shared, self.v)

        return AsyncBatchX

    def flow(base):
        class FlowX(base):
            def __init__(self, nid, spec, start):
                super().__init__(start=start)
                self.nid, self.spec = nid, spec

            def prep(self, shared):
                shared.setdefault("log", []).append((self.nid, "flow-prep", _params(self)))
                return self.spec["batch"]

            def post(self, shared, prep_res, exec_res):
                shared["log"].append((self.nid, "flow-post", prep_res, exec_res))
                # a flow visit counts too: a cycle of empty BatchFlows must end
                if _step(shared):
                    return "__stop__"
                if self.spec["post_action"] is ...:
                    return exec_res  # pocketflow's default: the last action
                return self.spec["post_action"]

            async def prep_async(self, shared):
                return self.prep(shared)

            async def post_async(self, shared, prep_res, exec_res):
                return self.post(shared, prep_res, exec_res)

        return FlowX

    return {
        "node": Leaf,
        "batch": Batch,
        "async": Async,
        "asyncbatch": async_batch(pf.AsyncBatchNode),
        "asyncpar": async_batch(pf.AsyncParallelBatchNode),
        "flow": flow(pf.Flow),
        "batchflow": flow(pf.BatchFlow),
        "asyncflow": flow(pf.AsyncFlow),
        "asyncbatchflow": flow(pf.AsyncBatchFlow),
        "asyncparbatchflow": flow(pf.AsyncParallelBatchFlow),
    }


def build(pf: ModuleType, spec: dict[str, Any], nid: str, log: list[Any]):
    """Build the node described by ``spec`` (a leaf or a flow over ``spec["graph"]``)."""
    cls = node_classes(pf)[spec["kind"]]
    if "graph" not in spec:
        node = cls(nid, spec)
        node.log = log  # shared by all copies (copy.copy is shallow)
        return node
    graph = spec["graph"]
    children = [
        build(pf, child, f"{nid}.{i}" if nid else str(i), log)
        for i, child in enumerate(graph["nodes"])
    ]
    for src, action, tgt, style in graph["edges"]:
        if style == "rshift" and action == "default":
            children[src] >> children[tgt]
        elif style == "next":
            children[src].next(children[tgt], action)
        else:
            children[src] - action >> children[tgt]
    node = cls(nid or "top", spec, children[graph["start"]])
    node.set_params(dict(graph["params"]))
    return node


def run_spec(spec: dict[str, Any], is_async: bool):
    def scenario(pf: ModuleType, obs: dict[str, Any]) -> None:
        exec_log: list[Any] = []
        obs["exec_log"] = exec_log
        obs["shared"] = shared = {"steps": 0}
        top = build(pf, spec, "", exec_log)
        if is_async:
            obs["ret"] = asyncio.run(top.run_async(shared))
        else:
            obs["ret"] = top.run(shared)
        obs["top_params_after"] = top.params

    return scenario


def assert_same_everywhere(spec: dict[str, Any], is_async: bool) -> None:
    scenario = run_spec(spec, is_async)
    reference = observe(scenario, pocketflow)
    # only the warnings pocketflow itself emits: no "coroutine never awaited" etc.
    assert {cat for cat, _ in reference.warnings} <= {"UserWarning"}
    for name, mod in IMPLS[1:]:
        got = observe(scenario, mod)
        assert got.exc == reference.exc, name
        assert got.warnings == reference.warnings, name
        assert got.obs == reference.obs, name
        assert got.sleeps == reference.sleeps, name


# --------------------------------------------------------------------------- tests


@SETTINGS
@given(spec=top_spec(is_async=False))
def test_random_sync_graphs_match(spec: dict[str, Any]) -> None:
    assert_same_everywhere(spec, is_async=False)


@settings(SETTINGS, max_examples=examples(100))
@given(spec=top_spec(is_async=True))
def test_random_async_graphs_match(spec: dict[str, Any]) -> None:
    assert_same_everywhere(spec, is_async=True)


@settings(SETTINGS, max_examples=examples(100))
@given(
    script=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=6),
    k=st.integers(2, 8),
    loop_back=st.integers(0, 7),
)
def test_random_chain_with_loop_back(script: list[Any], k: int, loop_back: int) -> None:
    """A chain 0 -> 1 -> ... -> k-1 whose last node loops back on action "a"."""
    leaf = {"kind": "node", "script": script, "fail": 0, "max_retries": 1, "fallback": None}
    leaf["items"] = None
    edges = [(i, "default", i + 1, "rshift") for i in range(k - 1)]
    edges.append((k - 1, "a", loop_back % k, "minus"))
    spec = {
        "kind": "flow",
        "graph": {
            "nodes": [dict(leaf) for _ in range(k)],
            "edges": edges,
            "start": 0,
            "params": {},
        },
        "batch": None,
        "post_action": ...,
    }
    assert_same_everywhere(spec, is_async=False)


def test_spec_runner_is_not_vacuous() -> None:
    """A hand-written spec through the same machinery produces real traffic."""
    leaf = {"kind": "node", "script": ["a"], "fail": 1, "max_retries": 2, "fallback": None}
    leaf["items"] = None
    spec = {
        "kind": "flow",
        "graph": {
            "nodes": [dict(leaf), dict(leaf)],
            "edges": [(0, "a", 1, "minus"), (1, "a", 0, "next")],
            "start": 0,
            "params": {"k": 1},
        },
        "batch": None,
        "post_action": ...,
    }
    out = observe(run_spec(spec, is_async=False), pocketflow)
    assert out.exc is None
    assert out.obs["ret"] == "__stop__"
    assert out.obs["shared"]["steps"] == BUDGET + 2  # the last node's visit, then the flow's
    assert out.warnings == [("UserWarning", "Flow ends: '__stop__' not found in ['a']")]
    assert out.obs["exec_log"][:3] == [
        ("0", "exec", 1, 0),
        ("0", "exec", 1, 1),
        ("1", "exec", 1, 0),
    ]
    assert_same_everywhere(spec, is_async=False)
