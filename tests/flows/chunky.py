"""Flows that stream artifact chunks with ``current_run().emit_artifact`` while they run."""

from __future__ import annotations

from typing import Any

from pflambda import (
    AsyncFlow,
    AsyncNode,
    AsyncParallelBatchNode,
    BatchNode,
    Flow,
    InputRequired,
    Node,
    Part,
    current_run,
)

CRASH_AT: dict[str, int] = {}
"""run id -> the step (seq) whose ``post`` crashes the process once (KeyboardInterrupt)."""


class Write(Node):
    """One chunk per visit: pops ``shared["words"]``; the first chunk starts the artifact,
    the last one (when no word is left) completes it; loops with ``again``."""

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str | None:
        run = current_run()
        words = shared["words"]
        word = words.pop(0)
        first = shared.get("written", 0) == 0
        if not shared.get("quiet"):  # bench/chunks.py compares with and without chunks
            text = f"{word} " * int(shared.get("repeat", 1))
            run.emit_artifact("story", text, append=not first, last_chunk=not words, name="story")
        if CRASH_AT.get(run.run_id) == run.step:
            del CRASH_AT[run.run_id]
            raise KeyboardInterrupt("crash after the chunk, before the commit")
        shared["written"] = shared.get("written", 0) + 1
        return "again" if words else None


class Finish(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["answer"] = f"{shared['written']} chunks"


def streaming() -> Flow:
    """``Write`` until the words run out, then ``Finish`` (its answer is a final artifact)."""
    write = Write()
    write - "again" >> write
    write >> Finish()
    return Flow(start=write)


class AsyncWrite(AsyncNode):
    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        current_run().emit_artifact("a", [Part(text="one"), Part(data={"n": 1})], name="mixed")
        current_run().emit_artifact("a", Part(text="two"), append=True, last_chunk=True)


class ParallelWrite(AsyncParallelBatchNode):
    async def prep_async(self, shared: dict[str, Any]) -> list[int]:
        return [0, 1, 2]

    async def exec_async(self, item: int) -> int:
        current_run().emit_artifact(f"item-{item}", f"item {item}", last_chunk=True)
        return item


def asynchronous() -> AsyncFlow:
    """Two chunks of one artifact from an async post, then one artifact per batch item."""
    node = AsyncWrite()
    node >> ParallelWrite()
    return AsyncFlow(start=node)


class EachItem(BatchNode):
    def prep(self, shared: dict[str, Any]) -> list[tuple[int, str]]:
        return list(enumerate(shared["items"]))

    def exec(self, item: tuple[int, str]) -> str:
        current_run().emit_artifact("items", item[1], append=item[0] > 0)
        return item[1]


def batch() -> Flow:
    """An in-process batch node emitting one chunk per item from ``exec``."""
    return Flow(start=EachItem())


class AskThenWrite(Node):
    """Emits a chunk, then (first visit) pauses; the reply's visit emits the last chunk."""

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        run = current_run()
        if "reply" not in shared:
            run.emit_artifact("notes", "never committed: the step pauses")
            raise InputRequired("more?", key="reply")
        run.emit_artifact("notes", "before ")
        run.emit_artifact("notes", f"after {shared['reply']}", append=True, last_chunk=True)


class Before(Node):
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        current_run().emit_artifact("intro", "hello", last_chunk=True)


def asking() -> Flow:
    """An artifact, then a question, then an artifact emitted after the reply."""
    first = Before()
    first >> AskThenWrite()
    return Flow(start=first)


class Bad(Node):
    """Emits what ``shared["bad"]`` describes; records the error it got."""

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        args, kwargs = shared["bad"]
        current_run().emit_artifact(*args, **kwargs)


def bad() -> Flow:
    return Flow(start=Bad())


class Flaky(Node):
    """``exec`` emits a chunk per attempt and fails the first two."""

    def exec(self, prep_res: Any) -> int:
        run = current_run()
        run.emit_artifact(f"try-{run.attempt}", f"attempt {run.attempt}", last_chunk=True)
        if run.attempt < 3:
            raise RuntimeError("flaky")
        return run.attempt


class Fallback(Node):
    """Every ``exec`` attempt emits and fails; ``exec_fallback`` emits its own chunk."""

    def exec(self, prep_res: Any) -> None:
        current_run().emit_artifact("attempt", "never committed")
        raise RuntimeError("always")

    def exec_fallback(self, prep_res: Any, exc: Exception) -> str:
        current_run().emit_artifact("fallback", "from exec_fallback", last_chunk=True)
        return "fell back"


FAILED_ONCE: set[str] = set()


class FlakyItems(AsyncParallelBatchNode):
    """Three items at once; item 1's first attempt emits, then fails."""

    async def prep_async(self, shared: dict[str, Any]) -> list[int]:
        return [0, 1, 2]

    async def exec_async(self, item: int) -> int:
        run = current_run()
        first = f"{run.run_id}/{item}" not in FAILED_ONCE
        run.emit_artifact(f"item-{item}-{'first' if first else 'retry'}", f"{item}")
        if item == 1 and first:
            FAILED_ONCE.add(f"{run.run_id}/{item}")
            raise RuntimeError("item 1 fails once")
        return item


def retrying() -> AsyncFlow:
    """An exec that fails twice, one that falls back, parallel items with one retry."""
    flaky = Flaky(max_retries=3)
    fallback = Fallback(max_retries=2)
    flaky >> fallback >> FlakyItems(max_retries=2)
    return AsyncFlow(start=flaky)
