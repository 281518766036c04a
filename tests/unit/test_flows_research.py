"""flows.research: decide -> search -> ... -> answer, offline, in-process and durably."""

from __future__ import annotations

from typing import Any

import pytest

import flows.research.nodes as nodes
from flows.llm import LLMThrottled
from flows.research.flow import create_flow
from flows.research.nodes import AnswerQuestion, DecideAction, SearchWeb
from flows.research.utils import parse_decision, parse_yaml_block
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.engine.runner import Engine
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore

QUESTIONS = [
    "What is the tallest mountain on Earth?",
    "How do tides work?",
    "Why is the sky blue?",
    "Who wrote the first compiler?",
    "x",
]

SEARCH = "```yaml\naction: search\nreason: need more\nsearch_query: tides\n```"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFLAMBDA_LLM", "offline")


def run(question: str) -> tuple[Any, dict[str, Any]]:
    shared: dict[str, Any] = {"question": question}
    return create_flow().run(shared), shared


@pytest.mark.parametrize("question", QUESTIONS)
def test_searches_then_answers_within_the_cap(question: str) -> None:
    action, shared = run(question)
    assert action == "done"
    assert isinstance(shared["answer"], str)
    assert shared["answer"]
    assert 1 <= len(shared["context"]) <= 3  # the offline model searches first
    assert shared["search_query"] == shared["context"][-1]["query"]
    for search in shared["context"]:
        assert len(search["results"]) == 3
        assert all(r["url"].startswith("https://example.com/") for r in search["results"])


def test_the_answer_uses_the_research() -> None:
    _, shared = run("How do tides work?")
    urls = {r["url"] for search in shared["context"] for r in search["results"]}
    assert any(url in shared["answer"] for url in urls)


def test_same_question_same_run() -> None:
    assert run("How do tides work?") == run("How do tides work?")


@pytest.mark.parametrize("question", QUESTIONS[:3])
def test_durable_run_matches_in_process(question: str) -> None:
    action, shared = run(question)
    engine = Engine(MemoryStore(), MemoryBlobStore())
    outcome = engine.start("flows.research.flow:create_flow", {"question": question})
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared == shared
    assert outcome.result == action
    assert outcome.seq == 2 * len(shared["context"]) + 2  # decide+search per search, decide, answer


def test_the_search_cap_forces_an_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def always_search(prompt: str, **kw: Any) -> str:
        prompts.append(prompt)
        return SEARCH if "```yaml" in prompt else "final answer"

    monkeypatch.setattr(nodes, "call_llm", always_search)
    action, shared = run("How do tides work?")
    assert action == "done"
    assert len(shared["context"]) == 3
    assert shared["answer"] == "final answer"
    assert len(prompts) == 4  # three decisions, then the answer (the fourth decision is forced)


def test_a_decision_without_a_query_searches_for_the_question(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nodes, "call_llm", lambda prompt, **kw: "action: search")
    shared: dict[str, Any] = {"question": "How do tides work?"}
    assert DecideAction().run(shared) == "search"
    assert shared["search_query"] == "How do tides work?"


def test_unparseable_replies_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    replies = iter(["I think we should look it up", "```yaml\naction: maybe\n```", SEARCH])
    monkeypatch.setattr(nodes, "call_llm", lambda prompt, **kw: next(replies))
    shared: dict[str, Any] = {"question": "How do tides work?"}
    assert DecideAction(max_retries=3).run(shared) == "search"
    assert shared["search_query"] == "tides"


def test_never_parseable_falls_back_to_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def rambling(prompt: str, **kw: Any) -> str:
        calls.append(prompt)
        return "hmm, hard to say"

    monkeypatch.setattr(nodes, "call_llm", rambling)
    shared: dict[str, Any] = {"question": "q"}
    assert DecideAction(max_retries=3).run(shared) == "answer"
    assert len(calls) == 3
    assert "search_query" not in shared


def test_other_failures_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(prompt: str, **kw: Any) -> str:
        raise LLMThrottled("slow down")

    monkeypatch.setattr(nodes, "call_llm", throttled)
    with pytest.raises(LLMThrottled):
        DecideAction(max_retries=2).run({"question": "q"})


def test_search_and_answer_nodes() -> None:
    shared: dict[str, Any] = {"question": "How do tides work?", "search_query": "tides"}
    assert SearchWeb().run(shared) == "decide"
    assert SearchWeb().run(shared) == "decide"
    assert [s["query"] for s in shared["context"]] == ["tides", "tides"]
    assert AnswerQuestion().run(shared) == "done"
    assert shared["answer"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (SEARCH, {"action": "search", "reason": "need more", "search_query": "tides"}),
        (
            "Sure!\n```yml\nAction: Answer\nreason: 'it''s known'\n```\nBye",
            {"action": "answer", "reason": "it's known", "search_query": ""},
        ),
        (
            'action: "search"\nsearch_query: "moon: gravity"\nreason: |\n  a\n  b\n',
            {"action": "search", "reason": "a\nb", "search_query": "moon: gravity"},
        ),
        (
            "```yaml\naction: search  # more\nsearch_query: >\n  long\n  query\n```",
            {"action": "search", "reason": "", "search_query": "long query"},
        ),
    ],
)
def test_parse_decision(reply: str, expected: dict[str, str]) -> None:
    assert parse_decision(reply) == expected


@pytest.mark.parametrize("reply", ["", "no yaml here", "```yaml\naction: dance\n```"])
def test_parse_decision_refuses_replies_without_an_action(reply: str) -> None:
    with pytest.raises(ValueError, match="no action"):
        parse_decision(reply)


def test_parse_yaml_block_reads_the_fenced_block_only() -> None:
    text = "action: outside\n```yaml\naction: inside\nnested:\n  deeper: x\n```\n"
    assert parse_yaml_block(text) == {"action": "inside", "nested": "deeper: x"}
