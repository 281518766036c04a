"""The approval flow: DraftPlan -> AskApproval -> Execute, or Revise -> AskApproval ..."""

from __future__ import annotations

from typing import Any

from pflambda import Flow

from .nodes import AskApproval, DraftPlan, Execute, Revise


def create_flow() -> Flow[Any, Any]:
    """Draft a plan, ask a human; ``yes`` executes it, anything else revises and asks again.

    Reads ``shared["question"]`` and the human's reply at ``shared["approval"]``; writes
    ``plan``, ``feedback``, ``revisions`` and ``answer``.
    """
    draft = DraftPlan(max_retries=3)
    ask = AskApproval()
    revise = Revise(max_retries=3)
    draft - "ask" >> ask
    ask - "approve" >> Execute()
    ask - "revise" >> revise
    revise - "ask" >> ask
    return Flow(start=draft)
