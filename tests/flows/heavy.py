"""A flow whose state does not compress: every step's value goes to the blob store."""

from __future__ import annotations

import random
from typing import Any

from pflambda import Flow, Node


class AddNoise(Node):
    """Adds 100 KB of (seeded, so repeatable) noise per step, for shared['limit'] steps."""

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        n = len(shared.setdefault("noise", {}))
        shared["noise"][n] = random.Random(n).randbytes(100_000)
        return "again" if n + 1 < shared.get("limit", 3) else "done"


class Sum(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["total"] = sum(len(v) for v in shared["noise"].values())


def noise() -> Flow:
    """AddNoise until shared['limit'], then Sum."""
    add = AddNoise()
    add - "again" >> add
    add - "done" >> Sum()
    return Flow(start=add)
