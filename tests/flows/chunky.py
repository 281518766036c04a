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
