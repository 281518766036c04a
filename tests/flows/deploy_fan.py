"""A fanned-out flow that changes between "deploys" (``deploy.VERSION["v"]``).

v1: Work (squares its items, fanned out) -> Total
v3: Work is another class (cubes them): a chunk or continuation of a v1 run at Work does
    not map onto v3, and is handed to v1.
"""

from __future__ import annotations

from typing import Any

from pflambda import BatchNode, Flow, Node
from tests.flows.deploy import VERSION


class Square(BatchNode):
    fan_out = True

    def prep(self, shared: dict[str, Any]) -> list[Any]:
        return list(shared["items"])

    def exec(self, item: Any) -> Any:
        return item * item

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: list[Any]) -> None:
        shared["results"] = exec_res


class Cube(Square):
    def exec(self, item: Any) -> Any:
        return item**3


class Total(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["total"] = sum(shared["results"])


def create_flow() -> Flow:
    """The flow as deployed now (see the module docstring)."""
    work = Cube() if VERSION["v"] == 3 else Square()
    work >> Total()
    return Flow(start=work)
