"""Nodes of the approval agent: draft, ask, then execute or revise and ask again."""

from __future__ import annotations

from typing import Any

from pflambda import Node
from pflambda.errors import InputRequired

from .utils import call_llm, feedback_of, is_approval

DRAFT_PROMPT = """\
Draft a short numbered plan (3 to 5 steps) for the request below. \
Reply with the numbered steps only.
Request: {request}
"""

REVISE_PROMPT = """\
Revise the numbered plan below for the request, taking the reviewer's feedback into \
account. Reply with the numbered steps only.
Request: {request}
Feedback: {feedback}

Current plan:
{plan}
"""

ASK_PROMPT = """\
Here is the plan for: {request}

{plan}

Reply yes to approve it, or no with what to change."""


class DraftPlan(Node[tuple[str, str | None], str, str]):
    """Drafts a numbered plan for ``shared["question"]`` into ``shared["plan"]``.

    A plan already in shared is kept, so running the flow again in-process after an
    ``InputRequired`` (with the reply put in shared) carries on with the revised plan.
    """

    def prep(self, shared: dict[str, Any]) -> tuple[str, str | None]:
        plan = shared.get("plan")
        return str(shared["question"]), None if plan is None else str(plan)

    def exec(self, prep_res: tuple[str, str | None]) -> str:
        request, plan = prep_res
        if plan is not None:
            return plan
        return call_llm(DRAFT_PROMPT.format(request=request)).strip()

    def post(self, shared: dict[str, Any], prep_res: tuple[str, str | None], exec_res: str) -> str:
        shared["plan"] = exec_res
        return "ask"


class AskApproval(Node[Any, tuple[bool, str], str]):
    """Asks a human to approve ``shared["plan"]``; routes to ``approve`` or ``revise``.

    With no ``shared["approval"]`` yet it raises ``InputRequired(key="approval")``: a
    durable run pauses until the reply is stored there and this node runs again; an
    in-process ``flow.run`` lets it propagate to the caller.
    """

    def prep(self, shared: dict[str, Any]) -> Any:
        reply = shared.get("approval")
        if reply is None:
            prompt = ASK_PROMPT.format(request=shared["question"], plan=shared["plan"])
            raise InputRequired(prompt, key="approval")
        return reply

    def exec(self, reply: Any) -> tuple[bool, str]:
        return is_approval(reply), feedback_of(reply)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: tuple[bool, str]) -> str:
        approved, feedback = exec_res
        if approved:
            return "approve"
        shared["feedback"] = feedback
        return "revise"


class Revise(Node[tuple[str, str, str], str, str]):
    """Revises the plan with the human's feedback, clears the approval, and asks again."""

    def prep(self, shared: dict[str, Any]) -> tuple[str, str, str]:
        return str(shared["question"]), str(shared["plan"]), str(shared.get("feedback", ""))

    def exec(self, prep_res: tuple[str, str, str]) -> str:
        request, plan, feedback = prep_res
        prompt = REVISE_PROMPT.format(request=request, plan=plan, feedback=feedback or "(none)")
        return call_llm(prompt).strip()

    def post(self, shared: dict[str, Any], prep_res: tuple[str, str, str], exec_res: str) -> str:
        shared["plan"] = exec_res
        shared["revisions"] = int(shared.get("revisions", 0)) + 1
        shared.pop("approval", None)
        return "ask"


class Execute(Node[str, str, str]):
    """Carries out the approved plan and reports it in ``shared["answer"]``."""

    def prep(self, shared: dict[str, Any]) -> str:
        return str(shared["plan"])

    def exec(self, plan: str) -> str:
        return f"Plan approved and executed:\n{plan}"

    def post(self, shared: dict[str, Any], prep_res: str, exec_res: str) -> str:
        shared["answer"] = exec_res
        return "done"
