"""Where to draw a flow: boxes for nodes, groups for nested flows, and routed edges.

The console draws the graph as SVG in the browser from this layout, so the browser
needs no graph library and nothing is vendored. Each flow (the root and every nested
flow) is laid out on its own, in layers: the start node on top, every other node one
layer below the first node that leads to it (breadth-first), nodes of one layer side
by side in discovery order. A nested flow is a group box sized to hold its own
layout. Edges that go down are straight; edges that go back up (loops) run around
the right side of their flow, so they never cross the boxes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pflambda.graph import SEP, Graph, is_flow

__all__ = ["layout"]

NODE_H = 34
"""Height of a node box."""
CHAR_W = 7.2
"""Approximate width of one character of a label (13 px sans-serif)."""
MIN_W = 80
PAD = 16
"""Inside a group: space around its content."""
HEADER = 22
"""Inside a group: room for its label."""
GAP_X, GAP_Y = 36, 46
LOOP_GAP = 14
"""How far outside its flow each loop edge runs."""


@dataclass
class _Box:
    node_id: str
    label: str
    kind: str
    """``node`` or ``flow``."""
    w: float
    h: float
    x: float = 0.0
    y: float = 0.0
    layer: int = 0
    inner: _Level | None = None


@dataclass
class _Level:
    path: str
    boxes: dict[str, _Box] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    w: float = 0.0
    h: float = 0.0
    loops: int = 0


def layout(graph: Graph) -> dict[str, Any]:
    """The drawing of ``graph`` as JSON: ``width``, ``height``, ``nodes`` and ``edges``.

    Every node has ``id``, ``label``, ``kind`` (``node`` or ``flow``), ``parent`` (the
    id of the nested flow that holds it, ``""`` at the top) and ``x``/``y``/``w``/``h``
    in absolute coordinates; a flow's box contains its nodes'. Every edge has
    ``source``, ``target``, ``action`` and ``points`` (a polyline), and ``back``
    when it goes to an earlier layer (a loop).
    """
    edges_by_level: dict[str, list[tuple[str, str, str]]] = {}
    for src, action, dst in graph.edges():
        edges_by_level.setdefault(graph.parent[src], []).append((src, action, dst))
    root = _measure(graph, "", edges_by_level)
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    _place(root, 0.0, 0.0, nodes, edges)
    return {"width": round(root.w, 1), "height": round(root.h, 1), "nodes": nodes, "edges": edges}


def _measure(graph: Graph, path: str, edges: dict[str, list[tuple[str, str, str]]]) -> _Level:
    """Lay out one flow's level in its own coordinates (nested flows first)."""
    level = _Level(path, edges=edges.get(path, []))
    source = graph.level(path)
    for node in source.nodes:
        node_id = source.id_of(node)
        label = node_id.rsplit(SEP, 1)[-1]
        if is_flow(node):
            inner = _measure(graph, node_id, edges)
            box = _Box(node_id, label, "flow", inner.w + 2 * PAD, inner.h + PAD + HEADER)
            box.w = max(box.w, len(label) * CHAR_W + 2 * PAD)
            box.inner = inner
        else:
            box = _Box(node_id, label, "node", max(MIN_W, len(label) * CHAR_W + 24), NODE_H)
        level.boxes[node_id] = box
    _layer(level, source.start_id)
    _arrange(level)
    return level


def _layer(level: _Level, start: str | None) -> None:
    """Breadth-first layers from the start node; unreached nodes go below the rest."""
    succ: dict[str, list[str]] = {}
    for src, _, dst in level.edges:
        succ.setdefault(src, []).append(dst)
    seen: set[str] = set()
    queue: deque[str] = deque()
    if start is not None and start in level.boxes:
        queue.append(start)
        seen.add(start)
    while queue:
        current = queue.popleft()
        for nxt in succ.get(current, []):
            if nxt not in seen:
                seen.add(nxt)
                level.boxes[nxt].layer = level.boxes[current].layer + 1
                queue.append(nxt)
    bottom = max((b.layer for b in level.boxes.values()), default=0) + 1
    for box in level.boxes.values():
        if box.node_id not in seen:
            box.layer = bottom


def _arrange(level: _Level) -> None:
    """Rows by layer, centred; the level's size includes room for loop edges."""
    rows: dict[int, list[_Box]] = {}
    for box in level.boxes.values():
        rows.setdefault(box.layer, []).append(box)
    widths = {n: sum(b.w for b in row) + GAP_X * (len(row) - 1) for n, row in rows.items()}
    width = max(widths.values(), default=0.0)
    y = 0.0
    for n in sorted(rows):
        x = (width - widths[n]) / 2
        height = max(b.h for b in rows[n])
        for box in rows[n]:
            box.x, box.y = x, y + (height - box.h) / 2
            x += box.w + GAP_X
        y += height + GAP_Y
    level.loops = sum(1 for s, _, d in level.edges if level.boxes[d].layer <= level.boxes[s].layer)
    level.w = width + level.loops * LOOP_GAP
    level.h = max(y - GAP_Y, 0.0)


def _place(
    level: _Level, ox: float, oy: float, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]
) -> None:
    """Emit the level's boxes and edges at offset ``(ox, oy)``, nested levels inside."""
    for box in level.boxes.values():
        x, y = ox + box.x, oy + box.y
        nodes.append(
            {
                "id": box.node_id,
                "label": box.label,
                "kind": box.kind,
                "parent": level.path,
                "x": round(x, 1),
                "y": round(y, 1),
                "w": round(box.w, 1),
                "h": round(box.h, 1),
            }
        )
        if box.inner is not None:
            inner_x = x + (box.w - box.inner.w) / 2
            _place(box.inner, inner_x, y + HEADER, nodes, edges)
    loop = 0
    right = ox + level.w - level.loops * LOOP_GAP
    for src, action, dst in level.edges:
        a, b = level.boxes[src], level.boxes[dst]
        back = b.layer <= a.layer
        if back:
            loop += 1
            points = _loop(a, b, ox, oy, right + loop * LOOP_GAP)
        else:
            points = [
                (ox + a.x + a.w / 2, oy + a.y + a.h),
                (ox + b.x + b.w / 2, oy + b.y),
            ]
        edges.append(
            {
                "source": src,
                "target": dst,
                "action": action,
                "back": back,
                "points": [[round(px, 1), round(py, 1)] for px, py in points],
            }
        )


def _loop(a: _Box, b: _Box, ox: float, oy: float, lane: float) -> list[tuple[float, float]]:
    """From the right of ``a`` out to ``lane``, up (or down) to ``b``, into its right side."""
    ay, by = oy + a.y + a.h / 2, oy + b.y + b.h / 2
    if a is b:
        by = ay - a.h / 4
        ay = ay + a.h / 4
    return [(ox + a.x + a.w, ay), (lane, ay), (lane, by), (ox + b.x + b.w, by)]
