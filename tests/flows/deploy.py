"""A flow that changes between "deploys" (``VERSION["v"]``), for the redeploy tests.

v1: Draft -> Ask -> Publish                 (Ask pauses for a human)
v2: Draft -> Ask -> Audit -> Publish        (a node added after the paused node)
v3: Draft -> Review -> Publish              (the paused node is gone: Ask became Review)
"""

from __future__ import annotations

from typing import Any

from pflambda import Flow, InputRequired, Node

VERSION = {"v": 1}


class Draft(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["draft"] = "a plan"


class Ask(Node):
    def prep(self, shared: dict[str, Any]) -> Any:
        if "ok" not in shared:
            raise InputRequired("Approve the plan?", key="ok")
        return shared["ok"]

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["approved"] = prep_res


class Review(Ask):
    """v3's Ask, under another name and class."""


class Audit(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["audited"] = True


class Publish(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["published"] = f"{shared['draft']} ({shared['approved']})"


def create_flow() -> Flow:
    """The flow as deployed now (see the module docstring)."""
    version = VERSION["v"]
    draft = Draft()
    ask: Node = Review() if version == 3 else Ask()
    if version == 2:
        ask >> Audit() >> Publish()
    else:
        ask >> Publish()
    draft >> ask
    return Flow(start=draft)
