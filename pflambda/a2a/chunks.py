"""Streamed artifacts as A2A sees them: the run's artifact log as events and as artifacts.

A node emits chunks with ``current_run().emit_artifact`` (:mod:`pflambda.engine.artifacts`
checks them and commits them with the step). Here the log's entries become
``TaskArtifactUpdateEvent``s (one per chunk, with its ``append``/``lastChunk``) for
streams, and the artifacts they build so far for GetTask. The artifacts ``to_artifacts``
computes from the final shared state come after the streamed ones; one whose
``artifactId`` was streamed is not shown twice (the streamed one stands).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pflambda.a2a.model import Artifact, ArtifactUpdate, Part
from pflambda.engine.artifacts import Streamed, accumulate

__all__ = ["artifacts_of", "merged", "updates", "upto"]


def _artifact(art_id: str, parts: Sequence[Mapping[str, Any]], doc: Any) -> Artifact:
    return Artifact(
        artifact_id=art_id,
        parts=tuple(Part.from_json(dict(p)) for p in parts),
        name=doc.get("name") if isinstance(doc, Mapping) else doc.name,
        description=doc.get("description") if isinstance(doc, Mapping) else doc.description,
        metadata=doc.get("metadata") if isinstance(doc, Mapping) else doc.metadata,
    )


def updates(
    task_id: str, context_id: str, entries: Iterable[Mapping[str, Any]]
) -> list[ArtifactUpdate]:
    """One artifact-update event per chunk, in commit order."""
    return [
        ArtifactUpdate(
            task_id,
            context_id,
            _artifact(e["id"], e["parts"], e),
            append=bool(e.get("append")),
            last_chunk=bool(e.get("last")),
            metadata={"step": int(e["s"]), "chunk": int(e.get("n", 0))},
        )
        for e in entries
    ]


def artifacts_of(entries: Iterable[Mapping[str, Any]]) -> tuple[Artifact, ...]:
    """The artifacts the chunks build, in the order they were first emitted."""
    built: dict[str, Streamed] = accumulate(entries)
    return tuple(_artifact(s.artifact_id, s.parts, s) for s in built.values())


def upto(entries: Iterable[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """The entries committed by step ``step`` or before."""
    return [e for e in entries if int(e["s"]) <= step]


def merged(streamed: Sequence[Artifact], final: Sequence[Artifact]) -> tuple[Artifact, ...]:
    """Streamed artifacts, then the final ones whose ids were not streamed."""
    seen = {a.artifact_id for a in streamed}
    return (*streamed, *(a for a in final if a.artifact_id not in seen))
