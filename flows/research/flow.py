"""The research flow: DecideAction -> SearchWeb -> DecideAction ... -> AnswerQuestion."""

from __future__ import annotations

from typing import Any

from pflambda import Flow

from .nodes import AnswerQuestion, DecideAction, SearchWeb


def create_flow() -> Flow[Any, Any]:
    """Decide (search or answer); search loops back to decide; answer ends the run.

    Reads ``shared["question"]``; writes ``context``, ``search_query`` and ``answer``.
    """
    decide = DecideAction(max_retries=3, max_searches=3)
    search = SearchWeb(max_retries=2)
    answer = AnswerQuestion(max_retries=3)
    decide - "search" >> search
    decide - "answer" >> answer
    search - "decide" >> decide
    return Flow(start=decide)
