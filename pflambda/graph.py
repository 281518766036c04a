"""The shape of a flow: stable node ids, a structural fingerprint and mermaid drawings.

A durable run stores *where* it is as node ids, so ids must be the same every time
the same flow is built (in another Lambda container, after a redeploy). An id is
the node's ``name`` when the user gave one, else its class name -- numbered in
discovery order (``Step_1``, ``Step_2``) when a class appears more than once in the
same flow. Discovery is depth-first from ``start_node``, following successors in
the order they were wired. A node inside a nested flow has a path id:
``Outer/Inner``.

The fingerprint hashes ids, classes and edges, so a run paused under one version of
a flow can tell that the deployed flow changed under it.

Everything here is duck-typed: flows built from the ``pocketflow`` package's classes
are described the same way as pflambda's.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Graph",
    "GraphError",
    "Level",
    "describe",
    "fingerprint",
    "is_flow",
    "to_mermaid",
]

SEP = "/"
"""Joins the ids of nested flows into a path id."""


class GraphError(ValueError):
    """The flow's graph cannot be described: duplicate ids, a flow inside itself, ..."""


def is_flow(node: Any) -> bool:
    """Whether ``node`` is a flow (pflambda's or pocketflow's): it has a start node."""
    return hasattr(node, "start_node")


def _class_name(node: Any) -> str:
    cls = type(node)
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass
class Level:
    """The nodes of one flow (not of the flows nested in it), in discovery order."""

    path: str
    """The flow's own id; ``""`` for the top-level flow."""
    flow: Any
    ids: dict[int, str] = field(default_factory=dict)
    """``id(node)`` -> full node id, for every node of this level."""
    nodes: list[Any] = field(default_factory=list)

    def id_of(self, node: Any) -> str:
        """The full id of ``node`` (or of a copy of it) in this flow."""
        try:
            return self.ids[id(node)]
        except KeyError:
            raise GraphError(f"node {node!r} is not part of flow {self.path or '<root>'}") from None

    @property
    def start_id(self) -> str | None:
        """The id of the flow's start node (``None`` for an empty flow)."""
        start = self.flow.start_node
        return None if start is None else self.id_of(start)


@dataclass
class Graph:
    """Every node of a flow and of the flows nested in it, by full id."""

    root: Any
    levels: dict[str, Level]
    """Flow id -> its level; ``""`` is the root flow."""
    nodes: dict[str, Any]
    """Full node id -> the node object wired into the graph (never a per-visit copy)."""
    parent: dict[str, str]
    """Full node id -> id of the flow that contains it."""

    def node(self, node_id: str) -> Any:
        """The node with this id; a clear error if the flow has no such node."""
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(f"flow has no node {node_id!r}") from None

    def level(self, flow_id: str) -> Level:
        """The level of the flow with this id (``""`` for the root)."""
        try:
            return self.levels[flow_id]
        except KeyError:
            raise GraphError(f"flow has no nested flow {flow_id!r}") from None

    def edges(self) -> Iterator[tuple[str, str, str]]:
        """Every ``(source id, action, target id)`` in wiring order."""
        for level in self.levels.values():
            for node in level.nodes:
                src = level.id_of(node)
                for action, target in node.successors.items():
                    yield src, action, level.id_of(target)

    def fingerprint(self) -> str:
        """A short hash of ids, classes and edges: changes when the structure does."""
        shape = {
            "nodes": [[nid, _class_name(node)] for nid, node in self.nodes.items()],
            "edges": list(self.edges()),
            "starts": {path: level.start_id for path, level in self.levels.items()},
        }
        text = json.dumps(shape, separators=(",", ":"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(flow: Any) -> Graph:
    """Walk ``flow`` and give every node (nested flows included) its stable id."""
    if not is_flow(flow):
        raise GraphError(f"expected a Flow, got {type(flow).__qualname__}")
    graph = Graph(root=flow, levels={}, nodes={}, parent={})
    _walk(graph, flow, "", ancestors=(id(flow),))
    return graph


def _discover(start: Any) -> list[Any]:
    """Nodes reachable from ``start``, depth-first, successors in wiring order."""
    seen: set[int] = set()
    order: list[Any] = []
    stack = [start] if start is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        stack.extend(reversed(list(node.successors.values())))
    return order


def _local_ids(nodes: list[Any]) -> list[str]:
    counts = Counter(type(n).__name__ for n in nodes if getattr(n, "name", None) is None)
    numbered: Counter[str] = Counter()
    ids: list[str] = []
    for node in nodes:
        name = getattr(node, "name", None)
        if name is not None:
            if not isinstance(name, str) or not name or SEP in name:
                raise GraphError(f"node name must be a non-empty string without {SEP!r}: {name!r}")
            ids.append(name)
            continue
        cls = type(node).__name__
        if counts[cls] == 1:
            ids.append(cls)
        else:
            numbered[cls] += 1
            ids.append(f"{cls}_{numbered[cls]}")
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    if dupes:
        raise GraphError(f"two nodes in one flow share the id {dupes[0]!r}: name them apart")
    return ids


def _walk(graph: Graph, flow: Any, path: str, ancestors: tuple[int, ...]) -> None:
    level = Level(path=path, flow=flow)
    graph.levels[path] = level
    nodes = _discover(flow.start_node)
    for node, local in zip(nodes, _local_ids(nodes), strict=True):
        full = f"{path}{SEP}{local}" if path else local
        level.ids[id(node)] = full
        level.nodes.append(node)
        graph.nodes[full] = node
        graph.parent[full] = path
    for node in nodes:
        if is_flow(node):
            if id(node) in ancestors:
                raise GraphError(f"flow {level.id_of(node)!r} contains itself")
            _walk(graph, node, level.id_of(node), (*ancestors, id(node)))


def fingerprint(flow: Any) -> str:
    """The structural fingerprint of ``flow`` (see :meth:`Graph.fingerprint`)."""
    return describe(flow).fingerprint()


def to_mermaid(flow: Any) -> str:
    """Draw ``flow`` as a mermaid ``flowchart``: nested flows are subgraphs, actions
    other than ``default`` label their edges, and loops are drawn as edges back."""
    graph = describe(flow)
    short = {nid: f"n{i}" for i, nid in enumerate(graph.nodes)}
    lines = ["flowchart TD"]

    def emit(path: str, indent: str) -> None:
        for node in graph.levels[path].nodes:
            nid = graph.levels[path].id_of(node)
            label = nid.rsplit(SEP, 1)[-1].replace('"', "'")
            if is_flow(node):
                lines.append(f'{indent}subgraph {short[nid]}["{label}"]')
                emit(nid, indent + "    ")
                lines.append(f"{indent}end")
            else:
                lines.append(f'{indent}{short[nid]}["{label}"]')

    emit("", "    ")
    for src, action, dst in graph.edges():
        arrow = "-->" if action == "default" else f'-->|"{action.replace(chr(34), chr(39))}"|'
        lines.append(f"    {short[src]} {arrow} {short[dst]}")
    return "\n".join(lines) + "\n"
