"""Differential tests: pflambda's node-graph core against pocketflow 0.0.3.

Every scenario is a function ``scenario(pf, obs)`` written against the pocketflow
API (``pf.Node``, ``pf.Flow``, ...).  It builds a graph, runs it and stores what it
saw into ``obs`` (shared state, return values, call traces, identity checks).  The
harness runs it once per implementation and also records

* every warning raised (category name and exact message text),
* the exception that escaped, if any (type name and message),
* every ``time.sleep`` / ``asyncio.sleep`` call (patched globally, so they are
  recorded and never actually wait).

The outcome on pflambda must equal the outcome on pocketflow, and both must match
the expectations written next to each scenario (so that "both behave the same"
can never hide "both do nothing").

The single intended difference -- async nodes set ``self.cur_retry`` in pflambda,
not in pocketflow 0.0.3 -- is asserted explicitly in ``test_async_cur_retry_*``;
pflambda's additive keyword-only ``name`` in ``test_pflambda_name_extension``.

Also here: the API surface (class hierarchy, constructor signatures, public
methods and which are coroutines, fresh instance state), real concurrency of the
parallel batch classes (an ``asyncio.Barrier`` that only opens once every item
has started, under ``asyncio.wait_for``) and sequential execution of the
non-parallel ones, and a subprocess running a pocketflow-style script with
``PYTHONPATH=tests/shim`` so that ``import pocketflow`` resolves to pflambda.

``PFLAMBDA_CORE_TEST_IMPLS=pocketflow`` runs everything against the reference only.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pocketflow
import pytest

from tests.unit.core_impls import CLASS_NAMES, IMPL_IDS, IMPL_MODULES, Outcome, observe, pflambda_pf

# --------------------------------------------------------------------------- harness

UW = "UserWarning"


@dataclass
class Scenario:
    fn: Callable[[ModuleType, dict[str, Any]], None]
    exc: tuple[str, str] | None
    warns: list[str]
    sleeps: list[tuple[str, float]] | None
    expected: dict[str, Any] = field(default_factory=dict)


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    *,
    exc: tuple[str, str] | None = None,
    warns: tuple[str, ...] = (),
    sleeps: list[tuple[str, float]] | None = None,
    **expected: Any,
):
    """Register a scenario plus what pocketflow 0.0.3 is known to do for it.

    ``warns`` are exact UserWarning messages in order, ``exc`` the escaping
    exception ``(type name, message)``, ``sleeps`` the recorded sleep calls
    (unchecked if None; they are still compared between implementations) and
    ``expected`` a subset of ``obs``.
    """

    def deco(fn):
        SCENARIOS[fn.__name__] = Scenario(fn, exc, list(warns), sleeps, expected)
        return fn

    return deco


def check_against_expectations(sc: Scenario, out: Outcome) -> None:
    assert out.exc == sc.exc
    assert out.warnings == [(UW, m) for m in sc.warns]
    if sc.sleeps is not None:
        assert out.sleeps == sc.sleeps
    for key, value in sc.expected.items():
        assert out.obs[key] == value, key


# --------------------------------------------------------------------------- traced nodes


@types.coroutine
def _yield_to_loop():
    """Let other tasks run (like ``asyncio.sleep(0)``, which the harness records)."""
    yield


class Boom(Exception):
    pass


class NotAnException(BaseException):
    """Not an ``Exception``: the retry loop must not catch it."""


def classes(pf: ModuleType, trace: list[Any]):
    """Traced node classes built on implementation ``pf``; they log into ``trace``."""

    def _action(self, shared):
        return self.action(shared) if callable(self.action) else self.action

    def _visit(self, shared):
        visits = shared.setdefault("visits", {})
        visits[self.name] = visits.get(self.name, 0) + 1

    class TNode(pf.Node):
        def __init__(self, name, *, action=None, fail=0, fallback=None, prep_res=None, **kw):
            super().__init__(**kw)
            self.name, self.action, self.fail, self.fallback = name, action, fail, fallback
            self.prep_value = prep_res

        def prep(self, shared):
            self.attempts = 0
            trace.append((self.name, "prep", dict(self.params)))
            return self.prep_value if self.prep_value is not None else f"{self.name}.p"

        def exec(self, prep_res):
            trace.append((self.name, "exec", prep_res, getattr(self, "cur_retry", "-")))
            self.attempts += 1
            if self.attempts <= self.fail:
                raise Boom(f"{self.name} fail {self.attempts}")
            return f"{self.name}.e({prep_res})"

        def exec_fallback(self, prep_res, exc):
            trace.append((self.name, "fallback", prep_res, type(exc).__name__, str(exc)))
            if self.fallback is None:
                return super().exec_fallback(prep_res, exc)
            return self.fallback

        def post(self, shared, prep_res, exec_res):
            trace.append((self.name, "post", prep_res, exec_res))
            _visit(self, shared)
            return _action(self, shared)

    class TBatch(pf.BatchNode):
        def __init__(self, name, items, *, action=None, fail=None, fallback=None, **kw):
            super().__init__(**kw)
            self.name, self.items, self.action = name, items, action
            self.fail, self.fallback = fail or {}, fallback

        def prep(self, shared):
            self.attempts = {}
            trace.append((self.name, "prep", dict(self.params)))
            return self.items

        def exec(self, item):
            trace.append((self.name, "exec", item, getattr(self, "cur_retry", "-")))
            n = self.attempts[item] = self.attempts.get(item, 0) + 1
            if n <= self.fail.get(item, 0):
                raise Boom(f"{self.name}[{item}] fail {n}")
            return f"{self.name}.e({item})"

        def exec_fallback(self, item, exc):
            trace.append((self.name, "fallback", item, str(exc)))
            if self.fallback is None:
                return super().exec_fallback(item, exc)
            return self.fallback

        def post(self, shared, prep_res, exec_res):
            trace.append((self.name, "post", prep_res, exec_res))
            _visit(self, shared)
            return _action(self, shared)

    class TAsync(pf.AsyncNode):
        def __init__(self, name, *, action=None, fail=0, fallback=None, **kw):
            super().__init__(**kw)
            self.name, self.action, self.fail, self.fallback = name, action, fail, fallback

        async def prep_async(self, shared):
            self.attempts = 0
            await _yield_to_loop()
            trace.append((self.name, "prep_async", dict(self.params)))
            return f"{self.name}.p"

        async def exec_async(self, prep_res):
            trace.append((self.name, "exec_async", prep_res))
            self.attempts += 1
            await _yield_to_loop()
            if self.attempts <= self.fail:
                raise Boom(f"{self.name} fail {self.attempts}")
            return f"{self.name}.e({prep_res})"

        async def exec_fallback_async(self, prep_res, exc):
            trace.append((self.name, "fallback_async", prep_res, str(exc)))
            if self.fallback is None:
                return await super().exec_fallback_async(prep_res, exc)
            return self.fallback

        async def post_async(self, shared, prep_res, exec_res):
            trace.append((self.name, "post_async", prep_res, exec_res))
            _visit(self, shared)
            return _action(self, shared)

    def async_batch(base):
        class TAsyncBatchX(base):
            def __init__(self, name, items, *, action=None, fail=None, fallback=None, **kw):
                super().__init__(**kw)
                self.name, self.items, self.action = name, items, action
                self.fail, self.fallback = fail or {}, fallback

            async def prep_async(self, shared):
                self.attempts = {}
                trace.append((self.name, "prep_async", dict(self.params)))
                return self.items

            async def exec_async(self, item):
                trace.append((self.name, "exec_async:start", item))
                n = self.attempts[item] = self.attempts.get(item, 0) + 1
                await _yield_to_loop()
                trace.append((self.name, "exec_async:end", item))
                if n <= self.fail.get(item, 0):
                    raise Boom(f"{self.name}[{item}] fail {n}")
                return f"{self.name}.e({item})"

            async def exec_fallback_async(self, item, exc):
                trace.append((self.name, "fallback_async", item, str(exc)))
                if self.fallback is None:
                    return await super().exec_fallback_async(item, exc)
                return self.fallback

            async def post_async(self, shared, prep_res, exec_res):
                trace.append((self.name, "post_async", prep_res, exec_res))
                _visit(self, shared)
                return _action(self, shared)

        return TAsyncBatchX

    class NS:
        pass

    ns = NS()
    ns.Node, ns.Batch, ns.Async = TNode, TBatch, TAsync
    ns.AsyncBatch = async_batch(pf.AsyncBatchNode)
    ns.AsyncPar = async_batch(pf.AsyncParallelBatchNode)
    return ns


def traced_flow(pf, trace, base="Flow", *, post_value=..., batch=None, start=None):
    """A flow subclass of ``pf.<base>`` that logs prep/post (sync and async)."""
    cls = getattr(pf, base)

    class TFlow(cls):
        def prep(self, shared):
            trace.append((base, "prep", dict(self.params)))
            return batch

        def post(self, shared, prep_res, exec_res):
            trace.append((base, "post", prep_res, exec_res))
            return exec_res if post_value is ... else post_value

        async def prep_async(self, shared):
            trace.append((base, "prep_async", dict(self.params)))
            return batch

        async def post_async(self, shared, prep_res, exec_res):
            trace.append((base, "post_async", prep_res, exec_res))
            return exec_res if post_value is ... else post_value

    return TFlow(start=start)


# --------------------------------------------------------------------------- wiring


@scenario(
    rshift_returns_target=True,
    chain=[["default"], ["default"], []],
    successor_is_target=True,
)
def wiring_rshift(pf, obs):
    a, b, c = pf.Node(), pf.Node(), pf.Node()
    obs["rshift_returns_target"] = (a >> b) is b
    b >> c
    obs["chain"] = [list(n.successors) for n in (a, b, c)]
    obs["successor_is_target"] = a.successors["default"] is b and b.successors["default"] is c


@scenario(
    returns_target=True,
    succ={"yes": "b", "no": "c"},
    chained=["x"],
)
def wiring_conditional(pf, obs):
    a, b, c, d = pf.Node(), pf.Node(), pf.Node(), pf.Node()
    names = {id(b): "b", id(c): "c", id(d): "d"}
    obs["returns_target"] = (a - "yes" >> b) is b
    a - "no" >> c
    obs["succ"] = {k: names[id(v)] for k, v in a.successors.items()}
    b - "x" >> c - "y" >> d  # chain of conditionals returns the last target
    obs["chained"] = list(b.successors)


@scenario(returns=[True, True], succ=["default", "x"])
def wiring_next_method(pf, obs):
    a, b, c = pf.Node(), pf.Node(), pf.Node()
    obs["returns"] = [a.next(b) is b, a.next(c, "x") is c]
    obs["succ"] = list(a.successors)


@scenario(exc=("TypeError", "Action must be a string"))
def wiring_non_string_action_int(pf, obs):
    a, b = pf.Node(), pf.Node()
    a - 1 >> b


@scenario(exc=("TypeError", "Action must be a string"), succ={})
def wiring_non_string_action_none(pf, obs):
    a = pf.Node()
    obs["succ"] = a.successors
    _ = a - None


@scenario(exc=("TypeError", "Action must be a string"))
def wiring_non_string_action_on_flow(pf, obs):
    _ = pf.Flow() - 3.5


@scenario(
    warns=(
        "Overwriting successor for action 'default'",
        "Overwriting successor for action 'x'",
        "Overwriting successor for action 'default'",
    ),
    final={"default": "d", "x": "c"},
)
def wiring_overwrite_warning(pf, obs):
    a, b, c, d = pf.Node(), pf.Node(), pf.Node(), pf.Node()
    names = {id(b): "b", id(c): "c", id(d): "d"}
    a >> b
    a >> c
    a - "x" >> b
    a - "x" >> c
    a.next(d)
    obs["final"] = {k: names[id(v)] for k, v in a.successors.items()}


@scenario(start_returns=True, start_node_is=True, succ=["default"])
def wiring_flow_start(pf, obs):
    a, b = pf.Node(), pf.Node()
    f = pf.Flow()
    obs["start_returns"] = (f.start(a) >> b) is b
    obs["start_node_is"] = f.start_node is a and pf.Flow(start=b).start_node is b
    obs["succ"] = list(a.successors)


# --------------------------------------------------------------------------- params


@scenario(initial={}, same_object=True, value={"k": 1}, reset={})
def params_set_params(pf, obs):
    n = pf.Node()
    obs["initial"] = n.params
    d = {"k": 1}
    n.set_params(d)
    obs["same_object"] = n.params is d
    obs["value"] = n.params
    n.set_params({})
    obs["reset"] = n.params


@scenario(
    trace=[
        ("a", "prep", {"f": 1}),
        ("a", "exec", "a.p", 0),
        ("a", "post", "a.p", "a.e(a.p)"),
        ("b", "prep", {"f": 1, "from_a": True}),
        ("b", "exec", "b.p", 0),
        ("b", "post", "b.p", "b.e(b.p)"),
    ],
    same_dict_for_all_nodes=True,
    flow_params_untouched={"f": 1},
    flow_params_not_passed=True,
    originals_untouched=[{}, {}],
)
def params_shared_within_orchestration(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    seen: list[dict] = []

    class A(ns.Node):
        def post(self, shared, prep_res, exec_res):
            seen.append(self.params)
            self.params["from_a"] = True  # same dict object: visible to b
            return super().post(shared, prep_res, exec_res)

    class B(ns.Node):
        def post(self, shared, prep_res, exec_res):
            seen.append(self.params)
            return super().post(shared, prep_res, exec_res)

    a, b = A("a"), B("b")
    a >> b
    f = pf.Flow(start=a)
    f.set_params({"f": 1})
    f.run({})
    obs["trace"] = trace
    obs["same_dict_for_all_nodes"] = seen[0] is seen[1]
    obs["flow_params_untouched"] = f.params
    obs["flow_params_not_passed"] = seen[0] is not f.params
    obs["originals_untouched"] = [a.params, b.params]


@scenario(
    trace=[
        ("a", "prep", {"p": 0}),
        ("a", "exec", "a.p", 0),
        ("a", "post", "a.p", "a.e(a.p)"),
    ],
)
def params_node_run_uses_own_params(pf, obs):
    trace: list[Any] = []
    a = classes(pf, trace).Node("a")
    a.set_params({"p": 0})
    a.run({})
    obs["trace"] = trace


# --------------------------------------------------------------------------- Node.run


@scenario(
    ret="act",
    trace=[
        ("a", "prep", {}),
        ("a", "exec", "a.p", 0),
        ("a", "post", "a.p", "a.e(a.p)"),
    ],
    shared={"visits": {"a": 1}},
)
def node_run_plain(pf, obs):
    trace: list[Any] = []
    a = classes(pf, trace).Node("a", action="act")
    obs["shared"] = shared = {}
    obs["ret"] = a.run(shared)
    obs["trace"] = trace


@scenario(
    warns=("Node won't run successors. Use Flow.",),
    ret="go",
    shared={"visits": {"a": 1}},
)
def node_run_with_successors_warns(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    a = ns.Node("a", action="go")
    a - "go" >> ns.Node("b")
    obs["shared"] = shared = {}
    obs["ret"] = a.run(shared)


@scenario(warns=("Node won't run successors. Use Flow.",), ret=None, shared={"visits": {"a": 1}})
def flow_run_with_successors_warns(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    f = pf.Flow(start=ns.Node("a"))
    f >> ns.Node("b")
    obs["shared"] = shared = {}
    obs["ret"] = f.run(shared)


@scenario(
    ret=[None, None, None, None],
    exec_fallback_reraises=("Boom", "x"),
)
def base_hooks_defaults(pf, obs):
    n = pf.BaseNode()
    obs["ret"] = [n.prep({}), n.exec(1), n.post({}, 1, 2), n.run({})]
    exc = Boom("x")
    try:
        pf.Node().exec_fallback(None, exc)
    except Boom as e:
        obs["exec_fallback_reraises"] = (type(e).__name__, str(e)) if e is exc else "other"


# --------------------------------------------------------------------------- Flow routing


@scenario(
    warns=("Flow ends: 'x' not found in ['default', 'y']",),
    ret="x",
    shared={"visits": {"a": 1}},
)
def flow_end_unknown_action(pf, obs):
    ns = classes(pf, [])
    a = ns.Node("a", action="x")
    a >> ns.Node("b")
    a - "y" >> ns.Node("c")
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=a).run(shared)


@scenario(
    warns=("Flow ends: 'None' not found in ['y']",),
    ret=None,
    shared={"visits": {"a": 1}},
)
def flow_end_none_action(pf, obs):
    ns = classes(pf, [])
    a = ns.Node("a", action=None)
    a - "y" >> ns.Node("c")
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=a).run(shared)


@scenario(
    warns=("Flow ends: '7' not found in ['default']",),
    ret=7,
)
def flow_end_non_string_action(pf, obs):
    ns = classes(pf, [])
    a = ns.Node("a", action=7)
    a >> ns.Node("b")
    obs["ret"] = pf.Flow(start=a).run({})


@scenario(ret="done", shared={"visits": {"a": 1, "b": 1}})
def flow_empty_string_and_none_mean_default(pf, obs):
    ns = classes(pf, [])
    a = ns.Node("a", action="")
    a >> ns.Node("b", action="done")
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=a).run(shared)


@scenario(ret="anything", shared={"visits": {"a": 1}})
def flow_terminal_node_no_warning(pf, obs):
    ns = classes(pf, [])
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=ns.Node("a", action="anything")).run(shared)


@scenario(ret="right-done", shared={"visits": {"a": 1, "right": 1}})
def flow_branching(pf, obs):
    ns = classes(pf, [])
    a = ns.Node("a", action="r")
    a - "l" >> ns.Node("left", action="left-done")
    a - "r" >> ns.Node("right", action="right-done")
    a >> ns.Node("default", action="default-done")
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=a).run(shared)


@scenario(ret=None, prep_post=[("Flow", "prep", {}), ("Flow", "post", None, None)])
def flow_without_start(pf, obs):
    trace: list[Any] = []
    obs["ret"] = traced_flow(pf, trace).run({})
    obs["prep_post"] = trace


@scenario(ret=None, trace=[])
def flow_plain_without_start(pf, obs):
    obs["ret"] = pf.Flow().run({})
    obs["trace"] = []


@scenario(
    same_object=True,
    shared={"in": 1, "visits": {"a": 1, "b": 1}},
)
def flow_mutates_callers_shared_in_place(pf, obs):
    ns = classes(pf, [])

    class Check(ns.Node):
        def prep(self, shared):
            obs.setdefault("ids", []).append(shared)
            return super().prep(shared)

    a = Check("a")
    a >> Check("b")
    shared = {"in": 1}
    pf.Flow(start=a).run(shared)
    obs["same_object"] = all(s is shared for s in obs.pop("ids"))
    obs["shared"] = shared


@scenario(
    exc=("Boom", "b fail 1"),
    shared={"visits": {"a": 1}},
    trace_tail=[("b", "exec", "b.p", 0), ("b", "fallback", "b.p", "Boom", "b fail 1")],
)
def flow_exception_propagates(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    a = ns.Node("a")
    a >> ns.Node("b", fail=5) >> ns.Node("c")
    obs["shared"] = shared = {}
    obs["trace_tail"] = trace
    try:
        pf.Flow(start=a).run(shared)
    finally:
        obs["trace_tail"] = trace[-2:]


@scenario(
    exc=("NotAnException", "stop"),
    execs=1,
)
def base_exception_not_retried(pf, obs):
    calls: list[int] = []

    class N(pf.Node):
        def exec(self, prep_res):
            calls.append(1)
            obs["execs"] = len(calls)
            raise NotAnException("stop")

        def exec_fallback(self, prep_res, exc):  # pragma: no cover - must not run
            calls.append(99)
            return "fallback"

    N(max_retries=3).run({})


@scenario(
    warns=("Flow ends: 'None' not found in ['default']",),
    ret=None,
    shared={"visits": {"a": 1}},
    falsy_start_ret=None,
)
def flow_falsy_node_quirk(pf, obs):
    # pocketflow 0.0.3 tests node truthiness (`while curr`, `if not nxt`): a node
    # whose __len__ is 0 ends the flow (with the "Flow ends" warning) unvisited.
    ns = classes(pf, [])

    class Empty(ns.Node):
        def __len__(self):
            return 0

    a = ns.Node("a")
    a >> Empty("z")
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=a).run(shared)
    obs["falsy_start_ret"] = pf.Flow(start=Empty("s")).run(shared)


# --------------------------------------------------------------------------- copies


@scenario(
    warns=("Flow ends: 'end' not found in ['again']",),
    visits=3,
    original_never_run=True,
    distinct_copies=True,
    counter_seen=[0, 0, 0],
    shared_list_seen=[[], ["v"], ["v", "v"]],
    copies_share_successors=True,
    original_counter=0,
    ret="end",
)
def flow_runs_copies_of_nodes(pf, obs):
    selves: list[Any] = []

    class Counter(pf.Node):
        def __init__(self):
            super().__init__()
            self.counter = 0
            self.log: list[str] = []  # shallow copy: the list is shared by copies

        def prep(self, shared):
            selves.append(self)
            obs.setdefault("counter_seen", []).append(self.counter)
            obs.setdefault("shared_list_seen", []).append(list(self.log))
            self.counter += 1
            self.log.append("v")

        def post(self, shared, prep_res, exec_res):
            shared["n"] = shared.get("n", 0) + 1
            return "again" if shared["n"] < 3 else "end"

    c = Counter()
    c - "again" >> c
    obs["ret"] = pf.Flow(start=c).run({})
    obs["visits"] = len(selves)
    obs["original_never_run"] = all(s is not c for s in selves)
    obs["distinct_copies"] = all(
        selves[i] is not selves[j] for i in range(len(selves)) for j in range(i)
    )
    obs["copies_share_successors"] = all(s.successors is c.successors for s in selves)
    obs["original_counter"] = c.counter
    obs["original_params_untouched"] = c.params


@scenario(start_is_copy=True, class_preserved=True)
def flow_copy_is_shallow_copy(pf, obs):
    seen: list[Any] = []

    class N(pf.Node):
        def __copy__(self):
            seen.append("copied")
            new = type(self).__new__(type(self))
            new.__dict__.update(self.__dict__)
            return new

        def prep(self, shared):
            seen.append(self)

    n = N()
    pf.Flow(start=n).run({})
    obs["start_is_copy"] = seen[0] == "copied" and seen[1] is not n
    obs["class_preserved"] = type(seen[1]) is N


# --------------------------------------------------------------------------- nested flows


@scenario(
    ret="outer-done",
    trace=[
        ("a", "prep", {"o": 1}),
        ("a", "exec", "a.p", 0),
        ("a", "post", "a.p", "a.e(a.p)"),
        ("Flow", "prep", {"o": 1}),
        ("i1", "prep", {"o": 1, "leak": True}),
        ("i1", "exec", "i1.p", 0),
        ("i1", "post", "i1.p", "i1.e(i1.p)"),
        ("i2", "prep", {"o": 1, "leak": True}),
        ("i2", "exec", "i2.p", 0),
        ("i2", "post", "i2.p", "i2.e(i2.p)"),
        ("Flow", "post", None, "inner-last"),
        ("z", "prep", {"o": 1}),
        ("z", "exec", "z.p", 0),
        ("z", "post", "z.p", "z.e(z.p)"),
    ],
    inner_dict_is_copy=True,
    outer_flow_params={"o": 1},
)
def nested_flow_last_action_drives_outer(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    dicts: dict[str, Any] = {}

    class A(ns.Node):
        def prep(self, shared):
            dicts["outer"] = self.params
            return super().prep(shared)

    class I1(ns.Node):
        def prep(self, shared):
            dicts["inner"] = self.params
            self.params["leak"] = True  # inner orchestration's dict, not the outer's
            return super().prep(shared)

    i1 = I1("i1")
    i1 >> ns.Node("i2", action="inner-last")
    inner = traced_flow(pf, trace, start=i1)
    a = A("a")
    a >> inner
    inner - "inner-last" >> ns.Node("z", action="outer-done")
    inner >> ns.Node("wrong")
    outer = pf.Flow(start=a)
    outer.set_params({"o": 1})
    obs["ret"] = outer.run({})
    obs["trace"] = trace
    obs["inner_dict_is_copy"] = dicts["inner"] is not dicts["outer"]
    obs["outer_flow_params"] = outer.params


@scenario(ret="custom", outer_ret="after", shared={"visits": {"i": 1, "after": 1}})
def flow_post_value_is_action(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    inner = traced_flow(pf, trace, post_value="custom", start=ns.Node("i", action="ignored"))
    obs["ret"] = copy.copy(inner).run({})
    inner - "custom" >> ns.Node("after", action="after")
    obs["shared"] = shared = {}
    obs["outer_ret"] = pf.Flow(start=inner).run(shared)


@scenario(
    ret="z",
    shared={"visits": {"x": 1, "y": 1, "z": 1}},
)
def flow_three_levels(pf, obs):
    ns = classes(pf, [])
    l3 = pf.Flow(start=ns.Node("x", action="deep"))
    l2 = pf.Flow(start=l3)
    l3 - "deep" >> ns.Node("y", action="mid")
    l1 = pf.Flow(start=l2)
    l2 - "mid" >> ns.Node("z", action="z")
    obs["shared"] = shared = {}
    obs["ret"] = l1.run(shared)


@scenario(
    ret=None,
    shared={"n": 5, "visits": {"a": 5, "b": 5, "end": 1}},
)
def flow_loop_n_iterations(pf, obs):
    ns = classes(pf, [])

    def b_action(shared):
        shared["n"] = shared.get("n", 0) + 1
        return "loop" if shared["n"] < 5 else "exit"

    a = ns.Node("a")
    b = ns.Node("b", action=b_action)
    a >> b
    b - "loop" >> a
    b - "exit" >> ns.Node("end")
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=a).run(shared)


# --------------------------------------------------------------------------- retries


@scenario(
    ret="a.e(a.p)",
    trace=[
        ("a", "prep", {}),
        ("a", "exec", "a.p", 0),
        ("a", "exec", "a.p", 1),
        ("a", "exec", "a.p", 2),
        ("a", "post", "a.p", "a.e(a.p)"),
    ],
    sleeps=[],
)
def retry_succeeds_on_third_attempt(pf, obs):
    trace: list[Any] = []
    a = classes(pf, trace).Node("a", fail=2, max_retries=3)
    a.action = lambda shared: trace[-1][3]
    obs["ret"] = a.run({})
    obs["trace"] = trace


@scenario(
    sleeps=[("time.sleep", 0.25), ("time.sleep", 0.25)],
    cur_retries=[0, 1, 2],
    exec_res="fb",
)
def retry_wait_uses_time_sleep(pf, obs):
    trace: list[Any] = []
    a = classes(pf, trace).Node("a", fail=9, max_retries=3, wait=0.25, fallback="fb")
    a.run({})
    obs["cur_retries"] = [t[3] for t in trace if t[1] == "exec"]
    obs["exec_res"] = trace[-1][3]


@scenario(exc=("Boom", "a fail 3"), attempts=3)
def retry_exhausted_reraises_last(pf, obs):
    trace: list[Any] = []
    a = classes(pf, trace).Node("a", fail=9, max_retries=3)
    try:
        a.run({})
    finally:
        obs["attempts"] = sum(1 for t in trace if t[1] == "exec")


@scenario(
    fallback_args=[("a", "fallback", "P", "Boom", "a fail 2")],
    post_exec_res="recovered",
    same_exception_object=True,
)
def retry_fallback_receives_exception(pf, obs):
    raised: list[BaseException] = []
    received: list[BaseException] = []
    trace: list[Any] = []
    ns = classes(pf, trace)

    class A(ns.Node):
        def exec(self, prep_res):
            try:
                return super().exec(prep_res)
            except Boom as e:
                raised.append(e)
                raise

        def exec_fallback(self, prep_res, exc):
            received.append(exc)
            return super().exec_fallback(prep_res, exc)

    A("a", fail=9, max_retries=2, fallback="recovered", prep_res="P").run({})
    obs["fallback_args"] = [t for t in trace if t[1] == "fallback"]
    obs["post_exec_res"] = trace[-1][3]
    obs["same_exception_object"] = received[0] is raised[-1]


@scenario(exc=("KeyError", "'from fallback'"))
def retry_fallback_raising_other(pf, obs):
    class A(pf.Node):
        def exec(self, prep_res):
            raise Boom("x")

        def exec_fallback(self, prep_res, exc):
            raise KeyError("from fallback")

    A().run({})


@scenario(
    trace=[("a", "prep", {}), ("a", "post", "a.p", None)],
    has_cur_retry=False,
    ret_neg=None,
)
def retry_max_retries_zero(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    a = ns.Node("a", max_retries=0, action="x")
    obs["ret"] = a.run({})
    obs["trace"] = list(trace)
    obs["has_cur_retry"] = hasattr(a, "cur_retry")
    obs["ret_neg"] = ns.Node("n", max_retries=-1).run({})


@scenario(
    original_has_cur_retry=False,
    original_attrs={"max_retries": 2, "wait": 0},
)
def retry_state_lives_on_the_copy(pf, obs):
    trace: list[Any] = []
    a = classes(pf, trace).Node("a", fail=1, max_retries=2)
    pf.Flow(start=a).run({})
    obs["trace"] = trace
    obs["original_has_cur_retry"] = hasattr(a, "cur_retry")
    obs["original_attrs"] = {"max_retries": a.max_retries, "wait": a.wait}


# --------------------------------------------------------------------------- BatchNode


@scenario(
    trace=[
        ("b", "prep", {}),
        ("b", "exec", 1, 0),
        ("b", "exec", 2, 0),
        ("b", "exec", 3, 0),
        ("b", "post", [1, 2, 3], ["b.e(1)", "b.e(2)", "b.e(3)"]),
    ],
)
def batch_node_list(pf, obs):
    trace: list[Any] = []
    classes(pf, trace).Batch("b", [1, 2, 3]).run({})
    obs["trace"] = trace


@scenario(trace=[("b", "prep", {}), ("b", "post", None, [])])
def batch_node_none(pf, obs):
    trace: list[Any] = []
    classes(pf, trace).Batch("b", None).run({})
    obs["trace"] = trace


@scenario(trace=[("b", "prep", {}), ("b", "post", [], [])])
def batch_node_empty(pf, obs):
    trace: list[Any] = []
    classes(pf, trace).Batch("b", []).run({})
    obs["trace"] = trace


@scenario(posts=[("b", "post", ("x", "y"), ["b.e(x)", "b.e(y)"])])
def batch_node_tuple(pf, obs):
    trace: list[Any] = []
    classes(pf, trace).Batch("b", ("x", "y")).run({})
    obs["posts"] = [t for t in trace if t[1] == "post"]


@scenario(
    trace=[
        ("b", "prep", {}),
        ("b", "exec", 1, 0),
        ("b", "exec", 2, 0),
        ("b", "exec", 2, 1),
        ("b", "exec", 3, 0),
        ("b", "exec", 3, 1),
        ("b", "fallback", 3, "b[3] fail 2"),
        ("b", "post", [1, 2, 3], ["b.e(1)", "b.e(2)", "FB"]),
    ],
    sleeps=[("time.sleep", 0.5), ("time.sleep", 0.5)],
)
def batch_node_retries_per_item(pf, obs):
    trace: list[Any] = []
    b = classes(pf, trace).Batch("b", [1, 2, 3], fail={2: 1, 3: 5}, max_retries=2, wait=0.5)
    b.fallback = "FB"
    b.run({})
    obs["trace"] = trace


@scenario(exc=("Boom", "b[2] fail 1"), execs=[1, 2])
def batch_node_failure_stops_batch(pf, obs):
    trace: list[Any] = []
    try:
        classes(pf, trace).Batch("b", [1, 2, 3], fail={2: 1}).run({})
    finally:
        obs["execs"] = [t[2] for t in trace if t[1] == "exec"]


@scenario(
    ret="next",
    shared={"visits": {"b": 1, "n": 1}},
)
def batch_node_in_flow(pf, obs):
    ns = classes(pf, [])
    b = ns.Batch("b", ["q"], action="go")
    b - "go" >> ns.Node("n", action="next")
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=b).run(shared)


# --------------------------------------------------------------------------- BatchFlow


@scenario(
    ret=None,
    trace=[
        ("BatchFlow", "prep", {"a": 1, "b": 0}),
        ("n", "prep", {"a": 1, "b": 1}),
        ("n", "exec", "n.p", 0),
        ("n", "post", "n.p", "n.e(n.p)"),
        ("m", "prep", {"a": 1, "b": 1}),
        ("m", "exec", "m.p", 0),
        ("m", "post", "m.p", "m.e(m.p)"),
        ("n", "prep", {"a": 1, "b": 2, "c": 3}),
        ("n", "exec", "n.p", 0),
        ("n", "post", "n.p", "n.e(n.p)"),
        ("m", "prep", {"a": 1, "b": 2, "c": 3}),
        ("m", "exec", "m.p", 0),
        ("m", "post", "m.p", "m.e(m.p)"),
        ("BatchFlow", "post", [{"b": 1}, {"b": 2, "c": 3}], None),
    ],
    flow_params={"a": 1, "b": 0},
)
def batch_flow_param_merging(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    n = ns.Node("n", action="m")
    n - "m" >> ns.Node("m")
    bf = traced_flow(pf, trace, "BatchFlow", batch=[{"b": 1}, {"b": 2, "c": 3}], start=n)
    bf.set_params({"a": 1, "b": 0})
    obs["ret"] = bf.run({})
    obs["trace"] = trace
    obs["flow_params"] = bf.params


@scenario(
    ret="post-ret",
    trace=[("BatchFlow", "prep", {}), ("BatchFlow", "post", [], None)],
)
def batch_flow_prep_none(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    bf = traced_flow(pf, trace, "BatchFlow", batch=None, post_value="post-ret", start=ns.Node("n"))
    obs["ret"] = bf.run({})
    obs["trace"] = trace


@scenario(params_seen=[{"p": 1}, {"p": 1}], ret=None)
def batch_flow_empty_batch_params(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    bf = traced_flow(pf, trace, "BatchFlow", batch=[{}, {}], start=ns.Node("n"))
    bf.set_params({"p": 1})
    obs["ret"] = bf.run({})
    obs["params_seen"] = [t[2] for t in trace if t[0] == "n" and t[1] == "prep"]


@scenario(ret=None, trace=[])
def batch_flow_plain_default_prep(pf, obs):
    trace: list[Any] = []
    obs["ret"] = pf.BatchFlow(start=classes(pf, trace).Node("n")).run({})
    obs["trace"] = trace


@scenario(
    warns=("Flow ends: 'x' not found in ['default']",) * 2,
    ret=None,
)
def batch_flow_flow_end_warning_per_batch(pf, obs):
    ns = classes(pf, [])
    n = ns.Node("n", action="x")
    n >> ns.Node("never")
    obs["ret"] = traced_flow(pf, [], "BatchFlow", batch=[{"i": 1}, {"i": 2}], start=n).run({})


@scenario(
    ret="tail",
    params_seen=[
        ("n", {"outer": 1, "k": "a"}),
        ("n", {"outer": 1, "k": "b"}),
        ("tail", {"outer": 1}),
    ],
    shared={"visits": {"n": 2, "tail": 1}},
)
def batch_flow_nested_in_flow(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    bf = traced_flow(pf, [], "BatchFlow", batch=[{"k": "a"}, {"k": "b"}], start=ns.Node("n"))
    bf >> ns.Node("tail", action="tail")  # BatchFlow.post returns None -> "default"
    outer = pf.Flow(start=bf)
    outer.set_params({"outer": 1})
    obs["shared"] = shared = {}
    obs["ret"] = outer.run(shared)
    obs["params_seen"] = [(t[0], t[2]) for t in trace if t[1] == "prep"]


@scenario(
    params_seen=[
        {"o": 0, "i": 1, "j": 1},
        {"o": 0, "i": 1, "j": 2},
        {"o": 0, "i": 2, "j": 1},
        {"o": 0, "i": 2, "j": 2},
    ],
)
def batch_flow_inside_batch_flow(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)

    class Inner(pf.BatchFlow):
        def prep(self, shared):
            return [{"j": 1}, {"j": 2}]

    class Outer(pf.BatchFlow):
        def prep(self, shared):
            return [{"i": 1}, {"i": 2}]

    outer = Outer(start=Inner(start=ns.Node("leaf")))
    outer.set_params({"o": 0})
    outer.run({})
    obs["params_seen"] = [t[2] for t in trace if t[1] == "prep"]


@scenario(ret="via-post", shared={"visits": {"n": 1, "after": 1}})
def batch_flow_post_action_in_outer(pf, obs):
    ns = classes(pf, [])
    bf = traced_flow(pf, [], "BatchFlow", batch=[{}], post_value="go", start=ns.Node("n"))
    bf - "go" >> ns.Node("after", action="via-post")
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=bf).run(shared)


# --------------------------------------------------------------------------- async basics


@scenario(exc=("RuntimeError", "Use run_async."), visits=None)
def async_node_run_raises(pf, obs):
    shared: dict[str, Any] = {}
    try:
        classes(pf, []).Async("a").run(shared)
    finally:
        obs["visits"] = shared.get("visits")


@scenario(
    warns=("Node won't run successors. Use Flow.",),
    exc=("RuntimeError", "Use run_async."),
)
def async_node_run_with_successors(pf, obs):
    ns = classes(pf, [])
    a = ns.Async("a")
    a >> ns.Async("b")
    a.run({})


@scenario(exc=("RuntimeError", "Use run_async."))
def async_node_in_sync_flow_raises(pf, obs):
    ns = classes(pf, [])
    a = ns.Node("a")
    a >> ns.Async("b")
    pf.Flow(start=a).run({})


@scenario(
    warns=("Node won't run successors. Use AsyncFlow.",),
    ret="act",
    trace=[
        ("a", "prep_async", {}),
        ("a", "exec_async", "a.p"),
        ("a", "post_async", "a.p", "a.e(a.p)"),
    ],
)
def async_node_run_async_with_successors_warns(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    a = ns.Async("a", action="act")
    a - "act" >> ns.Async("b")
    obs["ret"] = asyncio.run(a.run_async({}))
    obs["trace"] = trace


@scenario(ret="n2", hooks=[None, None, None, None], fallback_reraises=True)
def async_node_default_hooks(pf, obs):
    n = pf.AsyncNode()

    async def go():
        exc = Boom("q")
        out = [
            await n.prep_async({}),
            await n.exec_async(1),
            await n.post_async({}, 1, 2),
            await n.run_async({}),
        ]
        try:
            await n.exec_fallback_async(None, exc)
        except Boom as e:
            obs["fallback_reraises"] = e is exc
        return out

    obs["hooks"] = asyncio.run(go())

    class N2(pf.AsyncNode):
        async def post_async(self, shared, prep_res, exec_res):
            return "n2"

    obs["ret"] = asyncio.run(N2().run_async({}))


@scenario(
    ret="end",
    trace=[
        ("AsyncFlow", "prep_async", {"f": 1}),
        ("a", "prep_async", {"f": 1}),
        ("a", "exec_async", "a.p"),
        ("a", "post_async", "a.p", "a.e(a.p)"),
        ("s", "prep", {"f": 1}),
        ("s", "exec", "s.p", 0),
        ("s", "post", "s.p", "s.e(s.p)"),
        ("b", "prep_async", {"f": 1}),
        ("b", "exec_async", "b.p"),
        ("b", "post_async", "b.p", "b.e(b.p)"),
        ("AsyncFlow", "post_async", None, "end"),
    ],
    shared={"visits": {"a": 1, "s": 1, "b": 1}},
)
def async_flow_mixed_sync_and_async(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    a = ns.Async("a", action="to-sync")
    a - "to-sync" >> ns.Node("s") >> ns.Async("b", action="end")
    f = traced_flow(pf, trace, "AsyncFlow", start=a)
    f.set_params({"f": 1})
    obs["shared"] = shared = {}
    obs["ret"] = asyncio.run(f.run_async(shared))
    obs["trace"] = trace


@scenario(ret="a", shared={"visits": {"a": 1}})
def async_flow_plain_return_value(pf, obs):
    ns = classes(pf, [])
    obs["shared"] = shared = {}
    obs["ret"] = asyncio.run(pf.AsyncFlow(start=ns.Async("a", action="a")).run_async(shared))


@scenario(
    warns=("Node won't run successors. Use AsyncFlow.",),
    ret=None,
)
def async_flow_run_async_with_successors_warns(pf, obs):
    ns = classes(pf, [])
    f = pf.AsyncFlow(start=ns.Async("a"))
    f >> ns.Async("b")
    obs["ret"] = asyncio.run(f.run_async({}))


@scenario(
    warns=("Flow ends: 'nope' not found in ['default']",),
    ret="nope",
)
def async_flow_end_warning(pf, obs):
    ns = classes(pf, [])
    a = ns.Async("a", action="nope")
    a >> ns.Async("b")
    obs["ret"] = asyncio.run(pf.AsyncFlow(start=a).run_async({}))


@scenario(
    ret="outer",
    shared={"visits": {"x": 1, "sync-inner": 1, "y": 1, "z": 1}},
    order=["x", "sync-inner", "y", "z"],
)
def async_flow_nested_flows(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    inner_async = pf.AsyncFlow(start=ns.Async("x", action="ia"))
    inner_sync = pf.Flow(start=ns.Node("sync-inner", action="is"))
    inner_async - "ia" >> inner_sync
    inner_sync - "is" >> ns.Async("y") >> ns.Async("z", action="outer")
    obs["shared"] = shared = {}
    obs["ret"] = asyncio.run(pf.AsyncFlow(start=inner_async).run_async(shared))
    obs["order"] = [t[0] for t in trace if t[1] in ("post", "post_async")]


@scenario(
    warns=("Flow ends: 'None' not found in ['loop']",),
    ret=None,
    shared={"n": 4, "visits": {"a": 4, "b": 4}},
)
def async_flow_loop(pf, obs):
    ns = classes(pf, [])

    def b_action(shared):
        shared["n"] = shared.get("n", 0) + 1
        return "loop" if shared["n"] < 4 else None

    a = ns.Async("a")
    b = ns.Node("b", action=b_action)
    a >> b
    b - "loop" >> a
    obs["shared"] = shared = {}
    obs["ret"] = asyncio.run(pf.AsyncFlow(start=a).run_async(shared))


@scenario(ret="after-sync-flow", shared={"visits": {"s": 1}})
def async_flow_run_sync_with_only_sync_nodes(pf, obs):
    # pocketflow 0.0.3 quirk: AsyncFlow inherits Flow._run, so .run() works
    # synchronously as long as no AsyncNode is reached.
    ns = classes(pf, [])
    obs["shared"] = shared = {}
    obs["ret"] = pf.AsyncFlow(start=ns.Node("s", action="after-sync-flow")).run(shared)


@scenario(exc=("RuntimeError", "Use run_async."))
def async_flow_run_sync_with_async_node(pf, obs):
    pf.AsyncFlow(start=classes(pf, []).Async("a")).run({})


@scenario(ret="t", shared={"visits": {"s": 1, "t": 1}})
def async_flow_nested_in_sync_flow_runs_sync(pf, obs):
    # pocketflow 0.0.3 quirk: a sync Flow calls AsyncFlow._run == Flow._run.
    ns = classes(pf, [])
    af = pf.AsyncFlow(start=ns.Node("s", action="x"))
    af - "x" >> ns.Node("t", action="t")
    obs["shared"] = shared = {}
    obs["ret"] = pf.Flow(start=af).run(shared)


@scenario(exc=("Boom", "a fail 1"), shared={"visits": {"s": 1}})
def async_flow_exception_propagates(pf, obs):
    ns = classes(pf, [])
    s = ns.Node("s")
    s >> ns.Async("a", fail=1)
    obs["shared"] = shared = {}
    asyncio.run(pf.AsyncFlow(start=s).run_async(shared))


@scenario(same_object=True, shared={"k": "v", "visits": {"a": 1}})
def async_flow_mutates_callers_shared(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)

    class A(ns.Async):
        async def prep_async(self, shared):
            obs["same_object"] = shared is obs["shared"]
            return await super().prep_async(shared)

    obs["shared"] = shared = {"k": "v"}
    asyncio.run(pf.AsyncFlow(start=A("a")).run_async(shared))
    obs["shared"] = shared


@scenario(
    warns=("Flow ends: 'None' not found in ['again']",),
    original_never_run=True,
    counters=[0, 0, 0],
)
def async_flow_runs_copies(pf, obs):
    selves: list[Any] = []

    class C(pf.AsyncNode):
        def __init__(self):
            super().__init__()
            self.counter = 0

        async def prep_async(self, shared):
            selves.append(self)
            obs.setdefault("counters", []).append(self.counter)
            self.counter += 1

        async def post_async(self, shared, prep_res, exec_res):
            shared["n"] = shared.get("n", 0) + 1
            return "again" if shared["n"] < 3 else None

    c = C()
    c - "again" >> c
    asyncio.run(pf.AsyncFlow(start=c).run_async({}))
    obs["original_never_run"] = all(s is not c for s in selves) and len(selves) == 3


# --------------------------------------------------------------------------- async retries


@scenario(
    ret="a.e(a.p)",
    sleeps=[("asyncio.sleep", 0.125)],
    execs=2,
)
def async_retry_succeeds_with_wait(pf, obs):
    trace: list[Any] = []
    a = classes(pf, trace).Async("a", fail=1, max_retries=3, wait=0.125)
    a.action = lambda shared: trace[-1][3]
    obs["ret"] = asyncio.run(a.run_async({}))
    obs["execs"] = sum(1 for t in trace if t[1] == "exec_async")


@scenario(
    fallback=[("a", "fallback_async", "a.p", "a fail 2")],
    post_exec_res="saved",
)
def async_retry_fallback(pf, obs):
    trace: list[Any] = []
    a = classes(pf, trace).Async("a", fail=9, max_retries=2, fallback="saved")
    asyncio.run(a.run_async({}))
    obs["fallback"] = [t for t in trace if t[1] == "fallback_async"]
    obs["post_exec_res"] = trace[-1][3]


@scenario(exc=("Boom", "a fail 2"), execs=2)
def async_retry_exhausted_reraises(pf, obs):
    trace: list[Any] = []
    try:
        asyncio.run(classes(pf, trace).Async("a", fail=9, max_retries=2).run_async({}))
    finally:
        obs["execs"] = sum(1 for t in trace if t[1] == "exec_async")


@scenario(execs=0, post_exec_res=None)
def async_max_retries_zero(pf, obs):
    trace: list[Any] = []
    asyncio.run(classes(pf, trace).Async("a", max_retries=0).run_async({}))
    obs["execs"] = sum(1 for t in trace if t[1] == "exec_async")
    obs["post_exec_res"] = trace[-1][3]


@scenario(exc=("NotAnException", "halt"), execs=1)
def async_base_exception_not_retried(pf, obs):
    n = []

    class A(pf.AsyncNode):
        async def exec_async(self, prep_res):
            n.append(1)
            obs["execs"] = len(n)
            raise NotAnException("halt")

    asyncio.run(A(max_retries=4).run_async({}))


# --------------------------------------------------------------------------- async batch


@scenario(
    trace=[
        ("ab", "prep_async", {}),
        ("ab", "exec_async:start", 1),
        ("ab", "exec_async:end", 1),
        ("ab", "exec_async:start", 2),
        ("ab", "exec_async:end", 2),
        ("ab", "exec_async:start", 2),
        ("ab", "exec_async:end", 2),
        ("ab", "exec_async:start", 3),
        ("ab", "exec_async:end", 3),
        ("ab", "post_async", [1, 2, 3], ["ab.e(1)", "ab.e(2)", "ab.e(3)"]),
    ],
    ret="r",
)
def async_batch_node_sequential(pf, obs):
    trace: list[Any] = []
    b = classes(pf, trace).AsyncBatch("ab", [1, 2, 3], fail={2: 1}, max_retries=2, action="r")
    obs["ret"] = asyncio.run(b.run_async({}))
    obs["trace"] = trace


@scenario(exc=("TypeError", "'NoneType' object is not iterable"))
def async_batch_node_none(pf, obs):
    # pocketflow 0.0.3: unlike BatchNode, AsyncBatchNode iterates items directly
    asyncio.run(classes(pf, []).AsyncBatch("ab", None).run_async({}))


@scenario(post=[("ab", "post_async", [], [])])
def async_batch_node_empty(pf, obs):
    trace: list[Any] = []
    asyncio.run(classes(pf, trace).AsyncBatch("ab", []).run_async({}))
    obs["post"] = [t for t in trace if t[1] == "post_async"]


@scenario(
    trace=[
        ("ap", "prep_async", {}),
        ("ap", "exec_async:start", 1),
        ("ap", "exec_async:start", 2),
        ("ap", "exec_async:start", 3),
        ("ap", "exec_async:end", 1),
        ("ap", "exec_async:end", 2),
        ("ap", "exec_async:end", 3),
        ("ap", "fallback_async", 3, "ap[3] fail 1"),
        ("ap", "post_async", [1, 2, 3], ["ap.e(1)", "ap.e(2)", "X"]),
    ],
)
def async_parallel_batch_node(pf, obs):
    trace: list[Any] = []
    b = classes(pf, trace).AsyncPar("ap", [1, 2, 3], fail={3: 1}, fallback="X")
    asyncio.run(b.run_async({}))
    obs["trace"] = trace


@scenario(exc=("TypeError", "'NoneType' object is not iterable"))
def async_parallel_batch_node_none(pf, obs):
    asyncio.run(classes(pf, []).AsyncPar("ap", None).run_async({}))


@scenario(exc=("Boom", "ap[2] fail 1"))
def async_parallel_batch_node_failure(pf, obs):
    asyncio.run(classes(pf, []).AsyncPar("ap", [1, 2], fail={2: 1}).run_async({}))


@scenario(
    ret="abf-post",
    params_seen=[{"f": 0, "i": 1}, {"f": 0, "i": 1}, {"f": 0, "i": 2}, {"f": 0, "i": 2}],
    order=["prep_async", "a1", "s1", "a2", "s2", "post_async"],
    post_args=("AsyncBatchFlow", "post_async", [{"i": 1}, {"i": 2}], None),
)
def async_batch_flow(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    a = ns.Async("a")
    a >> ns.Node("s")
    bf = traced_flow(
        pf, trace, "AsyncBatchFlow", batch=[{"i": 1}, {"i": 2}], post_value="abf-post", start=a
    )
    bf.set_params({"f": 0})
    obs["ret"] = asyncio.run(bf.run_async({}))
    obs["params_seen"] = [t[2] for t in trace if t[1] in ("prep", "prep_async") and t[0] in "as"]
    obs["order"] = [
        t[1] if t[0] == "AsyncBatchFlow" else f"{t[0]}{t[2]['i']}"
        for t in trace
        if t[1] in ("prep", "prep_async")
    ] + ["post_async"]
    obs["post_args"] = trace[-1]


@scenario(
    ret=None,
    trace=[("AsyncBatchFlow", "prep_async", {}), ("AsyncBatchFlow", "post_async", [], None)],
)
def async_batch_flow_prep_none(pf, obs):
    trace: list[Any] = []
    bf = traced_flow(pf, trace, "AsyncBatchFlow", batch=None, start=classes(pf, trace).Async("a"))
    obs["ret"] = asyncio.run(bf.run_async({}))
    obs["trace"] = trace


@scenario(
    ret=None,
    trace=[
        ("AsyncParallelBatchFlow", "prep_async", {"f": 0}),
        # the two orchestrations interleave at every await
        ("a", "prep_async", {"f": 0, "i": 1}),
        ("a", "exec_async", "a.p"),
        ("a", "prep_async", {"f": 0, "i": 2}),
        ("a", "exec_async", "a.p"),
        ("a", "post_async", "a.p", "a.e(a.p)"),
        ("s", "prep", {"f": 0, "i": 1}),
        ("s", "exec", "s.p", 0),
        ("s", "post", "s.p", "s.e(s.p)"),
        ("a", "post_async", "a.p", "a.e(a.p)"),
        ("s", "prep", {"f": 0, "i": 2}),
        ("s", "exec", "s.p", 0),
        ("s", "post", "s.p", "s.e(s.p)"),
        ("AsyncParallelBatchFlow", "post_async", [{"i": 1}, {"i": 2}], None),
    ],
    shared={"visits": {"a": 2, "s": 2}},
)
def async_parallel_batch_flow(pf, obs):
    trace: list[Any] = []
    ns = classes(pf, trace)
    a = ns.Async("a")
    a >> ns.Node("s")
    bf = traced_flow(pf, trace, "AsyncParallelBatchFlow", batch=[{"i": 1}, {"i": 2}], start=a)
    bf.set_params({"f": 0})
    obs["shared"] = shared = {}
    obs["ret"] = asyncio.run(bf.run_async(shared))
    obs["trace"] = trace


@scenario(
    ret=None,
    trace=[
        ("AsyncParallelBatchFlow", "prep_async", {}),
        ("AsyncParallelBatchFlow", "post_async", [], None),
    ],
)
def async_parallel_batch_flow_prep_none(pf, obs):
    trace: list[Any] = []
    bf = traced_flow(pf, trace, "AsyncParallelBatchFlow", batch=None, start=None)
    obs["ret"] = asyncio.run(bf.run_async({}))
    obs["trace"] = trace


@scenario(ret="next", shared={"visits": {"leaf": 2, "next": 1}})
def async_batch_flow_nested_in_async_flow(pf, obs):
    ns = classes(pf, [])

    class ABF(pf.AsyncBatchFlow):
        async def prep_async(self, shared):
            return [{"k": 1}, {"k": 2}]

    bf = ABF(start=ns.Async("leaf"))
    bf >> ns.Node("next", action="next")
    obs["shared"] = shared = {}
    obs["ret"] = asyncio.run(pf.AsyncFlow(start=bf).run_async(shared))


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_matches_pocketflow(name: str, impl: ModuleType) -> None:
    sc = SCENARIOS[name]
    reference = observe(sc.fn, pocketflow)
    check_against_expectations(sc, reference)  # documents what pocketflow 0.0.3 does
    if impl is pocketflow:
        return
    got = observe(sc.fn, impl)
    assert got.exc == reference.exc
    assert got.warnings == reference.warnings
    assert got.sleeps == reference.sleeps
    assert got.obs == reference.obs
    check_against_expectations(sc, got)


# --------------------------------------------------------------------------- cur_retry


def _async_cur_retries(pf: ModuleType) -> tuple[list[Any], Any]:
    seen: list[Any] = []

    class A(pf.AsyncNode):
        async def exec_async(self, prep_res):
            seen.append(getattr(self, "cur_retry", "<unset>"))
            if len(seen) < 3:
                raise Boom("again")
            return "ok"

    node = A(max_retries=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(node.run_async({}))
    assert caught == []
    return seen, node


def test_async_cur_retry_not_set_by_pocketflow_003() -> None:
    """pocketflow 0.0.3's AsyncNode._exec loops over a local ``i``: no cur_retry."""
    seen, node = _async_cur_retries(pocketflow)
    assert seen == ["<unset>"] * 3
    assert not hasattr(node, "cur_retry")


@pytest.mark.skipif(pflambda_pf is None, reason="pflambda disabled via PFLAMBDA_CORE_TEST_IMPLS")
def test_async_cur_retry_set_by_pflambda() -> None:
    """The one intended difference: pflambda's async retry loop sets self.cur_retry."""
    seen, node = _async_cur_retries(pflambda_pf)
    assert seen == [0, 1, 2]
    assert node.cur_retry == 2


@pytest.mark.skipif(pflambda_pf is None, reason="pflambda disabled via PFLAMBDA_CORE_TEST_IMPLS")
def test_async_batch_cur_retry_set_by_pflambda_per_item() -> None:
    seen: list[tuple[str, int]] = []
    failed: set[str] = set()

    class B(pflambda_pf.AsyncBatchNode):
        async def prep_async(self, shared):
            return ["x", "y"]

        async def exec_async(self, item):
            seen.append((item, self.cur_retry))
            if item not in failed:
                failed.add(item)
                raise Boom(item)
            return item

    assert asyncio.run(B(max_retries=2).run_async({})) is None
    assert seen == [("x", 0), ("x", 1), ("y", 0), ("y", 1)]


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
def test_sync_cur_retry_same_everywhere(impl: ModuleType) -> None:
    seen: list[int] = []

    class A(impl.Node):
        def exec(self, prep_res):
            seen.append(self.cur_retry)
            raise Boom("x")

        def exec_fallback(self, prep_res, exc):
            return self.cur_retry

    class P(A):
        def post(self, shared, prep_res, exec_res):
            return exec_res

    assert P(max_retries=4).run({}) == 3
    assert seen == [0, 1, 2, 3]


# --------------------------------------------------------------------------- name


def test_pocketflow_003_nodes_have_no_name() -> None:
    assert not hasattr(pocketflow.Node(), "name")
    with pytest.raises(TypeError):
        pocketflow.Node(name="x")


@pytest.mark.skipif(pflambda_pf is None, reason="pflambda disabled via PFLAMBDA_CORE_TEST_IMPLS")
@pytest.mark.parametrize("cls_name", CLASS_NAMES)
def test_pflambda_name_extension(cls_name: str) -> None:
    """pflambda's documented addition: an optional keyword-only ``name`` (a durable id).

    Unset, it is a class-level ``None`` (so ``vars()`` of a fresh node is exactly
    pocketflow's); set, it is an instance attribute that per-visit copies keep.
    """
    cls = getattr(pflambda_pf, cls_name)
    plain, named = cls(), cls(name="n1")
    assert plain.name is None
    assert "name" not in vars(plain)
    assert named.name == "n1"
    assert copy.copy(named).name == "n1"


# --------------------------------------------------------------------------- API surface


def _subclass_matrix(pf: ModuleType) -> dict[tuple[str, str], bool]:
    cls = {n: getattr(pf, n) for n in CLASS_NAMES}
    return {(a, b): issubclass(ca, cb) for a, ca in cls.items() for b, cb in cls.items()}


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
def test_class_hierarchy(impl: ModuleType) -> None:
    assert _subclass_matrix(impl) == _subclass_matrix(pocketflow)


def _params(cls: type) -> list[tuple[str, Any, Any]]:
    return [
        (p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()
    ]


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
@pytest.mark.parametrize("cls_name", CLASS_NAMES)
def test_constructor_signature_compatible(impl: ModuleType, cls_name: str) -> None:
    """Same parameters (name, kind, default) in the same order; annotations are free.

    Extra parameters are tolerated only if keyword-only with a default, so that
    every pocketflow call (positional or keyword) still binds the same way.
    """
    ref = _params(getattr(pocketflow, cls_name))
    got = _params(getattr(impl, cls_name))
    assert got[: len(ref)] == ref
    for name, kind, default in got[len(ref) :]:
        assert kind is inspect.Parameter.KEYWORD_ONLY, name
        assert default is not inspect.Parameter.empty, name


def _public_methods(cls: type) -> dict[str, bool]:
    names = [n for n in dir(cls) if not n.startswith("_") or n in ("__rshift__", "__sub__")]
    return {
        n: inspect.iscoroutinefunction(getattr(cls, n))
        for n in names
        if callable(getattr(cls, n)) and not isinstance(getattr(cls, n), type)
    }


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
@pytest.mark.parametrize("cls_name", CLASS_NAMES)
def test_public_methods_and_async_ness(impl: ModuleType, cls_name: str) -> None:
    ref = _public_methods(getattr(pocketflow, cls_name))
    got = _public_methods(getattr(impl, cls_name))
    missing = set(ref) - set(got)
    assert not missing, f"{cls_name} lacks {sorted(missing)}"
    assert {n: got[n] for n in ref} == ref  # same sync/async split


def _fresh_state(pf: ModuleType, cls_name: str) -> dict[str, Any]:
    obj = getattr(pf, cls_name)()
    return dict(vars(obj))


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
@pytest.mark.parametrize("cls_name", CLASS_NAMES)
def test_fresh_instance_state(impl: ModuleType, cls_name: str) -> None:
    assert _fresh_state(impl, cls_name) == _fresh_state(pocketflow, cls_name)


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
def test_constructor_keywords(impl: ModuleType) -> None:
    n = impl.Node(max_retries=5, wait=2)
    assert (n.max_retries, n.wait) == (5, 2)
    b = impl.BatchNode(3, 1)
    assert (b.max_retries, b.wait) == (3, 1)
    a = impl.AsyncNode(max_retries=4, wait=0.5)
    assert (a.max_retries, a.wait) == (4, 0.5)
    s = impl.Node()
    for cls_name in ("Flow", "BatchFlow", "AsyncFlow", "AsyncBatchFlow", "AsyncParallelBatchFlow"):
        cls = getattr(impl, cls_name)
        assert cls(start=s).start_node is s
        assert cls(s).start_node is s


_REAL_TIME_SLEEP = time.sleep
_REAL_ASYNC_SLEEP = asyncio.sleep


def test_harness_registers_scenarios_and_restores_sleep() -> None:
    assert len(SCENARIOS) >= 80
    out = observe(SCENARIOS["retry_wait_uses_time_sleep"].fn, pocketflow)
    assert out.sleeps == [("time.sleep", 0.25)] * 2
    assert time.sleep is _REAL_TIME_SLEEP
    assert asyncio.sleep is _REAL_ASYNC_SLEEP


# --------------------------------------------------------------------------- concurrency

N_ITEMS = 5
TIMEOUT = 3.0  # generous: a concurrent run takes milliseconds, a sequential one hangs


def _parallel_batch_node(pf: ModuleType, base: str, events: list[Any]):
    class Items(getattr(pf, base)):
        async def prep_async(self, shared):
            shared["barrier"] = asyncio.Barrier(N_ITEMS)
            self.barrier = shared["barrier"]
            return list(range(N_ITEMS))

        async def exec_async(self, item):
            events.append(("start", item))
            # only releases once every item has started: hangs if run one by one
            await self.barrier.wait()
            events.append(("end", item))
            return item * 10

        async def post_async(self, shared, prep_res, exec_res):
            shared["results"] = exec_res
            return "done"

    return Items()


async def _with_timeout(coro, timeout: float = TIMEOUT):
    return await asyncio.wait_for(coro, timeout)


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
def test_async_parallel_batch_node_runs_items_concurrently(impl: ModuleType) -> None:
    events: list[Any] = []
    shared: dict[str, Any] = {}
    node = _parallel_batch_node(impl, "AsyncParallelBatchNode", events)
    assert asyncio.run(_with_timeout(node.run_async(shared))) == "done"
    assert shared["results"] == [0, 10, 20, 30, 40]  # gather keeps item order
    starts = [i for kind, i in events[:N_ITEMS] if kind == "start"]
    assert starts == list(range(N_ITEMS))  # every item started before any ended
    assert sorted(i for kind, i in events[N_ITEMS:] if kind == "end") == list(range(N_ITEMS))


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
def test_async_batch_node_is_sequential(impl: ModuleType) -> None:
    events: list[Any] = []

    class Seq(impl.AsyncBatchNode):
        async def prep_async(self, shared):
            return list(range(N_ITEMS))

        async def exec_async(self, item):
            events.append(("start", item))
            for _ in range(3):
                await asyncio.sleep(0)  # give any concurrent sibling every chance to run
            events.append(("end", item))
            return item

    assert asyncio.run(_with_timeout(Seq().run_async({}))) is None
    assert events == [(kind, i) for i in range(N_ITEMS) for kind in ("start", "end")]


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
def test_barrier_detects_sequential_execution(impl: ModuleType) -> None:
    """Control: the barrier test does fail (by timeout) for a sequential batch node."""
    events: list[Any] = []
    node = _parallel_batch_node(impl, "AsyncBatchNode", events)
    with pytest.raises(TimeoutError):
        asyncio.run(_with_timeout(node.run_async({}), timeout=0.2))
    assert events == [("start", 0)]


def _batch_flow(pf: ModuleType, base: str, events: list[Any]):
    class Step(pf.AsyncNode):
        async def prep_async(self, shared):
            return self.params["i"]

        async def exec_async(self, i):
            events.append(("start", i))
            await self.barrier.wait()
            events.append(("end", i))
            return i

        async def post_async(self, shared, prep_res, exec_res):
            shared.setdefault("done", []).append(exec_res)

    class Batch(getattr(pf, base)):
        async def prep_async(self, shared):
            # every per-visit copy of `step` shares the barrier (copy.copy is shallow)
            step.barrier = asyncio.Barrier(N_ITEMS)
            return [{"i": i} for i in range(N_ITEMS)]

    step = Step()
    return Batch(start=step)


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
def test_async_parallel_batch_flow_runs_batches_concurrently(impl: ModuleType) -> None:
    events: list[Any] = []
    shared: dict[str, Any] = {}
    flow = _batch_flow(impl, "AsyncParallelBatchFlow", events)
    assert asyncio.run(_with_timeout(flow.run_async(shared))) is None
    assert events[:N_ITEMS] == [("start", i) for i in range(N_ITEMS)]
    assert sorted(shared["done"]) == list(range(N_ITEMS))


@pytest.mark.parametrize("impl", IMPL_MODULES, ids=IMPL_IDS)
def test_async_batch_flow_is_sequential(impl: ModuleType) -> None:
    events: list[Any] = []
    flow = _batch_flow(impl, "AsyncBatchFlow", events)
    with pytest.raises(TimeoutError):
        asyncio.run(_with_timeout(flow.run_async({}), timeout=0.2))
    assert events == [("start", 0)]  # the second batch never started


# --------------------------------------------------------------------------- shim

REPO = Path(__file__).resolve().parents[2]
SHIM_DIR = REPO / "tests" / "shim"

POCKETFLOW_STYLE_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, warnings
    warnings.simplefilter("error")

    import pocketflow
    from pocketflow import AsyncFlow, AsyncNode, BatchFlow, BatchNode, Flow, Node

    if os.environ.get("EXPECT_PFLAMBDA") == "1":
        assert pocketflow.Node.__module__.startswith("pflambda"), pocketflow.Node.__module__
        assert pocketflow.Flow.__module__.startswith("pflambda"), pocketflow.Flow.__module__
    else:
        assert pocketflow.Node.__module__ == "pocketflow", pocketflow.Node.__module__

    class Load(Node):
        def prep(self, shared):
            return shared["text"]

        def exec(self, text):
            if self.cur_retry == 0:
                raise ValueError("flaky")
            return text.split()

        def post(self, shared, prep_res, exec_res):
            shared["words"] = exec_res
            return "long" if len(exec_res) > 3 else "short"

    class Upper(BatchNode):
        def prep(self, shared):
            return shared["words"]

        def exec(self, word):
            return word.upper()

        def post(self, shared, prep_res, exec_res):
            shared.setdefault("upper", []).append(exec_res)

    class Tag(Node):
        def post(self, shared, prep_res, exec_res):
            shared.setdefault("tags", []).append(self.params["tag"])

    class Tags(BatchFlow):
        def prep(self, shared):
            return [{"tag": "a"}, {"tag": "b"}]

    class Count(AsyncNode):
        async def prep_async(self, shared):
            return shared["words"]

        async def exec_async(self, words):
            await asyncio.sleep(0)
            return len(words)

        async def post_async(self, shared, prep_res, exec_res):
            shared["count"] = exec_res
            return "again" if exec_res < 6 and shared.setdefault("n", 0) < 2 else "done"

    class Finish(Node):
        def post(self, shared, prep_res, exec_res):
            shared["finished"] = self.params.get("run", "?")

    class Grow(Node):
        def post(self, shared, prep_res, exec_res):
            shared["n"] += 1
            shared["words"] = shared["words"] + ["more"]

    load = Load(max_retries=2)
    load - "long" >> Upper() >> Tags(start=Tag())
    load - "short" >> Tag()
    flow = Flow(start=load)
    shared = {"text": "the quick brown fox jumps"}
    flow.run(shared)

    count = Count()
    grow = Grow()
    count - "again" >> grow >> count
    count - "done" >> Finish()
    async_flow = AsyncFlow(start=count)
    async_flow.set_params({"run": "r1"})
    asyncio.run(async_flow.run_async(shared))
    print(json.dumps(shared, sort_keys=True))
    """
)


def _run_script(pythonpath: Path | None, expect_pflambda: bool, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env["EXPECT_PFLAMBDA"] = "1" if expect_pflambda else "0"
    proc = subprocess.run(
        [sys.executable, "-c", POCKETFLOW_STYLE_SCRIPT],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(pflambda_pf is None, reason="pflambda disabled via PFLAMBDA_CORE_TEST_IMPLS")
def test_pocketflow_code_runs_unchanged_on_pflambda(tmp_path: Path) -> None:
    """``PYTHONPATH=tests/shim``: ``import pocketflow`` gets pflambda, same result."""
    on_pflambda = _run_script(SHIM_DIR, expect_pflambda=True, cwd=tmp_path)
    on_pocketflow = _run_script(None, expect_pflambda=False, cwd=tmp_path)
    assert on_pflambda == on_pocketflow
    assert json.loads(on_pflambda) == {
        "count": 6,
        "finished": "r1",
        "n": 1,
        "tags": ["a", "b"],
        "text": "the quick brown fox jumps",
        "upper": [["THE", "QUICK", "BROWN", "FOX", "JUMPS"]],
        "words": ["the", "quick", "brown", "fox", "jumps", "more"],
    }
