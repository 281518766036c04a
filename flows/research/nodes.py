"""Nodes of the research agent: decide, search, answer."""

from __future__ import annotations

from typing import Any

from pflambda import Node, maybe_current_run

from .utils import call_llm, format_context, parse_decision, search_web

Context = list[dict[str, Any]]
"""``shared["context"]``: one ``{"query", "results"}`` dict per search made."""

DECIDE_PROMPT = """\
### CONTEXT
You are a research assistant that can search the web.
Question: {question}

Previous research:
{context}

### ACTION SPACE
[1] search: look up more information on the web
[2] answer: answer the question with the research so far

### NEXT ACTION
Decide the next action. Searches made so far: {searches} of {max_searches}.
Return your response in this format:

```yaml
action: search | answer
reason: <why you chose this action>
search_query: <a specific search query, if action is search>
```"""

ANSWER_PROMPT = """\
You are a research assistant. Answer the question in a few sentences, \
using the research below and citing the sources you use.
Question: {question}
"""


class DecideAction(Node[tuple[str, Context], dict[str, str], str]):
    """Decides, from the question and the research so far, whether to search or answer.

    The model replies with a YAML block (``action``, ``reason``, ``search_query``); a
    reply that names no valid action is retried (``max_retries``) and, if it never
    does, the agent answers with what it has. After ``max_searches`` searches it
    answers without asking, so the loop always ends.
    """

    def __init__(self, max_retries: int = 3, wait: float = 0, *, max_searches: int = 3) -> None:
        super().__init__(max_retries, wait)
        self.max_searches = max_searches

    def prep(self, shared: dict[str, Any]) -> tuple[str, Context]:
        return str(shared["question"]), list(shared.get("context", []))

    def exec(self, prep_res: tuple[str, Context]) -> dict[str, str]:
        question, context = prep_res
        if len(context) >= self.max_searches:
            reason = f"used all {self.max_searches} searches"
            return {"action": "answer", "reason": reason, "search_query": ""}
        prompt = DECIDE_PROMPT.format(
            question=question,
            context=format_context(context),
            searches=len(context),
            max_searches=self.max_searches,
        )
        decision = parse_decision(call_llm(prompt))
        if decision["action"] == "search" and not decision["search_query"]:
            decision["search_query"] = question
        return decision

    def exec_fallback(self, prep_res: tuple[str, Context], exc: Exception) -> dict[str, str]:
        if not isinstance(exc, ValueError):
            raise exc
        return {"action": "answer", "reason": f"no usable decision: {exc}", "search_query": ""}

    def post(
        self, shared: dict[str, Any], prep_res: tuple[str, Context], exec_res: dict[str, str]
    ) -> str:
        if exec_res["action"] == "search":
            shared["search_query"] = exec_res["search_query"]
        return exec_res["action"]


class SearchWeb(Node[str, list[dict[str, str]], str]):
    """Searches the web for ``shared["search_query"]`` and adds the results to the context."""

    def prep(self, shared: dict[str, Any]) -> str:
        return str(shared["search_query"])

    def exec(self, query: str) -> list[dict[str, str]]:
        return search_web(query)

    def post(self, shared: dict[str, Any], query: str, exec_res: list[dict[str, str]]) -> str:
        context = shared.setdefault("context", [])
        context.append({"query": query, "results": exec_res})
        titles = "; ".join(r.get("title", "") for r in exec_res[:3])
        stream_note(f"Searched {query!r}: {titles}\n", first=len(context) == 1)
        return "decide"


class AnswerQuestion(Node[tuple[str, Context], str, str]):
    """Answers the question from the research gathered, into ``shared["answer"]``."""

    def prep(self, shared: dict[str, Any]) -> tuple[str, Context]:
        return str(shared["question"]), list(shared.get("context", []))

    def exec(self, prep_res: tuple[str, Context]) -> str:
        question, context = prep_res
        prompt = ANSWER_PROMPT.format(question=question)
        if context:
            prompt += f"\nResearch:\n{format_context(context)}\n"
        return call_llm(prompt)

    def post(self, shared: dict[str, Any], prep_res: tuple[str, Context], exec_res: str) -> str:
        shared["answer"] = exec_res
        searches = len(prep_res[1])
        stream_note(f"Answered after {searches} search(es).", first=not searches, last=True)
        return "done"


NOTES = "research-notes"
"""The id of the artifact the research notes stream into, one chunk per step."""


def stream_note(text: str, *, first: bool, last: bool = False) -> None:
    """Stream one chunk of the research notes to the A2A client while the run goes on
    (committed with this step's checkpoint). Outside a durable run -- ``flow.run()`` in
    a test or a notebook -- there is no client to stream to, and nothing happens."""
    run = maybe_current_run()
    if run is not None:
        run.emit_artifact(NOTES, text, append=not first, last_chunk=last, name="Research notes")
