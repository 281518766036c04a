"""Flows for the console's tests: a review that pauses inside a nested flow, and one whose
node names, prompt and shared values are HTML meant to break a page that renders them as such."""

from __future__ import annotations

from typing import Any

from pflambda import Flow, Node
from pflambda.errors import InputRequired

HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
"""A string that runs script if a page ever puts it in as HTML (no '/' in a node name)."""
HOSTILE_NAME = '<img src=x onerror="window.pwned=3">'


class Draft(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["draft"] = f"About {shared.get('topic', 'nothing')}"
        shared["words"] = len(shared["draft"].split())


class Review(Node):
    def prep(self, shared: dict[str, Any]) -> Any:
        if "verdict" not in shared:
            raise InputRequired(str(shared.get("ask", "Publish the draft?")), key="verdict")
        return shared["verdict"]

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["approved"] = prep_res == "yes"
        return "publish" if shared["approved"] else "redo"


class Publish(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["published"] = shared["draft"].upper()


def review() -> Flow:
    """Draft -> Editing(Review) -> Publish; a "redo" verdict drafts again."""
    draft, review_node, publish = Draft(), Review(), Publish()
    editing = Flow(start=review_node, name="Editing")
    draft >> editing
    editing - "publish" >> publish
    editing - "redo" >> draft
    return Flow(start=draft)


def hostile() -> Flow:
    """A node named with HTML that asks an HTML question (shared['ask'])."""
    draft = Draft(name=HOSTILE_NAME)
    draft >> Review()
    return Flow(start=draft)


def as_agent(name: str) -> dict[str, Any]:
    """``Engine.start`` keywords that make a run an agent's, as the A2A layer does: the
    agent in ``attrs`` (and in the record's own ``agent`` field where the engine has one)."""
    import inspect

    from pflambda.engine.runner import Engine

    kw: dict[str, Any] = {"attrs": {"a2a": {"agent": name}}}
    if "agent" in inspect.signature(Engine.start_async).parameters:
        kw["agent"] = name
    return kw
