"""Flows whose nodes report what :func:`pflambda.current_run` tells them."""

from __future__ import annotations

from typing import Any

from pflambda import (
    AsyncFlow,
    AsyncNode,
    AsyncParallelBatchNode,
    BatchNode,
    Flow,
    InputRequired,
    Node,
    current_run,
    maybe_current_run,
)


def seen(where: str) -> list[Any]:
    """What a node sees, as a list the codec stores: where, run, step, node, item, attempt."""
    run = maybe_current_run()
    if run is None:
        return [where, None]
    return [where, run.run_id, run.step, run.node_id, run.item, run.attempt, run.agent]


class Report(Node):
    """Records current_run() in prep, exec and post; exec fails ``failures`` times first."""

    failures = 0

    def prep(self, shared: dict[str, Any]) -> list[Any]:
        return seen("prep")

    def exec(self, prep_res: Any) -> list[Any]:
        if self.cur_retry < self.failures:
            raise RuntimeError(f"attempt {current_run().attempt} fails")
        return [prep_res, seen("exec"), current_run().idempotency_key("charge")]

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared.setdefault("seen", []).append([*exec_res, seen("post")])


class Ask(Node):
    """Pauses once for input; records the key it would use each time it runs."""

    def exec(self, prep_res: Any) -> str:
        return current_run().idempotency_key()

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared.setdefault("ask_keys", []).append(exec_res)
        if "answer" not in shared:
            raise InputRequired("go on?", key="answer")


CRASHES: list[str] = []
"""Keys :class:`Crash` saw; it crashes the process (KeyboardInterrupt) the first time."""


class Crash(Node):
    def exec(self, prep_res: Any) -> str:
        key = current_run().idempotency_key("side-effect")
        CRASHES.append(key)
        if len(CRASHES) == 1:
            raise KeyboardInterrupt  # the process dies mid-step: nothing is committed
        return key

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["crash_key"] = exec_res


def crashing() -> Flow:
    """Report -> Crash (dies the first time) -> Report."""
    first = Report()
    first >> Crash() >> Report()
    return Flow(start=first)


def steps() -> Flow:
    """Report -> Report (its exec fails twice first, max_retries=3) -> Ask -> Report."""
    first, second, ask, last = Report(), Report(max_retries=3), Ask(), Report()
    second.failures = 2
    first >> second >> ask >> last
    return Flow(start=first)


class AsyncReport(AsyncNode):
    async def prep_async(self, shared: dict[str, Any]) -> list[Any]:
        return seen("prep")

    async def exec_async(self, prep_res: Any) -> list[Any]:
        return [prep_res, seen("exec")]

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared.setdefault("seen", []).append(exec_res)


class AsyncItems(AsyncParallelBatchNode):
    """Each item records what it sees, fanned out or in-process."""

    fan_out = False

    async def prep_async(self, shared: dict[str, Any]) -> list[int]:
        return list(shared["items"])

    async def exec_async(self, item: int) -> list[Any]:
        return [item, seen("exec")]

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["items_seen"] = exec_res


class FannedAsyncItems(AsyncItems):
    fan_out = True


class FannedItems(BatchNode):
    fan_out = True

    def prep(self, shared: dict[str, Any]) -> list[int]:
        return list(shared["items"])

    def exec(self, item: int) -> list[Any]:
        run = current_run()
        return [item, seen("exec"), run.delivery, run.idempotency_key()]

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["items_seen"] = exec_res


def asynchronous() -> AsyncFlow:
    """AsyncReport -> AsyncItems (in-process parallel batch)."""
    report = AsyncReport()
    report >> AsyncItems()
    return AsyncFlow(start=report)


def fanned() -> Flow:
    """Report -> FannedItems (sync batch, spread over workers)."""
    report = Report()
    report >> FannedItems()
    return Flow(start=report)


def fanned_async() -> AsyncFlow:
    """FannedAsyncItems: a parallel async batch spread over workers."""
    return AsyncFlow(start=FannedAsyncItems())
