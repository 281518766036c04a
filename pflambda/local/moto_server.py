"""moto's server, one request at a time: the emulator loses nothing under concurrency.

moto's backends are not thread-safe. A refused ``TransactWriteItems`` restores the table
from a copy taken before it started, so a write acknowledged by another thread meanwhile
is silently undone; lists and dicts are read while other threads change them. The local
server and its SQS poller call the emulator from many threads, so :class:`SerialMotoServer`
puts one lock around moto's WSGI application: requests run one after another, whole.

One request must not hold the lock for long: an SQS long poll (``WaitTimeSeconds``) would
stop every other request -- including the ``SendMessage`` it waits for. Long polls are
therefore run as short polls under the lock, repeated with short sleeps *outside* it until a
message arrives or the wait is over: what a client sees is SQS's long-poll behaviour.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["SerialMotoServer", "SerialisedApp"]

POLL_INTERVAL = 0.05
"""Seconds between the short polls that make up one long poll."""

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
App = Callable[[Environ, StartResponse], Iterable[bytes]]


class SerialisedApp:
    """WSGI middleware: one request at a time into ``app``; SQS long polls wait outside."""

    def __init__(self, app: App, poll_interval: float = POLL_INTERVAL) -> None:
        self.app, self.poll_interval = app, poll_interval
        self.lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request: run it whole under the lock, then reply outside it."""
        poll = _long_poll(environ)
        if poll is None:
            status, headers, body = self._call(environ)
        else:
            status, headers, body = self._long_poll(environ, *poll)
        start_response(status, headers)
        return [body]

    def _call(self, environ: Environ) -> tuple[str, list[tuple[str, str]], bytes]:
        reply: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            reply["status"], reply["headers"] = status, headers
            return lambda data: None  # moto never uses the legacy write() callable

        with self.lock:
            result = self.app(environ, capture)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return reply["status"], reply["headers"], body

    def _long_poll(
        self, environ: Environ, short: bytes, wait: float, got: Callable[[bytes], bool]
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Short polls until one returns messages or ``wait`` seconds have passed."""
        until = time.monotonic() + wait
        while True:
            attempt = dict(environ)
            attempt["wsgi.input"], attempt["CONTENT_LENGTH"] = io.BytesIO(short), str(len(short))
            status, headers, body = self._call(attempt)
            if not status.startswith("200") or got(body) or time.monotonic() >= until:
                return status, headers, body
            time.sleep(min(self.poll_interval, max(0.0, until - time.monotonic())))


def _long_poll(environ: Environ) -> tuple[bytes, float, Callable[[bytes], bool]] | None:
    """For an SQS ReceiveMessage that waits: the same request without the wait, how long
    to wait, and how to tell that a reply holds messages. ``None`` for anything else.

    Reads the request body (and puts it back, so the request can still be answered).
    """
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    form = "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", "")
    if target != "AmazonSQS.ReceiveMessage" and not form:
        return None
    body = _read_body(environ)
    if target == "AmazonSQS.ReceiveMessage":  # the JSON protocol (boto3 today)
        try:
            doc = json.loads(body or b"{}")
            wait = float(doc.get("WaitTimeSeconds") or 0)
        except (ValueError, TypeError, AttributeError):
            return None
        if wait <= 0:
            return None
        short = json.dumps({**doc, "WaitTimeSeconds": 0}).encode()
        return short, wait, lambda reply: bool(json.loads(reply or b"{}").get("Messages"))
    fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)  # query protocol
    params = dict(fields)
    if params.get("Action") != "ReceiveMessage":
        return None
    try:
        wait = float(params.get("WaitTimeSeconds") or 0)
    except ValueError:
        return None
    if wait <= 0:
        return None
    short = urlencode([(k, "0" if k == "WaitTimeSeconds" else v) for k, v in fields]).encode()
    return short, wait, lambda reply: b"<Message>" in reply


def _read_body(environ: Environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    return body


class SerialMotoServer:
    """moto's threaded server with :class:`SerialisedApp` in front of its backends."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 5000) -> None:
        self.ip_address, self.port = ip_address, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen on ``ip_address:port`` and serve in a daemon thread."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from pflambda.local import moto_tx

        moto_tx.install()
        app = SerialisedApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self.ip_address, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pflambda-emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and wait for the serving thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
