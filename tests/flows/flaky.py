"""A node that succeeds on its third attempt."""

from __future__ import annotations

from typing import Any

from pflambda import Flow, Node


class Flaky(Node):
    def __init__(self) -> None:
        super().__init__(max_retries=3)

    def exec(self, prep_res: Any) -> str:
        if self.cur_retry < 2:
            raise ConnectionError("try again")
        return "ok"

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: str) -> None:
        shared["result"] = exec_res


def flaky() -> Flow:
    """One node that needs two retries."""
    return Flow(start=Flaky())
