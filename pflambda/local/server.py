"""The local API: ``sam local start-api`` and the SQS trigger, without Docker.

What API Gateway and Lambda's SQS event source mapping do, in threads of one process.
:class:`LocalServer` turns each request under ``/agents/<name>/`` into an API Gateway
REST proxy event for that agent, calls its handler with a Lambda-like context whose
deadline is API Gateway's 29 s, and writes the answer back -- an SSE body chunk by
chunk as it is produced, which API Gateway itself cannot do. :class:`SqsPoller`
long-polls the work queue, calls the worker with SQS events, and deletes what the
partial batch response says succeeded; the rest comes back after its visibility
timeout, as on AWS.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import pkgutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from pflambda import limits
from pflambda.aws.http import LOCAL_STAGE
from pflambda.errors import ConfigError
from pflambda.http import HttpResponse
from pflambda.local.poller import ACCOUNT, LocalContext, SqsPoller, Worker, sqs_event
from pflambda.queues.base import Queue

__all__ = [
    "LocalContext",
    "LocalServer",
    "ServedAgent",
    "ServedApp",
    "SqsPoller",
    "api_event",
    "discover_agents",
    "serve",
    "sqs_event",
]

log = logging.getLogger("pflambda.local")

API_TIMEOUT_SECONDS = limits.API_TIMEOUT_MS / 1000
"""API Gateway's integration timeout: what an API call's context counts down from."""
MAX_BODY_BYTES = 10 * 1024 * 1024
"""API Gateway's payload limit."""
AGENTS = "/agents/"
CONSOLE = "/console"
"""Where the run console is served, when the server has one."""
_CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")


class ServedAgent(Protocol):
    """What the local server serves: an agent's name and its unbuffered HTTP handler."""

    name: str

    def http(self, event: dict[str, Any], context: Any) -> HttpResponse:
        """An API Gateway event in; a response whose iterator body is streamed live."""
        ...


class ServedApp(Protocol):
    """Anything else the server mounts (the run console): API Gateway events in."""

    def http(self, event: dict[str, Any], context: Any) -> HttpResponse:
        """An API Gateway event in, a response out."""
        ...


# -- HTTP -----------------------------------------------------------------------------


def api_event(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    domain: str,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The API Gateway REST proxy event for one request to ``/agents/<name>/...``.

    ``target`` is the request line's path and query; ``domain`` is ``host:port`` as the
    client addressed the server. The stage is ``local`` and ``requestContext.path`` the
    full path, so :func:`~pflambda.aws.http.parse_event` gives the path as it is and
    ``http://<domain>`` as the base URL.
    """
    split = urlsplit(target)
    path = unquote(split.path) or "/"
    name, _, proxy = path[len(AGENTS) :].partition("/")
    multi = _grouped([*headers, ("X-Forwarded-Proto", "http")])  # as sam local does
    query = _grouped(parse_qsl(split.query, keep_blank_values=True))
    try:
        text, encoded = (body.decode("utf-8"), False) if body else (None, False)
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    context = _request_context(method, path, domain)
    context["identity"] = {"sourceIp": source_ip, "userAgent": multi.get("User-Agent", [""])[-1]}
    return {
        "resource": context["resourcePath"],
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi.items()},
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"name": name, "proxy": proxy},
        "stageVariables": None,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": encoded,
    }


def _grouped(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def _request_context(method: str, path: str, domain: str) -> dict[str, Any]:
    request_id, now = str(uuid.uuid4()), time.time()
    return {
        "accountId": ACCOUNT,
        "apiId": "local",
        "domainName": domain,
        "domainPrefix": domain.split(".", maxsplit=1)[0],
        "extendedRequestId": request_id,
        "httpMethod": method,
        "path": path,
        "protocol": "HTTP/1.1",
        "requestId": request_id,
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "requestTimeEpoch": int(now * 1000),
        "resourceId": "local",
        "resourcePath": "/agents/{name}/{proxy+}",
        "stage": LOCAL_STAGE,
    }


def _json(status: int, doc: Any) -> HttpResponse:
    return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps(doc).encode())


def _cross_site(headers: Any) -> bool:
    """A browser request from another origin (CSRF): its ``Origin`` is not this server."""
    origin = headers.get("Origin")
    if origin is None:
        return str(headers.get("Sec-Fetch-Site", "same-origin")) not in ("same-origin", "none")
    return bool(origin != f"http://{headers.get('Host', '')}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a stream still open must not hold up stop()
    request_queue_size = 128  # the default backlog of 5 resets bursts of connections

    def __init__(self, address: tuple[str, int], local: LocalServer) -> None:
        super().__init__(address, _Handler)
        self.local = local

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("error serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate sends: no 40 ms stall
    timeout = 120.0
    """Seconds an idle keep-alive connection (or a stalled client) holds a thread."""
    server: _Server

    def _serve(self) -> None:
        if self.server.local.stopping.is_set():  # a kept-alive connection, after stop()
            self.close_connection = True
            self._send(_json(503, {"error": "the server is stopping"}))
            return
        try:
            response = self._respond()
        except Exception:
            log.exception("%s %s failed", self.command, self.path)
            response = _json(500, {"error": "the agent failed; see the server's log"})
        self._send(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: refuse an oversize body before the client sends it."""
        refusal = self._refusal()
        if refusal is not None:
            self._send(refusal)
            return False
        return super().handle_expect_100()

    def _respond(self) -> HttpResponse:
        local = self.server.local
        target = self.path
        path = unquote(urlsplit(target).path)
        if path in _CARD_PATHS and len(local.agents) == 1:  # the origin's own card
            target = path = local.root_card(self.headers.get("A2A-Version"))
        console = local.console if path == CONSOLE or path.startswith(CONSOLE + "/") else None
        if not path.startswith(AGENTS) and console is None:
            return local.static(path, self.command, self._domain())
        if self.command not in ("GET", "HEAD", "OPTIONS") and _cross_site(self.headers):
            why = "cross-site requests are refused (the Origin is not this server)"
            return _json(403, {"error": why})
        name = path[len(AGENTS) :].split("/", 1)[0] if console is None else "console"
        agent = local.agents.get(name) if console is None else console
        if agent is None:
            return _json(404, {"error": f"no agent named {name!r}", "agents": sorted(local.agents)})
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        event = api_event(
            self.command,
            target,
            list(self.headers.items()),
            self.rfile.read(self._length()),
            domain=self._domain(),
            source_ip=self.client_address[0],
        )
        return agent.http(event, LocalContext(local.api_timeout, f"pflambda-{name}"))

    def _domain(self) -> str:
        return self.headers.get("Host") or self.server.local.authority

    def _length(self) -> int:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return -1

    def _refusal(self) -> HttpResponse | None:
        """Why the body will not be read (chunked, a bad length, over the limit), if so."""
        limit, length = self.server.local.max_body_bytes, self._length()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            refusal = _json(411, {"error": "send the body with a Content-Length"})
        elif length < 0:
            refusal = _json(400, {"error": "bad Content-Length"})
        elif length > limit:
            refusal = _json(413, {"error": f"request body too large (limit {limit} bytes)"})
        else:
            return None
        self.close_connection = True  # the body stays unread
        return refusal

    def _send(self, response: HttpResponse) -> None:
        body = response.body
        self.send_response(response.status)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        if isinstance(body, bytes | bytearray):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._stream(body)

    def _stream(self, chunks: Iterator[bytes]) -> None:
        """Write each chunk as soon as it is made: SSE events reach the client live."""
        stopping = self.server.local.stopping
        try:
            for chunk in chunks:
                if stopping.is_set() or self.command == "HEAD":
                    self.close_connection = True
                    return
                if chunk:
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            log.info("client of %s went away mid-stream", self.path)
            self.close_connection = True
        except Exception:
            log.exception("stream of %s failed", self.path)
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class LocalServer:
    """An HTTP server in a thread that serves agents as API Gateway would.

    ``GET /`` lists the agents; ``/agents/<name>/...`` goes to that agent's ``http``
    handler; anything else is a JSON 404. With a ``poller``, it starts and stops too.
    """

    def __init__(
        self,
        agents: Mapping[str, ServedAgent],
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        api_timeout: float = API_TIMEOUT_SECONDS,
        max_body_bytes: int = MAX_BODY_BYTES,
        poller: SqsPoller | None = None,
        console: ServedApp | None = None,
    ) -> None:
        self.agents = dict(agents)
        self.console = console
        """The run console, served at ``/console/`` (see :mod:`pflambda.console`)."""
        self.api_timeout, self.max_body_bytes, self.poller = api_timeout, max_body_bytes, poller
        self.stopping = threading.Event()
        self._httpd = _Server((host, port), self)
        self.host, self.port = host, int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def authority(self) -> str:
        """``host:port`` to reach the server at (loopback when bound to every address)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{self.authority}"

    def agent_url(self, name: str, domain: str | None = None) -> str:
        """An agent's A2A URL (what its card says)."""
        return f"http://{domain or self.authority}{AGENTS}{name}/"

    def console_url(self, domain: str | None = None) -> str:
        """The run console's URL."""
        return f"http://{domain or self.authority}{CONSOLE}/"

    def card_url(self, name: str, domain: str | None = None) -> str:
        """Where an agent's card is."""
        return self.agent_url(name, domain) + ".well-known/agent-card.json"

    def root_card(self, version: str | None) -> str:
        """Where ``/.well-known/agent*.json`` at the origin goes when one agent is served:
        that agent's legacy card (0.3: where 0.2/0.3 discovery looked), or its 1.0 card
        for a request that says ``A2A-Version: 1.x``."""
        name = next(iter(self.agents))
        new = version is not None and version.strip().startswith("1")
        return f"{AGENTS}{name}/.well-known/" + ("agent-card.json" if new else "agent.json")

    def static(self, path: str, method: str, domain: str) -> HttpResponse:
        """The answers that are not an agent's: the index, and 404s that say where to go."""
        if path == "/" and method in ("GET", "HEAD"):
            agents = [
                {"name": n, "url": self.agent_url(n, domain), "card": self.card_url(n, domain)}
                for n in sorted(self.agents)
            ]
            doc: dict[str, Any] = {"agents": agents}
            if self.console is not None:
                doc["console"] = self.console_url(domain)
            return _json(200, doc)
        if path in _CARD_PATHS:
            hint = "each agent has its own card: GET /agents/<name>/.well-known/agent-card.json"
            cards = [self.card_url(n, domain) for n in sorted(self.agents)]
            return _json(404, {"error": hint, "cards": cards})
        return _json(404, {"error": f"nothing at {path}: agents are at /agents/<name>/"})

    def start(self) -> LocalServer:
        """Serve in a daemon thread (and start the poller); returns ``self``."""
        if self.poller is not None:
            self.poller.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.name = f"pflambda-local-{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the poller, end open streams at their next chunk, close the socket."""
        self.stopping.set()
        if self.poller is not None:
            self.poller.stop()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- wiring ---------------------------------------------------------------------------


def serve(
    agents: Mapping[str, ServedAgent],
    worker: Worker,
    queue: Queue,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    console: ServedApp | None = None,
) -> LocalServer:
    """Start a server for ``agents`` (and ``console``) and a poller feeding ``queue``
    to ``worker``."""
    poller = SqsPoller(queue, worker)
    return LocalServer(agents, host, port, poller=poller, console=console).start()


def discover_agents(package: str = "handlers", root: str | None = None) -> dict[str, ServedAgent]:
    """The agents defined at module level in every module of ``package``, by name.

    ``root`` (the project directory) goes first on ``sys.path``. A module that fails to
    import, or two different agents with one name, is a :class:`ConfigError`.
    """
    if root is not None and root not in sys.path:
        sys.path.insert(0, root)
    try:
        top = importlib.import_module(package)
    except ImportError as exc:
        raise ConfigError(f"cannot import the {package!r} package: {exc}") from exc
    found: dict[str, ServedAgent] = {}
    for info in pkgutil.iter_modules(getattr(top, "__path__", []), package + "."):
        try:
            module = importlib.import_module(info.name)
        except Exception as exc:
            raise ConfigError(f"cannot import {info.name}: {type(exc).__name__}: {exc}") from exc
        for value in vars(module).values():
            if not _looks_like_agent(value):
                continue
            other = found.setdefault(value.name, value)
            if other is not value:
                raise ConfigError(f"two agents are named {value.name!r} (one in {info.name})")
    return found


def _looks_like_agent(value: Any) -> bool:
    return (
        not isinstance(value, type)
        and isinstance(getattr(value, "name", None), str)
        and callable(getattr(value, "http", None))
        and callable(getattr(value, "worker_handler", None))
    )
