"""Whether a run can go on with the code deployed now: its cursor, checked frame by frame.

pflambda replays nothing, so a redeploy only matters where a run *is*: the frames of its
cursor. A run continues on new code when every frame still maps onto the new graph --

- the frame's flow (``""`` for the root) exists, is a flow, and has the class it had;
- the frame's next node exists, has the class it had, and sits in that same flow
  (nesting is part of a node's path id, ``Outer/Inner``).

Anything else may change: nodes added after the paused node, edges rewired, nodes the run
has already passed removed or renamed. The classes the run's code had are kept once per
graph fingerprint in the blob store (``shapes/<fingerprint>``, a few hundred bytes,
written at most once per process and version), so the check costs one read -- and only
when the fingerprint changed. When a frame does not map, :func:`check` raises
:class:`~pflambda.errors.FingerprintMismatch` naming the frames and the way out
(``pflambda migrate RUN --map OLD=NEW``).
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable, Mapping

from pflambda.blobs.base import BlobNotFound, BlobStore
from pflambda.engine.cursor import Cursor, Frame
from pflambda.errors import FingerprintMismatch, PinnedElsewhere
from pflambda.graph import SEP, Graph, is_flow
from pflambda.limits import SHAPE_REFRESH_DAYS
from pflambda.stores.base import RunRecord

__all__ = [
    "check",
    "check_node",
    "keep",
    "mismatches",
    "recall",
    "refusal",
    "remap",
    "remember",
    "shape_of",
]

PREFIX = "shapes/"
_remembered: weakref.WeakKeyDictionary[BlobStore, dict[str, float]] = weakref.WeakKeyDictionary()
"""Per blob store, the fingerprints this process has kept and when it last wrote each."""
_lock = threading.Lock()


def shape_of(graph: Graph) -> dict[str, str]:
    """Every node id (``""`` for the root flow) -> its class, ``module.QualName``."""
    shape = {"": _class(graph.root)}
    shape.update({node_id: _class(node) for node_id, node in graph.nodes.items()})
    return shape


def _class(node: object) -> str:
    cls = type(node)
    return f"{cls.__module__}.{cls.__qualname__}"


def remember(blobs: BlobStore, graph: Graph, now: float) -> None:
    """Keep ``graph``'s shape under its fingerprint: once per process and blob store, and
    again whenever this process last wrote it :data:`~pflambda.limits.SHAPE_REFRESH_DAYS`
    ago or more. The bucket deletes shapes :data:`~pflambda.limits.SHAPE_LIFE_DAYS`
    after their last write; every run's record is written (and its expiry set) by a
    process that keeps its shape, so a shape outlives every run that needs it."""
    fingerprint = graph.fingerprint()
    with _lock:
        written = _remembered.get(blobs, {}).get(fingerprint)
    if written is not None and now - written < SHAPE_REFRESH_DAYS * 86_400:
        return
    text = json.dumps(shape_of(graph), sort_keys=True, separators=(",", ":"))
    blobs.put(PREFIX + fingerprint, text.encode())
    with _lock:
        _remembered.setdefault(blobs, {})[fingerprint] = now


def keep(blobs: BlobStore, fingerprint: str) -> None:
    """Write the shape kept for ``fingerprint`` again (its life starts over), if there is
    one: a fork runs on its source's fingerprint, maybe no longer deployed."""
    try:
        data = blobs.get(PREFIX + fingerprint)
    except BlobNotFound:
        return
    blobs.put(PREFIX + fingerprint, data)


def recall(blobs: BlobStore, fingerprint: str) -> dict[str, str] | None:
    """The shape kept for ``fingerprint``; ``None`` if there is none (an older run)."""
    try:
        doc = json.loads(blobs.get(PREFIX + fingerprint))
    except BlobNotFound:
        return None
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else None


def mismatches(old: Mapping[str, str] | None, graph: Graph, cursor: Cursor) -> list[str]:
    """What of ``cursor`` does not map onto ``graph`` (empty: the run can go on).

    ``old`` is the shape of the code that wrote the cursor; ``None`` checks only that
    the frames' flows and nodes exist where the cursor says (an operator's mapping)."""
    new = shape_of(graph)
    problems: list[str] = []
    for frame in cursor.frames:
        for node_id, want_flow in _positions(frame):
            problems += _position_problems(node_id, want_flow, old, new, graph)
        inside = graph.parent.get(frame.node_id or "", frame.flow_id)
        if frame.node_id is not None and frame.node_id in new and inside != frame.flow_id:
            problems.append(f"{frame.node_id} is no longer inside {frame.flow_id or 'the root'}")
    return problems


def _positions(frame: Frame) -> Iterable[tuple[str, bool]]:
    yield frame.flow_id, True
    if frame.node_id is not None:
        yield frame.node_id, False


def _position_problems(
    node_id: str,
    want_flow: bool,
    old: Mapping[str, str] | None,
    new: Mapping[str, str],
    graph: Graph,
) -> list[str]:
    shown = node_id or "the root flow"
    if node_id not in new:
        return [f"{shown} is not in the deployed flow"]
    node = graph.root if node_id == "" else graph.nodes[node_id]
    if want_flow and not is_flow(node):
        return [f"{shown} is no longer a flow"]
    if old is not None and node_id in old and old[node_id] != new[node_id]:
        return [f"{shown} was a {old[node_id]}, is now a {new[node_id]}"]
    if old is not None and node_id not in old:
        return [f"{shown} was not in the run's flow"]
    return []


def check(
    blobs: BlobStore, record: RunRecord, graph: Graph, cursor: Cursor, *, site: str | None = None
) -> None:
    """Raise :class:`FingerprintMismatch` unless ``cursor`` (written by the code whose
    fingerprint ``record`` holds) maps onto ``graph``, frame by frame.

    The refusal is a :class:`PinnedElsewhere` when the run is pinned somewhere other than
    ``site`` (where this code runs): the caller may hand the run to its pinned version."""
    if graph.fingerprint() == record.fingerprint:
        return
    old = recall(blobs, record.fingerprint)
    if old is None:
        problems = [f"the shape of its flow ({record.fingerprint}) was not kept"]
    else:
        problems = mismatches(old, graph, cursor)
    if problems:
        raise refusal(record, graph, problems, site)


def check_node(
    blobs: BlobStore, record: RunRecord, graph: Graph, node_id: str, *, site: str | None = None
) -> None:
    """Raise like :func:`check` unless ``node_id`` (a fanned-out node of the run's code)
    exists in ``graph`` with the class it had."""
    if graph.fingerprint() == record.fingerprint:
        return
    old = recall(blobs, record.fingerprint)
    new = shape_of(graph)
    if old is None:
        problems = [f"the shape of its flow ({record.fingerprint}) was not kept"]
    elif node_id not in new:
        problems = [f"{node_id} is not in the deployed flow"]
    elif old.get(node_id) != new[node_id]:
        problems = [f"{node_id} was a {old.get(node_id)}, is now a {new[node_id]}"]
    else:
        return
    raise refusal(record, graph, problems, site)


def refusal(
    record: RunRecord, graph: Graph, problems: list[str], site: str | None
) -> FingerprintMismatch:
    """The error for a run whose cursor does not map onto ``graph``, naming the way out."""
    run_id = record.run_id
    message = (
        f"run {run_id} cannot go on with the deployed {record.flow} "
        f"({record.fingerprint} -> {graph.fingerprint()}): {'; '.join(problems)}. "
        f"Move it onto this code with: pflambda migrate {run_id} --map OLD=NEW"
    )
    if record.pinned is not None and record.pinned != site:
        return PinnedElsewhere(message, record.pinned, record.agent)
    return FingerprintMismatch(message)


def remap(cursor: Cursor, mapping: Mapping[str, str]) -> Cursor:
    """``cursor`` with node ids renamed by ``mapping`` (old full id -> new full id); a
    renamed flow renames the ids inside it too (``Old/X`` -> ``New/X``)."""

    def rename(node_id: str) -> str:
        if node_id in mapping:
            return mapping[node_id]
        for old, new in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
            if old and node_id.startswith(old + SEP):
                return new + node_id[len(old) :]
        return node_id

    frames = [
        Frame(
            **{
                **vars(frame),
                "flow_id": rename(frame.flow_id),
                "node_id": None if frame.node_id is None else rename(frame.node_id),
            }
        )
        for frame in cursor.frames
    ]
    return Cursor(frames)
