"""What the conformance agent does, keyed on the prefix of the first message's id.

The scenarios are the TCK's (``scenarios/*.feature``): complete with a message, answer
with a bare Message instead of a task, reject the task, add a text/file/url/data
artifact, ask for input, stream status updates and artifacts, or keep working long
enough for a client to resubscribe. The chunked-artifact scenario streams its artifact in
two chunks (append / lastChunk) while the run goes on.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from pflambda import Artifact, Flow, InputRequired, Message, Node, Part, Rejected, current_run

CHUNKED = "chunked-output"
"""The artifact id the chunked scenario streams (its chunks stand: no final artifact)."""

SLOW_STEPS = 8
"""Steps of the long-running scenario; each takes :data:`SLOW_STEP_SECONDS`."""
SLOW_STEP_SECONDS = 1.0

_REPLIES = {
    "tck-complete-task": "Hello from TCK",
    "tck-stream-001": "Stream hello from TCK",
    "tck-stream-003": "Stream task lifecycle",
    "tck-stream-ordering-001": "Ordered output",
    "tck-stream-artifact-text": "Streamed text content",
    "tck-artifact-text": "Generated text content",
}


def scenario(message_id: str) -> str:
    """The scenario a message id names (its longest known prefix). Other ids of the 1.0
    TCK (``tck-...``) complete; the 0.3 TCK's (``test-...-message-id-<uuid>``) converse:
    the task asks for input and stays open, as its tests continue, cancel and read tasks."""
    known = [*_REPLIES, *_OTHERS]
    matches = [p for p in known if message_id.startswith(p)]
    if matches:
        return max(matches, key=len)
    return "tck-complete-task" if message_id.startswith("tck-") else "tck-input-required"


_OTHERS = (
    "tck-artifact-file",
    "tck-artifact-file-url",
    "tck-artifact-data",
    "tck-input-required",
    "tck-stream-002",
    "tck-stream-artifact-file",
    "tck-stream-artifact-chunked",
    "tck-message-response",
    "tck-reject-task",
    "test-resubscribe-message-id",
)


def shared_for(message: Message) -> dict[str, Any]:
    """The first message's id picks the scenario."""
    return {"question": message.text, "scenario": scenario(message.message_id)}


def reply_for(message: Message) -> dict[str, Any]:
    """A reply to the question carries its own scenario (ask again, or complete)."""
    return {"text": message.text, "scenario": scenario(message.message_id)}


class Act(Node):
    """Does what the scenario says, in one step (or a few, for the long one)."""

    def prep(self, shared: dict[str, Any]) -> str:
        name = str(shared["scenario"])
        reply = shared.get("input")
        if name == "tck-input-required" and (reply is None or reply["scenario"] == name):
            raise InputRequired("Please provide input", key="input")  # again, for such a reply
        if name == "tck-reject-task":
            raise Rejected("rejected")
        return name

    def exec(self, name: str) -> None:
        if name == "test-resubscribe-message-id":
            time.sleep(SLOW_STEP_SECONDS)

    def post(self, shared: dict[str, Any], prep_res: str, exec_res: Any) -> str | None:
        if prep_res == "test-resubscribe-message-id":
            shared["steps"] = int(shared.get("steps", 0)) + 1
            if shared["steps"] < SLOW_STEPS:
                return "again"
        if prep_res == "tck-stream-artifact-chunked":  # two chunks, committed with this step
            run = current_run()
            run.emit_artifact(CHUNKED, "chunk-1 ", name="output")
            run.emit_artifact(CHUNKED, "chunk-2", append=True, last_chunk=True)
        if prep_res == "tck-message-response":
            text = Part(text="Direct message response")
            shared["answer"] = Message("", "agent", (text,))  # the send answers with it
        else:
            shared["answer"] = _REPLIES.get(prep_res, "Hello from TCK")
        return "done"


class Done(Node):
    """Where every scenario ends (so the loop's node never ends the flow by default)."""


def create_flow() -> Flow:
    """One node that may loop on itself (the long-running scenario), then ends."""
    act = Act()
    act - "again" >> act
    act - "done" >> Done()
    return Flow(start=act)


def artifacts_for(shared: dict[Any, Any], task_id: str) -> list[Artifact] | Message:
    """The artifacts a scenario asks for (none for the plain completion), or the Message
    the task answers with instead of itself."""
    if isinstance(shared.get("answer"), Message):
        return shared["answer"]  # type: ignore[no-any-return]
    name = str(shared.get("scenario"))
    part: Part | None = None
    if name in ("tck-artifact-file", "tck-stream-artifact-file"):
        raw = base64.b64encode(b"TCK file content").decode()
        part = Part(file_bytes=raw, media_type="text/plain", filename="output.txt")
    elif name == "tck-artifact-file-url":
        url = "https://example.com/output.txt"
        part = Part(file_uri=url, media_type="text/plain", filename="output.txt")
    elif name == "tck-artifact-data":
        part = Part(data={"key": "value", "count": 42})
    elif name in _REPLIES and name != "tck-complete-task":
        part = Part(text=_REPLIES[name])
    if part is None:
        return []
    return [Artifact(artifact_id=f"{task_id}-output", parts=(part,), name="output")]
