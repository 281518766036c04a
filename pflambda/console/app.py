"""The console's HTTP side: its pages, its static files and its JSON API, as one App.

The same :class:`Console` answers behind API Gateway (``handler``, a Lambda handler
made with :func:`pflambda.aws.http.lambda_handler`) and in ``pflambda local``
(mounted at ``/console/`` on the agents' port). Routes, under ``/console``:

=======================================  ===========================================
``GET  /``                               the runs page
``GET  /runs/<id>``                      a run's page
``GET  /static/<file>``                  the pages' script and style (no data)
``GET  /api/me``                         who you are, and whether you are an operator
``GET  /api/runs``                       runs, newest first (``agent``, ``status``,
                                         ``stalled``, ``since``, ``until``, ``limit``,
                                         ``token``)
``GET  /api/runs/<id>``                  one run: graph, cursor, timeline
``GET  /api/runs/<id>/steps/<n>``        shared after step n, and its diff
``GET  /api/runs/<id>/steps/<n>/value``  one offloaded value (``?key=``)
``POST /api/runs/<id>/reply|resume|``    the actions (JSON bodies)
``cancel|fork``
=======================================  ===========================================

Who may see what: the caller is authenticated as the agents' API does it (API
Gateway's authorizer, else a bearer token when one is configured) and sees only the
runs it owns, unless it is one of the ``operators`` (``"*"``: everyone is). A run
someone else owns answers 404, as one that does not exist. Pages and static files
carry no data and need no credentials (a browser cannot add them to a navigation);
every API call does. Actions take JSON only, so a cross-site form cannot post one.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from importlib import resources
from typing import Any

from pflambda.a2a.auth import BearerAuth, Unauthorized, principal_of
from pflambda.clock import Clock, SystemClock
from pflambda.console.actions import Actions
from pflambda.console.snapshot import diff, load_state, load_value
from pflambda.console.views import RunFilter, list_page, run_detail
from pflambda.engine import codec
from pflambda.engine.runner import Engine
from pflambda.errors import (
    ConfigError,
    FingerprintMismatch,
    InvalidRunState,
    PflambdaError,
    RunNotFound,
    SerializationError,
)
from pflambda.http import HttpRequest, HttpResponse
from pflambda.stores.base import RunRecord, RunStatus

__all__ = ["EVERYONE", "PREFIX", "Console"]

log = logging.getLogger("pflambda.console")

PREFIX = "/console"
EVERYONE = "*"
"""In ``operators``: every authenticated caller sees every run (local development)."""
MAX_LIMIT = 200
_RUN = re.compile(r"^/api/runs/([^/]+)$")
_STEP = re.compile(r"^/api/runs/([^/]+)/steps/(\d+)(/value)?$")
_ACTION = re.compile(r"^/api/runs/([^/]+)/(reply|resume|cancel|fork)$")
_STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_ERRORS: list[tuple[type[BaseException], int]] = [
    (RunNotFound, 404),
    (FingerprintMismatch, 409),
    (InvalidRunState, 409),
    (SerializationError, 400),
    (codec.DecodeError, 400),
    (ConfigError, 400),
]
"""Engine errors -> HTTP status (first match); any other PflambdaError is a 409."""


class ApiError(Exception):
    """An answer other than 200, with the message the page shows."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Console:
    """The run console over one engine (its store, blobs and queue)."""

    def __init__(
        self,
        engine: Engine,
        *,
        auth: BearerAuth | None = None,
        operators: Collection[str] = (),
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.auth = auth
        self.operators = frozenset(operators)
        self.clock = clock or engine.clock or SystemClock()
        self.actions = Actions(engine)

    # -- the App --------------------------------------------------------------------

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Answer one request whose path starts with ``/console``."""
        path = request.path[len(PREFIX) :] if request.path.startswith(PREFIX) else None
        if path is None:
            return _json(404, {"error": f"nothing at {request.path}: the console is at /console/"})
        if path == "":
            return _redirect(request, f"{PREFIX}/")
        if not path.startswith("/api/"):
            return self._page(path, request.method)
        try:
            principal = principal_of(request, self.auth)
            return _json(200, self._api(request, path, principal))
        except Unauthorized as exc:
            return _json(401, {"error": f"unauthorized: {exc}"}, {"WWW-Authenticate": "Bearer"})
        except ApiError as exc:
            return _json(exc.status, {"error": str(exc)})
        except PflambdaError as exc:
            status = next((code for kind, code in _ERRORS if isinstance(exc, kind)), 409)
            return _json(status, {"error": str(exc)})

    def http(self, event: dict[str, Any], context: Any) -> HttpResponse:
        """An API Gateway proxy event in (what the local server hands its apps)."""
        from pflambda.aws.http import parse_event

        return self(parse_event(event, context))

    # -- pages ----------------------------------------------------------------------

    def _page(self, path: str, method: str) -> HttpResponse:
        if method not in ("GET", "HEAD"):
            return _json(405, {"error": f"{method} is not allowed here"})
        if path == "/":
            return _static("runs.html")
        if re.fullmatch(r"/runs/[^/]+", path):
            return _static("run.html")
        if path.startswith("/static/"):
            return _static(path[len("/static/") :])
        return _json(404, {"error": f"nothing at {PREFIX}{path}"})

    # -- the API --------------------------------------------------------------------

    def _api(self, request: HttpRequest, path: str, principal: str) -> dict[str, Any]:
        operator = EVERYONE in self.operators or principal in self.operators
        if path == "/api/me":
            return {"principal": principal, "operator": operator}
        if request.method == "POST":
            match = _ACTION.match(path)
            if match is None:
                raise ApiError(404, f"no action at {PREFIX}{path}")
            record = self._visible(match.group(1), principal, operator)
            return self._act(match.group(2), record, _body(request))
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, f"{request.method} is not allowed here")
        if path == "/api/runs":
            return self._list(request.query, None if operator else principal)
        if match := _RUN.match(path):
            record = self._visible(match.group(1), principal, operator)
            return run_detail(self.engine.store, self.engine.blobs, record, self.clock.now())
        if match := _STEP.match(path):
            record = self._visible(match.group(1), principal, operator)
            seq = int(match.group(2))
            if match.group(3):
                return self._value(record, seq, request.query.get("key"))
            return self._step(record, seq)
        raise ApiError(404, f"nothing at {PREFIX}{path}")

    def _visible(self, run_id: str, principal: str, operator: bool) -> RunRecord:
        """The run, if the caller may see it; 404 otherwise (not 403: no existence oracle)."""
        try:
            record = self.engine.store.get_run(run_id)
        except RunNotFound:
            record = None
        if record is None or not (operator or record.owner == principal):
            raise ApiError(404, f"no run {run_id}")
        return record

    def _list(self, query: Mapping[str, str], owner: str | None) -> dict[str, Any]:
        want = RunFilter(
            owner=owner,
            agent=query.get("agent") or None,
            status=_status(query.get("status")),
            stalled=_flag(query.get("stalled")),
            since=_number(query, "since"),
            until=_number(query, "until"),
        )
        raw_limit = _number(query, "limit")
        limit = 50 if raw_limit is None else int(raw_limit)
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}")
        now = self.clock.now()
        page = list_page(
            self.engine.store, want, now=now, limit=limit, token=query.get("token") or None
        )
        return {**page, "now": now}

    def _step(self, record: RunRecord, seq: int) -> dict[str, Any]:
        state = load_state(self.engine.store, self.engine.blobs, record.run_id, seq)
        before = (
            None
            if seq == 0
            else load_state(self.engine.store, self.engine.blobs, record.run_id, seq - 1)
        )
        return {**state.to_json(), "diff": diff(before, state)}

    def _value(self, record: RunRecord, seq: int, key: str | None) -> dict[str, Any]:
        if key is None:
            raise ApiError(400, "say which value: ?key=<shared key>")
        state = load_state(self.engine.store, self.engine.blobs, record.run_id, seq)
        try:
            return {"key": key, "value": load_value(state, key)}
        except KeyError:
            raise ApiError(404, f"shared has no key {key!r} at step {seq}") from None

    def _act(self, action: str, record: RunRecord, body: dict[str, Any]) -> dict[str, Any]:
        log.info("console: %s run %s", action, record.run_id)
        if action == "reply":
            text = body.get("text")
            if not isinstance(text, str):
                raise ApiError(400, 'a reply needs "text", a string')
            return self.actions.reply(record, text).to_json()
        if action == "resume":
            return self.actions.resume(record, self.clock.now()).to_json()
        if action == "cancel":
            return self.actions.cancel(record).to_json()
        at = body.get("at")
        if not isinstance(at, int) or isinstance(at, bool) or at < 0:
            raise ApiError(400, 'a fork needs "at", a step number')
        shared = body.get("shared")
        if shared is not None and not isinstance(shared, dict):
            raise ApiError(400, '"shared" must be a JSON object (key -> value)')
        return self.actions.fork(record, at, shared).to_json()


# -- small pieces -------------------------------------------------------------------


def _json(status: int, doc: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    body = json.dumps(doc, ensure_ascii=False, allow_nan=False).encode()
    base = {"Content-Type": "application/json", **_SECURITY_HEADERS}
    return HttpResponse(status, {**base, **(headers or {})}, body)


def _redirect(request: HttpRequest, path: str) -> HttpResponse:
    location = (request.base_url or "") + path
    return HttpResponse(301, {"Location": location, **_SECURITY_HEADERS}, b"")


def _static(name: str) -> HttpResponse:
    """A file shipped in ``pflambda/console/static`` (only names listed there)."""
    folder = resources.files("pflambda.console").joinpath("static")
    names = {entry.name for entry in folder.iterdir() if entry.is_file()}
    suffix = name[name.rfind(".") :] if "." in name else ""
    if name not in names or suffix not in _STATIC_TYPES:
        return _json(404, {"error": f"no console file {name!r}"})
    data = folder.joinpath(name).read_bytes()
    return HttpResponse(200, {"Content-Type": _STATIC_TYPES[suffix], **_SECURITY_HEADERS}, data)


def _body(request: HttpRequest) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, "send actions as application/json")
    try:
        doc = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "the body must be a JSON object")
    return doc


def _status(raw: str | None) -> RunStatus | None:
    if not raw:
        return None
    try:
        return RunStatus(raw)
    except ValueError:
        known = ", ".join(s.value for s in RunStatus)
        raise ApiError(400, f"status must be one of {known}, not {raw!r}") from None


def _flag(raw: str | None) -> bool | None:
    if raw in (None, ""):
        return None
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no"):
        return False
    raise ApiError(400, f"stalled must be true or false, not {raw!r}")


def _number(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a number, not {raw!r}") from None


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
