"""Batch flows for the fan-out tests."""

from __future__ import annotations

import asyncio
from typing import Any

from pflambda import AsyncFlow, AsyncParallelBatchNode, BatchNode, Flow, InputRequired, Node


class Square(BatchNode):
    """Squares shared['items']; item -1 is poison (raises, even after retries); item "ask"
    asks for input, which a fanned-out item cannot do."""

    fan_out = True

    def __init__(self) -> None:
        super().__init__(max_retries=2)

    def prep(self, shared: dict[str, Any]) -> list[Any]:
        return list(shared.get("items", []))

    def exec(self, item: Any) -> Any:
        if item == -1:
            raise ValueError("poison item")
        if item == "ask":
            raise InputRequired("which square?")
        if isinstance(item, bytes):
            return len(item)
        return item * item

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: list[Any]) -> str:
        shared["squares"] = exec_res
        shared["scale"] = self.params.get("scale")
        return "sum"


class Total(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["total"] = sum(shared["squares"])


def squares() -> Flow:
    """Square (fans out) -> Total."""
    square = Square()
    square - "sum" >> Total()
    flow = Flow(start=square)
    flow.set_params({"scale": 2})
    return flow


class Counted(BatchNode):
    """No fan_out attribute: the engine's threshold decides."""

    def prep(self, shared: dict[str, Any]) -> list[int]:
        return list(shared["items"])

    def exec(self, item: int) -> int:
        return item + 1

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: list[int]) -> None:
        shared["plus_one"] = exec_res


def by_threshold() -> Flow:
    """One Counted batch node."""
    return Flow(start=Counted())


class AsyncSquare(AsyncParallelBatchNode):
    fan_out = True

    async def prep_async(self, shared: dict[str, Any]) -> list[int]:
        return list(shared["items"])

    async def exec_async(self, item: int) -> int:
        await asyncio.sleep(0)
        return item * item

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: list[int]) -> None:
        shared["squares"] = exec_res


def async_squares() -> AsyncFlow:
    """AsyncSquare (parallel, fans out)."""
    return AsyncFlow(start=AsyncSquare())
