"""The summarise flow: SummariseEach (a batch) -> Combine."""

from __future__ import annotations

from typing import Any

from pflambda import Flow

from .nodes import Combine, SummariseEach


def create_flow() -> Flow[Any, Any]:
    """Summarise every document (each retried up to twice), then combine the summaries.

    Reads ``shared["documents"]`` (a list of texts) or else ``shared["question"]`` (one
    text, cut into paragraphs); writes ``summaries`` and ``answer``.
    """
    summarise = SummariseEach(max_retries=2)
    summarise - "combine" >> Combine(max_retries=2)
    return Flow(start=summarise)
