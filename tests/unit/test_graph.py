"""Stable node ids, fingerprints and mermaid drawings."""

from __future__ import annotations

import pocketflow
import pytest

from pflambda import BatchFlow, Flow, Node
from pflambda.graph import GraphError, describe, fingerprint, to_mermaid


class Decide(Node):
    pass


class Search(Node):
    pass


class Answer(Node):
    pass


def research() -> Flow:
    decide, search, answer = Decide(), Search(), Answer()
    decide - "search" >> search
    decide - "answer" >> answer
    search - "decide" >> decide
    return Flow(start=decide)


def test_ids_are_class_names_in_discovery_order() -> None:
    graph = describe(research())
    assert list(graph.nodes) == ["Decide", "Search", "Answer"]
    assert list(graph.edges()) == [
        ("Decide", "search", "Search"),
        ("Decide", "answer", "Answer"),
        ("Search", "decide", "Decide"),
    ]


def test_ids_are_stable_across_builds() -> None:
    assert describe(research()).nodes.keys() == describe(research()).nodes.keys()
    assert fingerprint(research()) == fingerprint(research())


def test_repeated_classes_are_numbered_and_names_win() -> None:
    a, b, c = Node(), Node(), Node(name="final")
    a >> b >> c
    assert list(describe(Flow(a)).nodes) == ["Node_1", "Node_2", "final"]


def test_duplicate_names_are_a_clear_error() -> None:
    a, b = Node(name="x"), Node(name="x")
    a >> b
    with pytest.raises(GraphError, match="share the id 'x'"):
        describe(Flow(a))


def test_bad_name_is_rejected() -> None:
    with pytest.raises(GraphError, match="non-empty string"):
        describe(Flow(Node(name="a/b")))


def test_nested_flows_get_path_ids() -> None:
    inner_start = Search()
    inner_start >> Answer()
    inner = BatchFlow(start=inner_start, name="per_doc")
    outer = Flow(start=Decide())
    outer.start_node >> inner
    graph = describe(outer)
    assert list(graph.nodes) == ["Decide", "per_doc", "per_doc/Search", "per_doc/Answer"]
    assert graph.parent["per_doc/Answer"] == "per_doc"
    assert graph.level("per_doc").start_id == "per_doc/Search"


def test_fingerprint_changes_with_structure() -> None:
    base = fingerprint(research())
    changed = research()
    changed.start_node.successors["answer"] >> Answer(name="extra")
    assert fingerprint(changed) != base
    rewired = research()
    rewired.start_node.successors["other"] = rewired.start_node.successors.pop("answer")
    assert fingerprint(rewired) != base


def test_fingerprint_ignores_params() -> None:
    flow = research()
    flow.set_params({"x": 1})
    assert fingerprint(flow) == fingerprint(research())


def test_a_flow_inside_itself_is_an_error() -> None:
    outer = Flow()
    inner = Flow(start=Node())
    inner.start_node >> outer
    outer.start(inner)
    with pytest.raises(GraphError, match="contains itself"):
        describe(outer)


def test_not_a_flow() -> None:
    with pytest.raises(GraphError, match="expected a Flow"):
        describe(Node())


def test_pocketflow_classes_are_described_too() -> None:
    a, b = pocketflow.Node(), pocketflow.Node()
    a - "go" >> b
    graph = describe(pocketflow.Flow(a))
    assert list(graph.edges()) == [("Node_1", "go", "Node_2")]


def test_mermaid_draws_loops_labels_and_subgraphs() -> None:
    inner = Flow(start=Answer(), name="finish")
    decide, search = Decide(), Search()
    decide - "search" >> search
    search >> decide
    decide - "answer" >> inner
    text = to_mermaid(Flow(decide))
    assert text.splitlines() == [
        "flowchart TD",
        '    n0["Decide"]',
        '    n1["Search"]',
        '    subgraph n2["finish"]',
        '        n3["Answer"]',
        "    end",
        '    n0 -->|"search"| n1',
        '    n0 -->|"answer"| n2',
        "    n1 --> n0",
    ]
