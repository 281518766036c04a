"""The node graph: PocketFlow's Node/Flow/Batch/Async classes, with the same semantics.

Everything here behaves like the ``pocketflow`` package (0.0.3) in everything a user
can observe -- wiring with ``>>`` and ``- "action" >>``, ``params``, retries and
fallbacks, one ``copy.copy`` of a node per visit, parameter merging in batch flows,
the values ``run``/``run_async`` return and the warning texts -- plus the later
upstream fix that sets ``cur_retry`` in async nodes. Code written against
``pocketflow`` runs unchanged after ``from pflambda import ...``.

Additions that do not change behaviour: every class takes an optional keyword-only
``name`` (the node's stable id in a durable run, see :mod:`pflambda.graph`), and the
classes are generic in their prep/exec/post result types, as pocketflow's stubs are.

The hot path (``Flow._orch``) is kept as lean as pocketflow's: a flow run in-process
costs no more per node than the original. Durable runs do not use ``_orch``; the
engine walks the same graph one node at a time (:mod:`pflambda.engine`).
"""

from __future__ import annotations

import asyncio
import copy
import time
import warnings
from typing import Any, Generic, TypeVar

__all__ = [
    "AsyncBatchFlow",
    "AsyncBatchNode",
    "AsyncFlow",
    "AsyncNode",
    "AsyncParallelBatchFlow",
    "AsyncParallelBatchNode",
    "BaseNode",
    "BatchFlow",
    "BatchNode",
    "Flow",
    "Node",
    "Params",
    "SharedData",
]

_PrepResult = TypeVar("_PrepResult")
_ExecResult = TypeVar("_ExecResult")
_PostResult = TypeVar("_PostResult")

SharedData = dict[Any, Any]
"""The dict every node of a flow reads and writes."""
Params = dict[str, Any]
"""Per-node parameters, set by the enclosing flow (and merged in batch flows)."""


class BaseNode(Generic[_PrepResult, _ExecResult, _PostResult]):
    """A step of a flow: ``prep`` reads shared, ``exec`` computes, ``post`` writes.

    ``post`` returns the action that picks the next node (``None`` means
    ``"default"``). ``exec`` never sees ``shared``, which is what makes it safe to
    retry, and -- in a durable run -- to run on another machine.
    """

    params: Params
    successors: dict[str, BaseNode[Any, Any, Any]]
    name: str | None = None
    """A stable id for durable runs; when unset, the node's graph position is its id."""

    def __init__(self, *, name: str | None = None) -> None:
        self.params, self.successors = {}, {}
        if name is not None:
            self.name = name

    def set_params(self, params: Params) -> None:
        """Replace this node's parameters (the enclosing flow calls this per visit)."""
        self.params = params

    def next(
        self, node: BaseNode[Any, Any, Any], action: str = "default"
    ) -> BaseNode[Any, Any, Any]:
        """Make ``node`` the successor for ``action``; returns ``node`` for chaining."""
        if action in self.successors:
            warnings.warn(f"Overwriting successor for action '{action}'", stacklevel=1)
        self.successors[action] = node
        return node

    def prep(self, shared: SharedData) -> _PrepResult:
        """Read what ``exec`` needs from ``shared``."""
        return None  # type: ignore[return-value]

    def exec(self, prep_res: _PrepResult) -> _ExecResult:
        """Compute. Must not touch ``shared``; may be retried."""
        return None  # type: ignore[return-value]

    def post(self, shared: SharedData, prep_res: _PrepResult, exec_res: _ExecResult) -> _PostResult:
        """Write results to ``shared`` and return the next action."""
        return None  # type: ignore[return-value]

    def _exec(self, prep_res: _PrepResult) -> _ExecResult:
        return self.exec(prep_res)

    def _run(self, shared: SharedData) -> _PostResult:
        p = self.prep(shared)
        e = self._exec(p)
        return self.post(shared, p, e)

    def run(self, shared: SharedData) -> _PostResult:
        """Run this node alone (successors are not followed: use a Flow for that)."""
        if self.successors:
            warnings.warn("Node won't run successors. Use Flow.", stacklevel=1)
        return self._run(shared)

    def __rshift__(self, other: BaseNode[Any, Any, Any]) -> BaseNode[Any, Any, Any]:
        return self.next(other)

    def __sub__(self, action: str) -> _ConditionalTransition:
        if isinstance(action, str):
            return _ConditionalTransition(self, action)
        raise TypeError("Action must be a string")


class _ConditionalTransition:
    """The ``node - "action"`` half of ``node - "action" >> other``."""

    __slots__ = ("action", "src")

    def __init__(self, src: BaseNode[Any, Any, Any], action: str) -> None:
        self.src, self.action = src, action

    def __rshift__(self, tgt: BaseNode[Any, Any, Any]) -> BaseNode[Any, Any, Any]:
        return self.src.next(tgt, self.action)


class Node(BaseNode[_PrepResult, _ExecResult, _PostResult]):
    """A node whose ``exec`` is retried ``max_retries`` times, ``wait`` seconds apart.

    ``cur_retry`` holds the current attempt (0-based) while ``exec`` runs. When the
    last attempt fails, ``exec_fallback`` gets the exception (and re-raises it by
    default).
    """

    max_retries: int
    wait: float
    cur_retry: int

    def __init__(self, max_retries: int = 1, wait: float = 0, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.max_retries, self.wait = max_retries, wait

    def exec_fallback(self, prep_res: _PrepResult, exc: Exception) -> _ExecResult:
        """What ``exec`` returns when every attempt failed; re-raises by default."""
        raise exc

    def _exec(self, prep_res: _PrepResult) -> _ExecResult:
        for attempt in range(self.max_retries):
            self.cur_retry = attempt
            try:
                return self.exec(prep_res)
            except Exception as e:
                if attempt == self.max_retries - 1:
                    return self.exec_fallback(prep_res, e)
                if self.wait > 0:
                    time.sleep(self.wait)
        return None  # type: ignore[return-value]  # max_retries < 1: exec never runs


class BatchNode(Node[Any, list[Any], _PostResult]):
    """A node whose ``prep`` returns items; ``exec`` runs (with retries) per item."""

    def _exec(self, items: Any) -> list[Any]:
        return [super(BatchNode, self)._exec(i) for i in (items or [])]


class Flow(BaseNode[_PrepResult, Any, _PostResult]):
    """Runs a graph of nodes from ``start_node``, following the actions they return.

    Each visit runs a ``copy.copy`` of the node, so per-visit attributes never leak
    between visits. A Flow is itself a node, so flows nest.
    """

    start_node: BaseNode[Any, Any, Any] | None

    def __init__(
        self, start: BaseNode[Any, Any, Any] | None = None, *, name: str | None = None
    ) -> None:
        super().__init__(name=name)
        self.start_node = start

    def start(self, start: BaseNode[Any, Any, Any]) -> BaseNode[Any, Any, Any]:
        """Set the first node; returns it so wiring can continue from it."""
        self.start_node = start
        return start

    def get_next_node(
        self, curr: BaseNode[Any, Any, Any], action: str | None
    ) -> BaseNode[Any, Any, Any] | None:
        """The successor of ``curr`` for ``action`` (warns when the flow ends early)."""
        nxt = curr.successors.get(action or "default")
        if not nxt and curr.successors:
            warnings.warn(
                f"Flow ends: '{action}' not found in {list(curr.successors)}", stacklevel=1
            )
        return nxt

    def _orch(self, shared: SharedData, params: Params | None = None) -> Any:
        curr = copy.copy(self.start_node)
        p = params or {**self.params}
        last_action = None
        while curr:
            curr.set_params(p)
            last_action = curr._run(shared)
            curr = copy.copy(self.get_next_node(curr, last_action))
        return last_action

    def _run(self, shared: SharedData) -> _PostResult:
        p = self.prep(shared)
        o = self._orch(shared)
        return self.post(shared, p, o)

    def post(self, shared: SharedData, prep_res: _PrepResult, exec_res: Any) -> _PostResult:
        """Return the last node's action, so an enclosing flow can branch on it."""
        return exec_res  # type: ignore[no-any-return]


class BatchFlow(Flow[Any, _PostResult]):
    """Runs the whole flow once per parameter dict returned by ``prep``."""

    def _run(self, shared: SharedData) -> _PostResult:
        pr = self.prep(shared) or []
        for bp in pr:
            self._orch(shared, {**self.params, **bp})
        return self.post(shared, pr, None)


class AsyncNode(Node[_PrepResult, _ExecResult, _PostResult]):
    """A node with ``prep_async``/``exec_async``/``post_async``, run on asyncio."""

    async def prep_async(self, shared: SharedData) -> _PrepResult:
        """Async ``prep``."""
        return None  # type: ignore[return-value]

    async def exec_async(self, prep_res: _PrepResult) -> _ExecResult:
        """Async ``exec``; retried like ``exec``."""
        return None  # type: ignore[return-value]

    async def exec_fallback_async(self, prep_res: _PrepResult, exc: Exception) -> _ExecResult:
        """Async ``exec_fallback``; re-raises by default."""
        raise exc

    async def post_async(
        self, shared: SharedData, prep_res: _PrepResult, exec_res: _ExecResult
    ) -> _PostResult:
        """Async ``post``."""
        return None  # type: ignore[return-value]

    async def _exec(self, prep_res: _PrepResult) -> _ExecResult:  # type: ignore[override]
        for attempt in range(self.max_retries):
            self.cur_retry = attempt
            try:
                return await self.exec_async(prep_res)
            except Exception as e:
                if attempt == self.max_retries - 1:
                    return await self.exec_fallback_async(prep_res, e)
                if self.wait > 0:
                    await asyncio.sleep(self.wait)
        return None  # type: ignore[return-value]

    async def run_async(self, shared: SharedData) -> _PostResult:
        """Run this node alone on the running event loop."""
        if self.successors:
            warnings.warn("Node won't run successors. Use AsyncFlow.", stacklevel=1)
        return await self._run_async(shared)

    async def _run_async(self, shared: SharedData) -> _PostResult:
        p = await self.prep_async(shared)
        e = await self._exec(p)
        return await self.post_async(shared, p, e)

    def _run(self, shared: SharedData) -> _PostResult:
        raise RuntimeError("Use run_async.")


class AsyncBatchNode(AsyncNode[Any, list[Any], _PostResult], BatchNode[_PostResult]):
    """Runs ``exec_async`` per item, one after the other."""

    async def _exec(self, items: Any) -> list[Any]:  # type: ignore[override]
        return [await super(AsyncBatchNode, self)._exec(i) for i in items]


class AsyncParallelBatchNode(AsyncNode[Any, list[Any], _PostResult], BatchNode[_PostResult]):
    """Runs ``exec_async`` for all items concurrently (``asyncio.gather``)."""

    async def _exec(self, items: Any) -> list[Any]:  # type: ignore[override]
        runs = (super(AsyncParallelBatchNode, self)._exec(i) for i in items)
        return list(await asyncio.gather(*runs))


class AsyncFlow(Flow[_PrepResult, _PostResult], AsyncNode[_PrepResult, Any, _PostResult]):
    """A flow run with ``run_async``; its nodes may be sync or async."""

    async def _orch_async(self, shared: SharedData, params: Params | None = None) -> Any:
        curr = copy.copy(self.start_node)
        p = params or {**self.params}
        last_action = None
        while curr:
            curr.set_params(p)
            if isinstance(curr, AsyncNode):
                last_action = await curr._run_async(shared)
            else:
                last_action = curr._run(shared)
            curr = copy.copy(self.get_next_node(curr, last_action))
        return last_action

    async def _run_async(self, shared: SharedData) -> _PostResult:
        p = await self.prep_async(shared)
        o = await self._orch_async(shared)
        return await self.post_async(shared, p, o)

    async def post_async(
        self, shared: SharedData, prep_res: _PrepResult, exec_res: Any
    ) -> _PostResult:
        """Return the last node's action, like ``Flow.post``."""
        return exec_res  # type: ignore[no-any-return]


class AsyncBatchFlow(AsyncFlow[Any, _PostResult], BatchFlow[_PostResult]):
    """Runs the flow once per parameter dict from ``prep_async``, one after the other."""

    async def _run_async(self, shared: SharedData) -> _PostResult:
        pr = await self.prep_async(shared) or []
        for bp in pr:
            await self._orch_async(shared, {**self.params, **bp})
        return await self.post_async(shared, pr, None)


class AsyncParallelBatchFlow(AsyncFlow[Any, _PostResult], BatchFlow[_PostResult]):
    """Runs the flow once per parameter dict from ``prep_async``, all concurrently."""

    async def _run_async(self, shared: SharedData) -> _PostResult:
        pr = await self.prep_async(shared) or []
        await asyncio.gather(*(self._orch_async(shared, {**self.params, **bp}) for bp in pr))
        return await self.post_async(shared, pr, None)
