"""Small flows that exercise every shape the durable engine must step through."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from pflambda import (
    AsyncFlow,
    AsyncNode,
    AsyncParallelBatchFlow,
    AsyncParallelBatchNode,
    BatchFlow,
    BatchNode,
    Flow,
    Node,
)
from pflambda.errors import InputRequired


class Count(Node):
    """Appends its id to shared['trail'] and loops until shared['n'] reaches the limit."""

    def prep(self, shared: dict[str, Any]) -> int:
        return int(shared.get("n", 0))

    def exec(self, n: int) -> int:
        return n + 1

    def post(self, shared: dict[str, Any], prep_res: int, n: int) -> str:
        shared["n"] = n
        shared.setdefault("trail", []).append(f"{type(self).__name__}:{n}:{self.params}")
        crash_at = shared.get("crash_at")
        if crash_at is not None and n == crash_at and os.environ.get("PFLAMBDA_TEST_KILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        return "again" if n < shared.get("limit", 5) else "done"


class Other(Count):
    pass


class Finish(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["finished"] = True
        return "end"


def loop() -> Flow:
    """Count <-> Other, until shared['limit'], then Finish."""
    a, b, fin = Count(), Other(), Finish()
    a - "again" >> b
    b - "again" >> a
    a - "done" >> fin
    b - "done" >> fin
    return Flow(start=a)


class Double(BatchNode):
    def prep(self, shared: dict[str, Any]) -> list[int]:
        return list(shared.get("items", []))

    def exec(self, item: int) -> int:
        return item * 2

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: list[int]) -> None:
        shared.setdefault("doubled", []).append(exec_res)


class PerFile(BatchFlow):
    def prep(self, shared: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"file": f} for f in shared.get("files", [])]

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["batches"] = len(prep_res)
        return "next"


class Read(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared.setdefault("read", []).append((self.params["file"], self.params.get("mode")))


class Tag(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared.setdefault("tagged", []).append(self.params["file"])


def nested() -> Flow:
    """Double -> PerFile(BatchFlow of Read -> Tag) -> Finish, with flow params."""
    read = Read()
    read >> Tag()
    per_file = PerFile(start=read)
    double = Double()
    double >> per_file
    per_file - "next" >> Finish()
    flow = Flow(start=double)
    flow.set_params({"mode": "fast"})
    return flow


class Ask(Node):
    """Asks for approval until shared['approval'] is set."""

    def prep(self, shared: dict[str, Any]) -> Any:
        if "approval" not in shared:
            raise InputRequired("approve the plan?", key="approval")
        return shared["approval"]

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["decision"] = "go" if prep_res == "yes" else "stop"
        return shared["decision"]


def approval() -> Flow:
    """Plan -> Ask (pauses) -> Finish."""
    plan, ask = Count(), Ask()
    plan - "done" >> ask
    plan - "again" >> ask
    ask - "go" >> Finish()
    return Flow(start=plan)


class Boom(Node):
    def exec(self, prep_res: Any) -> Any:
        raise ValueError("kaboom")


def failing() -> Flow:
    """Count -> Boom."""
    a, boom = Count(), Boom()
    a - "done" >> boom
    a - "again" >> boom
    return Flow(start=a)


class AsyncStep(AsyncNode):
    async def prep_async(self, shared: dict[str, Any]) -> int:
        return int(shared.get("n", 0))

    async def exec_async(self, n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    async def post_async(self, shared: dict[str, Any], prep_res: int, n: int) -> str:
        shared["n"] = n
        shared.setdefault("trail", []).append(f"async:{n}")
        return "again" if n < shared.get("limit", 3) else "done"


class Squares(AsyncParallelBatchNode):
    async def prep_async(self, shared: dict[str, Any]) -> list[int]:
        return list(range(shared.get("limit", 3)))

    async def exec_async(self, i: int) -> int:
        await asyncio.sleep(0)
        return i * i

    async def post_async(self, shared: dict[str, Any], prep_res: Any, res: list[int]) -> str:
        shared["squares"] = res
        return "sync"


class Fan(AsyncParallelBatchFlow):
    async def prep_async(self, shared: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"file": f} for f in ("a", "b")]


def asynchronous() -> AsyncFlow:
    """AsyncStep loop -> Squares -> Fan(parallel batch flow) -> sync Finish."""
    step, squares = AsyncStep(), Squares()
    step - "again" >> step
    step - "done" >> squares
    fan = Fan(start=Tag())
    squares - "sync" >> fan
    fan >> Finish()
    return AsyncFlow(start=step)


def big_state() -> Flow:
    """Grows shared by ~200 KB per step for shared['limit'] steps."""

    class Grow(Node):
        def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
            n = len([k for k in shared if isinstance(k, int)])
            shared[n] = bytes([n % 256]) * 200_000
            return "again" if n + 1 < shared.get("limit", 6) else "done"

    grow = Grow()
    grow - "again" >> grow
    grow - "done" >> Finish()
    return Flow(start=grow)


class PutBad(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["bad"] = {"f": print}


def bad_value() -> Flow:
    """Count -> PutBad, which leaves a function in shared."""
    a, bad = Count(), PutBad()
    a - "done" >> bad
    a - "again" >> bad
    return Flow(start=a)


class SlowCount(Count):
    """Count, with an exec slow enough to be killed in the middle of a run."""

    def exec(self, n: int) -> int:
        import time

        time.sleep(0.05)
        return n + 1


def slow() -> Flow:
    """SlowCount looping on itself until shared['limit'], then Finish."""
    a = SlowCount()
    a - "again" >> a
    a - "done" >> Finish()
    return Flow(start=a)
