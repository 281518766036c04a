"""Walks a flow one node at a time from a cursor, with PocketFlow's exact semantics.

``Flow._orch`` runs a whole graph in one loop; the stepper runs the same loop one
leaf node per call of :meth:`Stepper.step`, keeping the loop's local variables in
the :class:`~pflambda.engine.cursor.Cursor`. A step is: enter any nested flows that
come next (their ``prep``), run one leaf node (a copy of it, with the flow's params,
exactly as ``_orch`` does), then leave every flow that has just finished (their
``post``) -- so that after each step the cursor names the next node to run and the
step can be committed as one checkpoint.

What counts as a leaf: any node that is not a flow, and an
``AsyncParallelBatchFlow``, whose concurrent iterations run in-process as one step.

Duck-typed: classes from the ``pocketflow`` package are recognised by their bases.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pflambda import runcontext
from pflambda.engine.cursor import Cursor, Frame
from pflambda.graph import Graph

__all__ = ["StepResult", "Stepper", "kinds"]

_CORE_MODULES = frozenset({"pflambda.core", "pocketflow"})


@dataclass(frozen=True)
class _Spread:
    """A batch node's items, handed to the runner to fan out."""

    items: list[Any]


_KINDS: dict[type, frozenset[str]] = {}


def kinds(cls: type) -> frozenset[str]:
    """The PocketFlow base classes ``cls`` derives from, by name (``"AsyncNode"``, ...)."""
    found = _KINDS.get(cls)
    if found is None:
        found = frozenset(c.__name__ for c in cls.__mro__ if c.__module__ in _CORE_MODULES)
        _KINDS[cls] = found
    return found


def _is_async(node: Any) -> bool:
    return "AsyncNode" in kinds(type(node))


def _is_stepped_flow(node: Any) -> bool:
    k = kinds(type(node))
    return "Flow" in k and "AsyncParallelBatchFlow" not in k


@dataclass
class StepResult:
    """What one step did."""

    node_id: str | None
    """The leaf node that ran (``None`` if the step only entered/left flows)."""
    action: Any
    finished: bool
    """True when the root flow has finished; ``result`` is then its return value."""
    result: Any = None
    fan_out: list[Any] | None = None
    """Items of a batch node to spread over workers; its ``post`` waits for them."""
    retries: int = 0
    """How many retries the leaf's ``exec`` took (its last ``cur_retry``)."""


FanPolicy = Callable[[Any, int], bool]
"""Whether a batch node with this many items fans out."""
FanIn = Callable[[Frame], Awaitable[list[Any]]]
"""The results of a fanned-out node's items, in item order."""


class Stepper:
    """Runs the graph of one flow object, one leaf node per :meth:`step`.

    With a ``fan_policy``, a batch node it picks does not run its items: the step
    ends after ``prep`` with :attr:`StepResult.fan_out`, and the next step of that
    frame calls ``fan_in`` for the results and runs ``post`` with them.
    """

    def __init__(
        self, graph: Graph, fan_policy: FanPolicy | None = None, fan_in: FanIn | None = None
    ) -> None:
        self.graph = graph
        self.fan_policy, self.fan_in = fan_policy, fan_in
        self.guard: Callable[[Any], None] | None = None
        """Called with each per-visit leaf copy before it runs (the artifact log wraps its
        ``exec`` so a failed attempt's chunks are dropped)."""
        self._last_retries = 0

    def start(self, shared: dict[Any, Any]) -> Cursor:
        """A cursor at the root flow, before its ``prep`` -- nothing has run yet."""
        root = self.graph.root
        own = dict(root.params)
        return Cursor([Frame(flow_id="", node_id=None, own_params=own, params={}, entered=False)])

    async def step(self, cursor: Cursor, shared: dict[Any, Any]) -> StepResult:
        """Run until one leaf node has run (or the root flow finished); mutates both."""
        if cursor.done:
            raise ValueError("the run has already finished")
        if not cursor.frames[0].entered:
            if not _is_stepped_flow(self.graph.root):
                return await self._run_whole_root(cursor, shared)
            await self._enter_root(cursor, shared)
        ran: str | None = None
        action: Any = None
        retries = 0
        while True:
            frame = cursor.frames[-1]
            if frame.node_id is None:
                finished, result = await self._leave(cursor, shared)
                if finished:
                    return StepResult(ran, action, True, result=result, retries=retries)
                continue
            if ran is not None:
                return StepResult(ran, action, finished=False, retries=retries)
            node = self.graph.node(frame.node_id)
            if _is_stepped_flow(node):
                await self._enter(cursor, frame, node, shared)
                continue
            node_id = frame.node_id
            action = await self._run_leaf(frame, node, shared)
            if isinstance(action, _Spread):
                return StepResult(node_id, None, finished=False, fan_out=action.items)
            ran = node_id
            retries = self._last_retries

    # -- entering and leaving flows -------------------------------------------------

    async def _enter_root(self, cursor: Cursor, shared: dict[Any, Any]) -> None:
        frame = cursor.frames[0]
        root = self.graph.root
        root.set_params(frame.own_params)
        frame.entered = True
        frame.prep = await self._call(root, "prep", shared)
        self._begin(frame, root, self.graph.level("").start_id)

    async def _run_whole_root(self, cursor: Cursor, shared: dict[Any, Any]) -> StepResult:
        """A root flow that cannot be stepped (AsyncParallelBatchFlow) is one step."""
        root = self.graph.root
        root.set_params(cursor.frames[0].own_params)
        result = await root._run_async(shared)
        cursor.frames.clear()
        return StepResult(None, None, finished=True, result=result)

    async def _enter(
        self, cursor: Cursor, parent: Frame, node: Any, shared: dict[Any, Any]
    ) -> None:
        flow = copy.copy(node)
        flow.set_params(parent.params)
        parent_is_async = _is_async(self._flow(parent))
        if _is_async(flow) and not parent_is_async:
            raise RuntimeError("Use run_async.")
        frame = Frame(
            flow_id=parent.node_id or "", node_id=None, own_params=parent.params, params={}
        )
        frame.prep = await self._call(flow, "prep", shared)
        self._begin(frame, flow, self.graph.level(frame.flow_id).start_id)
        cursor.frames.append(frame)

    def _begin(self, frame: Frame, flow: Any, start_id: str | None) -> None:
        """Set up the first orchestration of ``flow`` (or of its first batch item)."""
        if "BatchFlow" in kinds(type(flow)):
            frame.batch = list(frame.prep or [])
            frame.index = 0
            if not frame.batch:
                frame.node_id = None
                frame.params = {**frame.own_params}
                return
            frame.params = {**frame.own_params, **frame.batch[0]} or {**frame.own_params}
        else:
            frame.params = {**frame.own_params}
        frame.node_id = start_id
        frame.last_action = None

    async def _leave(self, cursor: Cursor, shared: dict[Any, Any]) -> tuple[bool, Any]:
        """The innermost orchestration is over: next batch item, or the flow's ``post``."""
        frame = cursor.frames[-1]
        level = self.graph.level(frame.flow_id)
        if frame.batch is not None and frame.index + 1 < len(frame.batch):
            frame.index += 1
            frame.params = {**frame.own_params, **frame.batch[frame.index]} or {**frame.own_params}
            frame.node_id, frame.last_action = level.start_id, None
            return False, None
        flow = self._flow(frame)
        exec_res = None if frame.batch is not None else frame.last_action
        result = await self._call(flow, "post", shared, frame.prep, exec_res)
        cursor.frames.pop()
        if not cursor.frames:
            return True, result
        parent = cursor.frames[-1]
        parent.last_action = result
        parent.node_id = self._next(parent, flow, result)
        return False, None

    # -- running nodes --------------------------------------------------------------

    async def _run_leaf(self, frame: Frame, node: Any, shared: dict[Any, Any]) -> Any:
        curr = copy.copy(node)
        curr.set_params(frame.params)
        if self.guard is not None:
            self.guard(curr)
        runcontext.at_node(frame.node_id, curr)
        in_async = _is_async(curr) and _is_async(self._flow(frame))
        if frame.pending is not None:
            action = await self._gather(frame, curr, shared, in_async)
        elif self.fan_policy is not None and "BatchNode" in kinds(type(curr)):
            action = await self._batch(frame, curr, shared, in_async)
            if isinstance(action, _Spread):
                return action
        elif in_async:
            action = await curr._run_async(shared)
        else:
            action = curr._run(shared)
        frame.last_action = action
        frame.node_id = self._next(frame, curr, action)
        self._last_retries = int(getattr(curr, "cur_retry", 0) or 0)
        return action

    async def _batch(self, frame: Frame, curr: Any, shared: dict[Any, Any], in_async: bool) -> Any:
        """A batch node: prep, then fan out (if the policy says so) or run in-process."""
        if _is_async(curr) and not in_async:
            return curr._run(shared)  # raises "Use run_async.", as PocketFlow does
        prep = await curr.prep_async(shared) if in_async else curr.prep(shared)
        spread = isinstance(prep, list | tuple) and len(prep) > 0
        if spread and self.fan_policy is not None and self.fan_policy(curr, len(prep)):
            frame.pending = {"prep": prep}
            return _Spread(list(prep))
        if in_async:
            return await curr.post_async(shared, prep, await curr._exec(prep))
        return curr.post(shared, prep, curr._exec(prep))

    async def _gather(self, frame: Frame, curr: Any, shared: dict[Any, Any], in_async: bool) -> Any:
        """A fanned-out node's items are done: ``post`` with their results, in order."""
        assert frame.pending is not None
        assert self.fan_in is not None
        results = await self.fan_in(frame)
        prep = frame.pending["prep"]
        frame.pending = None
        if in_async:
            return await curr.post_async(shared, prep, results)
        return curr.post(shared, prep, results)

    def _next(self, frame: Frame, curr: Any, action: Any) -> str | None:
        flow = self.graph.level(frame.flow_id).flow
        nxt = flow.get_next_node(curr, action)
        return None if nxt is None else self.graph.level(frame.flow_id).id_of(nxt)

    def _flow(self, frame: Frame) -> Any:
        """The flow object of ``frame``, with the params its parent gave it."""
        template = self.graph.level(frame.flow_id).flow
        if not frame.flow_id:
            return template
        flow = copy.copy(template)
        flow.set_params(frame.own_params)
        return flow

    @staticmethod
    async def _call(flow: Any, hook: str, shared: dict[Any, Any], *args: Any) -> Any:
        """``flow.prep``/``flow.post``, or their ``_async`` forms for async flows."""
        if _is_async(flow):
            return await getattr(flow, f"{hook}_async")(shared, *args)
        return getattr(flow, hook)(shared, *args)
