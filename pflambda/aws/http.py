"""API Gateway proxy events in, proxy responses out: the HTTP edge of an API function.

One parser per event shape, as Mangum does: the REST API (v1) proxy event, and the
HTTP API (payload format 2.0) event. Both become a :class:`~pflambda.http.HttpRequest`
whose ``path`` is the resource path without the stage and whose ``base_url`` is the
public prefix in front of it, so ``base_url + path`` is the URL the caller used
(the agent card puts it in its ``url``). A response body that is an iterator (an SSE
stream) is drained here: Lambda's proxy integration buffers the whole response.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from pflambda.http import App, HttpRequest, HttpResponse

__all__ = [
    "LOCAL_STAGE",
    "App",
    "BadEvent",
    "HttpRequest",
    "HttpResponse",
    "lambda_handler",
    "parse_event",
    "to_proxy_response",
]

log = logging.getLogger("pflambda.http")

LOCAL_STAGE = "local"
"""The stage name of events made by ``pflambda local``: not part of the URL, plain http."""

_TEXT_TYPES = ("application/json", "application/xml", "application/javascript")


class BadEvent(ValueError):
    """The Lambda was invoked with something that is not an API Gateway proxy event."""


# -- events in ------------------------------------------------------------------------


def parse_event(event: Mapping[str, Any], context: Any = None) -> HttpRequest:
    """The request an API Gateway REST (v1) or HTTP API (v2) proxy event carries.

    :class:`BadEvent` for anything else (a direct invocation, an SQS event...).
    """
    if not isinstance(event, Mapping):
        raise BadEvent(f"expected an API Gateway event object, got {type(event).__name__}")
    if _is_v2(event):
        return _parse_v2(event, context)
    if isinstance(event.get("httpMethod"), str) and isinstance(
        event.get("requestContext"), Mapping
    ):
        return _parse_v1(event, context)
    raise BadEvent(
        "not an API Gateway proxy event: expected a REST API event (httpMethod, "
        'requestContext) or an HTTP API event (version "2.0", requestContext.http)'
    )


def _is_v2(event: Any) -> bool:
    if not isinstance(event, Mapping) or event.get("version") != "2.0":
        return False
    rc = event.get("requestContext")
    return isinstance(rc, Mapping) and isinstance(rc.get("http"), Mapping)


def _parse_v1(event: Mapping[str, Any], context: Any) -> HttpRequest:
    rc = _map(event.get("requestContext"))
    path = _str(event.get("path")) or _str(rc.get("resourcePath")) or "/"
    headers = _joined(event.get("headers"), event.get("multiValueHeaders"), lower=True)
    query = _joined(
        event.get("queryStringParameters"), event.get("multiValueQueryStringParameters")
    )
    principal, claims = _v1_principal(rc)
    stage = _str(rc.get("stage"))
    full = _str(rc.get("path"))
    if full and full.endswith(path):
        prefix = full[: len(full) - len(path)]
    else:
        prefix = f"/{stage}" if stage and stage not in ("$default", LOCAL_STAGE) else ""
    return HttpRequest(
        method=_str(event.get("httpMethod")).upper(),
        path=path,
        headers=headers,
        query=query,
        body=_body(event),
        principal=principal,
        claims=claims,
        base_url=_base_url(_str(rc.get("domainName")), prefix, headers, stage),
        source_ip=_str(_map(rc.get("identity")).get("sourceIp")) or None,
        context=context,
    )


def _parse_v2(event: Mapping[str, Any], context: Any) -> HttpRequest:
    rc = _map(event.get("requestContext"))
    http = _map(rc.get("http"))
    raw_path = _str(event.get("rawPath")) or _str(http.get("path")) or "/"
    stage = _str(rc.get("stage"))
    prefix = ""
    if stage and stage != "$default" and (raw_path + "/").startswith(f"/{stage}/"):
        prefix = f"/{stage}"
    headers = _joined(event.get("headers"), None, lower=True)
    cookies = event.get("cookies")
    if isinstance(cookies, list) and cookies:
        headers["cookie"] = "; ".join(str(c) for c in cookies)
    principal, claims = _v2_principal(_map(rc.get("authorizer")))
    return HttpRequest(
        method=_str(http.get("method")).upper(),
        path=unquote(raw_path[len(prefix) :]) or "/",
        headers=headers,
        query=_joined(event.get("queryStringParameters"), None),
        body=_body(event),
        principal=principal,
        claims=claims,
        base_url=_base_url(_str(rc.get("domainName")), prefix, headers, stage),
        source_ip=_str(http.get("sourceIp")) or None,
        context=context,
    )


def _v1_principal(rc: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Cognito claims, else a Lambda authorizer's principalId, else the IAM caller, else
    the API key (``apikey:<key id>``: each key its own principal, the secret never used)."""
    auth = _map(rc.get("authorizer"))
    claims = auth.get("claims")
    if isinstance(claims, Mapping) and claims:
        return _id(claims.get("sub") or claims.get("cognito:username")), dict(claims)
    if auth.get("principalId"):
        return _id(auth["principalId"]), dict(auth)
    identity = _map(rc.get("identity"))
    caller = _id(identity.get("userArn") or identity.get("caller"))
    if caller is None and identity.get("apiKeyId"):
        return f"apikey:{identity['apiKeyId']}", {}
    return caller, {}


def _v2_principal(auth: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """A JWT authorizer's ``sub``, a Lambda authorizer's context, or the IAM caller."""
    jwt, lam, iam = _map(auth.get("jwt")), _map(auth.get("lambda")), _map(auth.get("iam"))
    if jwt:
        claims = dict(_map(jwt.get("claims")))
        return _id(claims.get("sub")), claims
    if lam:
        return _id(lam.get("principalId") or lam.get("sub")), dict(lam)
    if iam:
        return _id(iam.get("userArn") or iam.get("callerId") or iam.get("userId")), dict(iam)
    return None, {}


def _base_url(domain: str, prefix: str, headers: Mapping[str, str], stage: str) -> str | None:
    """``scheme://host[:port]`` + the stage (or base path) the caller's URL has."""
    host = domain or headers.get("x-forwarded-host", "") or headers.get("host", "")
    host = host.split(",")[0].strip()
    if not host:
        return None
    default = "http" if stage == LOCAL_STAGE else "https"
    scheme = headers.get("x-forwarded-proto", default).split(",")[0].strip() or default
    port = headers.get("x-forwarded-port", "").split(",")[0].strip()
    if port and ":" not in host and port != {"http": "80", "https": "443"}.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{prefix.rstrip('/')}"


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadEvent(f"event body must be a string, got {type(body).__name__}")
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise BadEvent(f"isBase64Encoded is true but the body is not base64: {exc}") from None


def _joined(single: Any, multi: Any, *, lower: bool = False) -> dict[str, str]:
    """One value per name; multi-value entries (when given) joined with commas."""
    out: dict[str, str] = {}
    for name, value in _map(single).items():
        if value is not None:
            out[name.lower() if lower else name] = str(value)
    for name, values in _map(multi).items():
        if isinstance(values, list) and values:
            out[name.lower() if lower else name] = ",".join(str(v) for v in values)
    return out


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


# -- responses out --------------------------------------------------------------------


def to_proxy_response(response: HttpResponse, event: Mapping[str, Any]) -> dict[str, Any]:
    """The proxy integration's answer for ``response``, in the shape ``event`` asks for.

    A streamed body is read to the end (API Gateway buffers it anyway). Text bodies
    (``text/*``, JSON, XML) go out as strings, anything else base64-encoded; an HTTP
    API answer carries ``Set-Cookie`` in ``cookies``.
    """
    raw = _drain(response.body)
    headers = dict(response.headers)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    body, encoded = _encode(raw, content_type)
    out: dict[str, Any] = {
        "statusCode": response.status,
        "headers": headers,
        "body": body,
        "isBase64Encoded": encoded,
    }
    if _is_v2(event):
        cookie = next((k for k in headers if k.lower() == "set-cookie"), None)
        if cookie is not None:
            out["cookies"] = [headers.pop(cookie)]
    return out


def _drain(body: bytes | Iterable[bytes]) -> bytes:
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    try:
        return b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _encode(raw: bytes, content_type: str) -> tuple[str, bool]:
    kind = content_type.partition(";")[0].strip().lower()
    textual = kind.startswith("text/") or kind in _TEXT_TYPES or kind.endswith(("+json", "+xml"))
    if not raw:
        return "", False
    if textual:
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(raw).decode("ascii"), True


# -- the handler ----------------------------------------------------------------------


def lambda_handler(app: App) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda handler that serves ``app`` behind API Gateway.

    A malformed event is a 400 and a crash in ``app`` a 500, both JSON-RPC error
    objects (logged to ``pflambda.http``, never a stack trace in the answer).
    """

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            request = parse_event(event, context)
        except BadEvent as exc:
            log.warning("not an API Gateway event: %s", exc)
            return _error(400, -32600, f"bad request: {exc}", event)
        try:
            return to_proxy_response(app(request), event)
        except Exception:
            log.exception("unhandled error answering %s %s", request.method, request.path)
            return _error(500, -32603, "internal error", event)

    return handler


def _error(status: int, code: int, message: str, event: Any) -> dict[str, Any]:
    doc = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    body = json.dumps(doc).encode()
    response = HttpResponse(status, {"Content-Type": "application/json"}, body)
    return to_proxy_response(response, event if isinstance(event, Mapping) else {})
