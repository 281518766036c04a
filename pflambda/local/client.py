"""``pflambda send``: a small A2A client for people, on the standard library.

It reads the agent card (does the agent stream?), sends one message as A2A 0.3
JSON-RPC -- ``message/stream``, or ``message/send`` with ``--no-stream`` or when the
agent does not stream -- and follows the task until it settles, polling ``tasks/get``
if the answer came back before then. Progress (states, the agent's status messages)
goes to stderr as it arrives; artifacts, the answer, go to stdout.

Exit codes: 0 completed, 3 input-required (the command to reply is printed),
1 failed, canceled, rejected or any error (one line: ``error CODE: message``),
2 bad usage.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = ["A2AError", "Client", "send", "sse_events"]

SETTLED = frozenset({"completed", "failed", "canceled", "rejected", "input-required"})
"""States after which nothing happens until someone acts (or ever)."""
EXIT = {"completed": 0, "input-required": 3}


class A2AError(Exception):
    """A JSON-RPC error, an HTTP error status, or an unreachable agent."""

    def __init__(self, code: int | str, message: str) -> None:
        super().__init__(f"error {code}: {message}")
        self.code, self.message = code, message


class Client:
    """JSON-RPC calls to one agent URL (urllib; ``timeout`` is per read, in seconds)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    @property
    def card_url(self) -> str:
        """Where the agent's card is: ``.well-known/agent-card.json`` under its URL."""
        return self.url.rstrip("/") + "/.well-known/agent-card.json"

    def card(self) -> dict[str, Any]:
        """The agent card."""
        request = urllib.request.Request(self.card_url, headers=self._headers())
        with self._open(request) as response:
            doc = json.load(response)
        if not isinstance(doc, dict):
            raise A2AError("card", f"{self.card_url} is not an agent card")
        return doc

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """One request, one JSON-RPC result (:class:`A2AError` for an error)."""
        with self._open(self._rpc(method, params)) as response:
            return _result(json.load(response))

    def stream(self, method: str, params: dict[str, Any]) -> Generator[Any, None, None]:
        """The results of a streaming call, as the server sends them (SSE)."""
        with self._open(self._rpc(method, params, sse=True)) as response:
            if "text/event-stream" not in response.headers.get("Content-Type", ""):
                yield _result(json.load(response))  # an error before the stream started
                return
            for event, data in sse_events(response):
                doc = json.loads(data)
                if event == "error" and isinstance(doc, dict) and "error" not in doc:
                    doc = {"error": doc}
                yield _result(doc)

    def _rpc(
        self, method: str, params: dict[str, Any], sse: bool = False
    ) -> urllib.request.Request:
        doc = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": method, "params": params}
        headers = self._headers()
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "text/event-stream" if sse else "application/json"
        return urllib.request.Request(self.url, json.dumps(doc).encode(), headers, method="POST")

    def _headers(self) -> dict[str, str]:
        headers = {"A2A-Version": "0.3", "User-Agent": "pflambda-send"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _open(self, request: urllib.request.Request) -> Any:
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                raise A2AError(f"HTTP {exc.code}", _http_reason(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise A2AError("connection", f"cannot reach {request.full_url}: {reason}") from None


def sse_events(lines: IO[bytes]) -> Iterator[tuple[str, str]]:
    """``(event, data)`` for each server-sent event read from ``lines``."""
    data: list[str]
    event, data = "", []
    for raw in iter(lines.readline, b""):
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:
        yield event, "\n".join(data)


def _result(doc: Any) -> Any:
    if not isinstance(doc, dict):
        raise A2AError("response", "the agent did not answer with a JSON-RPC object")
    error = doc.get("error")
    if error:
        if not isinstance(error, dict):
            raise A2AError("response", str(error))
        raise A2AError(error.get("code", "?"), str(error.get("message", error)))
    return doc.get("result")


def _http_reason(exc: urllib.error.HTTPError) -> str:
    try:
        doc = json.loads(exc.read() or b"null")
    except ValueError:
        return str(exc.reason)
    if isinstance(doc, dict) and doc.get("error"):
        error = doc["error"]
        return str(error.get("message", error) if isinstance(error, dict) else error)
    return str(exc.reason)


def _text(parts: Any) -> str:
    """The text of a list of parts (data parts as JSON)."""
    out = []
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            out.append(part["text"])
        elif isinstance(part, dict) and "data" in part:
            out.append(json.dumps(part["data"], ensure_ascii=False))
    return "\n".join(out)


@dataclass
class _Task:
    """What the client knows of the task so far, printing what is new."""

    out: IO[str]
    err: IO[str]
    task_id: str | None = None
    state: str | None = None
    message: str = ""
    printed: set[str] = field(default_factory=set)
    """Texts already on ``out`` (not repeated on the status line)."""
    seen: set[str] = field(default_factory=set)
    _last: tuple[str, str] | None = None

    def apply(self, result: Any) -> None:
        """Take in one result: a task, a status or artifact update, or a message."""
        if not isinstance(result, dict):
            return
        kind = result.get("kind")
        if kind == "message":
            self.state, self.message = "completed", _text(result.get("parts"))
            self._print(self.message)
            return
        if kind == "task" and self.task_id is None:
            self.task_id = result.get("id")
            print(f"task {self.task_id}", file=self.err, flush=True)
        for artifact in result.get("artifacts") or []:
            self._artifact(artifact, append=False)
        if kind == "artifact-update":
            self._artifact(result.get("artifact"), append=bool(result.get("append")))
        if isinstance(result.get("status"), dict):
            self._status(result["status"])

    def _status(self, status: dict[str, Any]) -> None:
        self.state = str(status.get("state"))
        message = status.get("message")
        self.message = _text(message.get("parts")) if isinstance(message, dict) else ""
        line = (self.state, self.message)
        if line != self._last:
            self._last = line
            shown_later = self.state in SETTLED or self.message in self.printed
            suffix = "" if shown_later or not self.message else f": {self.message}"
            print(f"  {self.state}{suffix}", file=self.err, flush=True)

    def _artifact(self, artifact: Any, append: bool) -> None:
        if not isinstance(artifact, dict):
            return
        key = str(artifact.get("artifactId") or artifact.get("name"))
        if key in self.seen and not append:
            return
        self.seen.add(key)
        self._print(_text(artifact.get("parts")))

    def _print(self, text: str) -> None:
        if text:
            print(text, file=self.out, flush=True)
            self.printed.add(text)


def send(
    url: str,
    text: str,
    *,
    task_id: str | None = None,
    context_id: str | None = None,
    stream: bool = True,
    token: str | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    timeout: float = 60.0,
    poll_seconds: float = 1.0,
    max_wait: float = 900.0,
) -> int:
    """Send ``text`` to the agent at ``url`` and follow the task; the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    if not url.startswith(("http://", "https://")) or not text:
        print("usage: pflambda send URL TEXT (URL is http(s)://..., TEXT not empty)", file=err)
        return 2
    client = Client(url, token, timeout)
    task = _Task(out, err)
    message: dict[str, Any] = {"kind": "message", "messageId": str(uuid.uuid4()), "role": "user"}
    message["parts"] = [{"kind": "text", "text": text}]
    message.update({k: v for k, v in (("taskId", task_id), ("contextId", context_id)) if v})
    try:
        streaming = stream and bool((client.card().get("capabilities") or {}).get("streaming"))
        if stream and not streaming:
            print("(the agent does not stream: sending message/send)", file=err)
        _exchange(client, task, message, streaming)
        _follow(client, task, poll_seconds, max_wait)
    except A2AError as exc:
        print(str(exc), file=err)
        return 1
    return _finish(task, url, out, err)


def _exchange(client: Client, task: _Task, message: dict[str, Any], streaming: bool) -> None:
    config: dict[str, Any] = {"acceptedOutputModes": ["text/plain"]}
    if not streaming:
        config["blocking"] = True
        task.apply(client.call("message/send", {"message": message, "configuration": config}))
        return
    params = {"message": message, "configuration": config}
    with contextlib.closing(client.stream("message/stream", params)) as results:
        for result in results:
            task.apply(result)
            if isinstance(result, dict) and result.get("final"):
                break


def _follow(client: Client, task: _Task, poll_seconds: float, max_wait: float) -> None:
    """Poll ``tasks/get`` until the task settles (the answer came before it did)."""
    deadline = time.monotonic() + max_wait
    while task.task_id and task.state not in SETTLED and time.monotonic() < deadline:
        time.sleep(poll_seconds)
        task.apply(client.call("tasks/get", {"id": task.task_id}))


def _finish(task: _Task, url: str, out: IO[str], err: IO[str]) -> int:
    if task.state == "input-required":
        print(task.message or "(the agent is waiting for your answer)", file=out)
        reply = f'pflambda send {shlex.quote(url)} "your answer" --task-id {task.task_id}'
        print(f"reply with: {reply}", file=err)
    elif task.state == "completed":
        if not task.printed and task.message:
            print(task.message, file=out)
    else:
        reason = f": {task.message}" if task.message else ""
        print(f"task {task.task_id} {task.state}{reason}", file=err)
    return EXIT.get(task.state or "", 1)
