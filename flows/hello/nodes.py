"""Nodes of the hello flow."""

from __future__ import annotations

from typing import Any

from pflambda import Node


class Draft(Node):
    """Writes a short note on ``shared["topic"]``."""

    def prep(self, shared: dict[str, Any]) -> str:
        return str(shared["topic"])

    def exec(self, topic: str) -> str:
        return f"A short note on {topic}."

    def post(self, shared: dict[str, Any], prep_res: str, exec_res: str) -> str:
        shared["draft"] = exec_res
        return "review"


class Review(Node):
    """Approves the draft."""

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["approved"] = True
