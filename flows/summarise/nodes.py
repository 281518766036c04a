"""Nodes of the summariser: summarise each document, then combine the summaries."""

from __future__ import annotations

from typing import Any

from pflambda import BatchNode, Node

from .utils import call_llm, split_into_documents

SUMMARY_PROMPT = """\
Summarise the text below in one or two sentences.

Text:
{text}
"""

COMBINE_PROMPT = """\
Combine these summaries of the parts of one text into a single short summary.

Summaries:
{summaries}
"""


class SummariseEach(BatchNode[str]):
    """Summarises each document: ``shared["documents"]``, else ``shared["question"]``
    cut into paragraphs. Writes ``shared["summaries"]``, one per document, in order.

    ``fan_out = True`` asks the durable engine to spread the documents over SQS
    workers (one Lambda per chunk; see :mod:`pflambda.engine.fanout`) whenever it has
    a queue. In-process (``flow.run``, or an engine without a queue) every document is
    summarised here, one after the other, exactly as in PocketFlow.
    """

    fan_out = True

    def prep(self, shared: dict[str, Any]) -> list[str]:
        documents = shared.get("documents")
        if documents:
            return [str(d) for d in documents]
        return split_into_documents(str(shared.get("question", "")))

    def exec(self, document: str) -> str:  # type: ignore[override]  # per item
        return call_llm(SUMMARY_PROMPT.format(text=document), max_tokens=200).strip()

    def post(self, shared: dict[str, Any], prep_res: list[str], exec_res: list[str]) -> str:
        shared["summaries"] = exec_res
        return "combine"


class Combine(Node[list[str], str, str]):
    """Combines ``shared["summaries"]`` into one summary, in ``shared["answer"]``."""

    def prep(self, shared: dict[str, Any]) -> list[str]:
        return list(shared.get("summaries", []))

    def exec(self, summaries: list[str]) -> str:
        if not summaries:
            return "There was nothing to summarise."
        if len(summaries) == 1:
            return summaries[0]
        bullets = "\n".join(f"- {s}" for s in summaries)
        return call_llm(COMBINE_PROMPT.format(summaries=bullets), max_tokens=300).strip()

    def post(self, shared: dict[str, Any], prep_res: list[str], exec_res: str) -> str:
        shared["answer"] = exec_res
        return "done"
