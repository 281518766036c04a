"""flows.summarise: a BatchNode summarises each document, then Combine joins them."""

from __future__ import annotations

from typing import Any

import pytest

import flows.summarise.nodes as nodes
from flows.summarise.flow import create_flow
from flows.summarise.nodes import Combine, SummariseEach
from flows.summarise.utils import split_into_documents
from pflambda import BatchNode
from pflambda.aws.worker import Worker, parse
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine.fanout import run_chunk
from pflambda.engine.runner import Engine
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore

FLOW = "flows.summarise.flow:create_flow"
TEXT = """\
The tide rises and falls twice a day. It is driven mostly by the Moon's gravity, \
with the Sun adding a smaller pull.

Spring tides happen when the Sun and Moon line up. Neap tides happen when they are \
at right angles, and the range between high and low water is smallest.

Coastal engineers use tide tables to plan harbours and sea walls. Sailors use them too."""


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFLAMBDA_LLM", "offline")


def run(shared: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    return create_flow().run(shared), shared


def test_a_text_is_summarised_paragraph_by_paragraph() -> None:
    action, shared = run({"question": TEXT})
    assert action == "done"
    assert len(shared["summaries"]) == 3
    assert shared["summaries"][0].startswith("The tide rises and falls twice a day.")
    assert shared["answer"] == (
        "The tide rises and falls twice a day. Spring tides happen when the Sun and Moon "
        "line up. Coastal engineers use tide tables to plan harbours and sea walls."
    )


def test_documents_win_over_the_question() -> None:
    docs = ["Alpha is the first letter. It starts the alphabet.", "Omega is the last one."]
    _, shared = run({"question": TEXT, "documents": docs})
    assert len(shared["summaries"]) == 2
    assert shared["summaries"][1] == "Omega is the last one."
    assert "Alpha" in shared["answer"]
    assert "Omega" in shared["answer"]


def test_one_document_is_its_own_summary() -> None:
    _, shared = run({"documents": ["Just one sentence here."]})
    assert shared["answer"] == shared["summaries"][0] == "Just one sentence here."


def test_nothing_to_summarise() -> None:
    _, shared = run({"question": "  \n\n "})
    assert shared["summaries"] == []
    assert shared["answer"] == "There was nothing to summarise."


def test_the_batch_node_is_marked_for_fan_out() -> None:
    flow = create_flow()
    start = flow.start_node
    assert isinstance(start, SummariseEach)
    assert isinstance(start, BatchNode)
    assert SummariseEach.fan_out is True
    assert start.max_retries == 2
    assert isinstance(start.successors["combine"], Combine)


def test_each_document_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: dict[str, int] = {}

    def flaky(prompt: str, **kw: Any) -> str:
        attempts[prompt] = attempts.get(prompt, 0) + 1
        if attempts[prompt] == 1:
            raise TimeoutError("try again")
        return f"summary {len(attempts)}"

    monkeypatch.setattr(nodes, "call_llm", flaky)
    _, shared = run({"documents": ["one", "two"]})
    assert shared["summaries"] == ["summary 1", "summary 2"]
    assert shared["answer"] == "summary 3"
    assert list(attempts.values()) == [2, 2, 2]  # each document, then the combine: 2 tries


@pytest.mark.parametrize("shared", [{"question": TEXT}, {"documents": ["A b c.", "D e f."]}])
def test_durable_run_matches_in_process(shared: dict[str, Any]) -> None:
    action, expected = run(dict(shared))
    engine = Engine(MemoryStore(), MemoryBlobStore())
    outcome = engine.start(FLOW, dict(shared))
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared == expected
    assert outcome.result == action
    assert outcome.seq == 2


def test_split_into_documents() -> None:
    assert split_into_documents("One.\n\n  \nTwo.  Three.\n") == ["One.", "Two. Three."]
    assert split_into_documents("") == []
    long = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = split_into_documents(long, max_words=50)
    assert len(chunks) == 4
    assert all(len(c.split()) <= 50 for c in chunks)
    assert " ".join(chunks) == long


def test_with_a_queue_the_documents_fan_out_and_end_the_same() -> None:
    _, expected = run({"question": TEXT})
    clock = FakeClock()
    queue = MemoryQueue(clock=clock)
    engine = Engine(MemoryStore(), MemoryBlobStore(), queue, clock=clock)
    outcome = engine.start(FLOW, {"question": TEXT})
    assert outcome.stopped == "fanout"
    while batch := queue.receive(10):
        for message in batch:
            doc = parse(message.body)
            if doc["kind"] == "fanout":
                run_chunk(engine, doc, message.receive_count)
            else:
                Worker(engine).handle(doc)
            queue.ack([message.receipt])
    assert engine.store.get_run(outcome.run_id).status == RunStatus.COMPLETED
    assert engine.state(outcome.run_id)[0] == expected
