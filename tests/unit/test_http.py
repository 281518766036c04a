"""API Gateway events in, proxy responses out (pflambda.aws.http), on real event JSON."""

from __future__ import annotations

import base64
import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pflambda.aws.http import (
    BadEvent,
    HttpRequest,
    HttpResponse,
    lambda_handler,
    parse_event,
    to_proxy_response,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"
CTX = object()


def load(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


RPC_BODY = load("apigw_rest_post")["body"].encode()


# -- REST API (v1) ----------------------------------------------------------------------


def test_rest_post_every_field() -> None:
    request = parse_event(load("apigw_rest_post"), CTX)
    assert request.method == "POST"
    assert request.path == "/agents/research/"
    assert request.query == {"A2A-Version": "0.3"}
    assert request.body == RPC_BODY
    assert json.loads(request.body)["method"] == "message/send"
    assert request.base_url == "https://1234567890.execute-api.us-east-1.amazonaws.com/prod"
    assert request.source_ip == "203.0.113.9"
    assert request.context is CTX


def test_rest_headers_are_lower_cased_and_multi_values_joined() -> None:
    headers = parse_event(load("apigw_rest_post")).headers
    assert all(name == name.lower() for name in headers)
    assert headers["content-type"] == "application/json"
    assert headers["x-forwarded-for"] == "203.0.113.9,130.176.26.71"
    assert headers["authorization"].startswith("eyJ")


def test_rest_cognito_claims_give_the_principal() -> None:
    request = parse_event(load("apigw_rest_post"))
    assert request.principal == "7d8ca528-4931-4254-9273-ea5ee853f271"
    assert request.claims["email"] == "ada@example.com"
    assert request.claims["cognito:groups"] == "researchers"


def test_rest_lambda_authorizer_gives_principal_id_and_context() -> None:
    event = load("apigw_rest_post")
    event["requestContext"]["authorizer"] = {
        "principalId": "user|42",
        "tenant": "acme",
        "integrationLatency": 12,
    }
    request = parse_event(event)
    assert request.principal == "user|42"
    assert request.claims["tenant"] == "acme"


@pytest.mark.parametrize(
    ("identity", "principal"),
    [
        (
            {"userArn": "arn:aws:iam::123456789012:user/ada", "caller": "AIDAEXAMPLE"},
            "arn:aws:iam::123456789012:user/ada",
        ),
        ({"userArn": None, "caller": "AIDAEXAMPLE:session"}, "AIDAEXAMPLE:session"),
        ({"userArn": None, "caller": None}, None),
    ],
)
def test_rest_iam_identity_gives_the_principal(
    identity: dict[str, Any], principal: str | None
) -> None:
    event = load("apigw_rest_post")
    event["requestContext"]["authorizer"] = {"claims": None, "scopes": None}
    event["requestContext"]["identity"].update(identity)
    request = parse_event(event)
    assert request.principal == principal
    assert request.claims == {}


def test_rest_get_card_without_authorizer() -> None:
    request = parse_event(load("apigw_rest_get_card"))
    assert (request.method, request.path) == ("GET", "/.well-known/agent-card.json")
    assert request.body == b""
    assert request.query == {}
    assert request.principal is None
    assert request.base_url == "https://1234567890.execute-api.us-east-1.amazonaws.com/prod"


def test_rest_base64_body() -> None:
    event = load("apigw_rest_post")
    event["body"] = base64.b64encode(b"\x00\xffbinary").decode()
    event["isBase64Encoded"] = True
    assert parse_event(event).body == b"\x00\xffbinary"


def test_rest_base_url_keeps_a_custom_domain_base_path() -> None:
    event = load("apigw_rest_post")
    event["requestContext"]["domainName"] = "api.example.com"
    event["requestContext"]["path"] = "/v1/agents/research/"
    request = parse_event(event)
    assert request.base_url == "https://api.example.com/v1"
    assert request.base_url + request.path == "https://api.example.com/v1/agents/research/"


def test_rest_base_url_from_the_stage_when_no_full_path() -> None:
    event = load("apigw_rest_post")
    del event["requestContext"]["path"]
    assert parse_event(event).base_url.endswith(".amazonaws.com/prod")  # type: ignore[union-attr]


def test_rest_base_url_falls_back_to_host_headers() -> None:
    event = load("apigw_rest_post")
    del event["requestContext"]["domainName"]
    event["headers"]["Host"] = "internal.example"
    del event["multiValueHeaders"]["Host"]
    assert parse_event(event).base_url == "https://internal.example/prod"
    event["headers"]["X-Forwarded-Host"] = "edge.example"
    event["multiValueHeaders"]["X-Forwarded-Proto"] = ["http"]
    event["multiValueHeaders"]["X-Forwarded-Port"] = ["8443"]
    assert parse_event(event).base_url == "http://edge.example:8443/prod"


def test_local_stage_is_plain_http_without_a_stage() -> None:
    event = load("apigw_rest_get_card")
    event["requestContext"].update(stage="local", domainName="127.0.0.1:8080")
    del event["requestContext"]["path"]
    for key in ("headers", "multiValueHeaders"):
        event[key] = {k: v for k, v in event[key].items() if not k.startswith("X-Forwarded")}
    assert parse_event(event).base_url == "http://127.0.0.1:8080"


# -- HTTP API (v2) ----------------------------------------------------------------------


def test_http_post_every_field() -> None:
    request = parse_event(load("apigw_http_post"), CTX)
    assert request.method == "POST"
    assert request.path == "/agents/research/"  # the stage is not part of the path
    assert request.body == RPC_BODY  # base64-decoded
    assert request.query == {"A2A-Version": "0.3"}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["cookie"] == "session=abc123; theme=dark"
    assert request.base_url == "https://r3pmxmplak.execute-api.us-east-2.amazonaws.com/prod"
    assert request.source_ip == "198.51.100.7"
    assert request.context is CTX


def test_http_jwt_authorizer_gives_sub_and_claims() -> None:
    request = parse_event(load("apigw_http_post"))
    assert request.principal == "4b1c6a70-3f2e-4c4e-9a51-8f0d2a9b7c11"
    assert request.claims["scope"] == "agents/invoke"


@pytest.mark.parametrize(
    ("authorizer", "principal", "claim"),
    [
        ({"lambda": {"principalId": "p-1", "tier": "gold"}}, "p-1", "tier"),
        ({"lambda": {"sub": "s-1"}}, "s-1", "sub"),
        ({"iam": {"userArn": "arn:aws:iam::1:user/bo", "accountId": "1"}}, None, "accountId"),
    ],
)
def test_http_lambda_and_iam_authorizers(
    authorizer: dict[str, Any], principal: str | None, claim: str
) -> None:
    event = load("apigw_http_post")
    event["requestContext"]["authorizer"] = authorizer
    request = parse_event(event)
    assert request.principal == (principal or "arn:aws:iam::1:user/bo")
    assert claim in request.claims


def test_http_get_card_on_the_default_stage() -> None:
    request = parse_event(load("apigw_http_get_card"))
    assert (request.method, request.path) == ("GET", "/agents/research/.well-known/agent-card.json")
    assert request.base_url == "https://r3pmxmplak.execute-api.us-east-2.amazonaws.com"
    assert (request.body, request.principal, request.claims) == (b"", None, {})


# -- bad events -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        load("sqs_continue"),
        {"version": "2.0", "rawPath": "/"},
        {"httpMethod": "GET"},
        {},
    ],
)
def test_not_an_api_gateway_event(event: dict[str, Any]) -> None:
    with pytest.raises(BadEvent, match="not an API Gateway proxy event"):
        parse_event(event)


def test_bad_base64_and_bad_types() -> None:
    event = load("apigw_http_post")
    event["body"] = "not base64!"
    with pytest.raises(BadEvent, match="base64"):
        parse_event(event)
    event = load("apigw_rest_post")
    event["body"] = {"an": "object"}
    with pytest.raises(BadEvent, match="string"):
        parse_event(event)
    with pytest.raises(BadEvent, match="list"):
        parse_event([])  # type: ignore[arg-type]


# -- responses --------------------------------------------------------------------------


def test_v1_json_response() -> None:
    response = HttpResponse(200, {"Content-Type": "application/json"}, b'{"ok": true}')
    out = to_proxy_response(response, load("apigw_rest_post"))
    assert out == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": '{"ok": true}',
        "isBase64Encoded": False,
    }


def test_v2_response_moves_set_cookie_to_cookies() -> None:
    response = HttpResponse(200, {"Content-Type": "text/plain", "Set-Cookie": "a=1"}, b"hi")
    out = to_proxy_response(response, load("apigw_http_post"))
    assert out["cookies"] == ["a=1"]
    assert "Set-Cookie" not in out["headers"]
    assert (out["body"], out["isBase64Encoded"]) == ("hi", False)


def test_stream_is_drained_and_closed() -> None:
    closed = []

    def events() -> Iterator[bytes]:
        try:
            yield b"data: 1\n\n"
            yield b": ping\n\n"
            yield b"data: 2\n\n"
        finally:
            closed.append(True)

    response = HttpResponse(200, {"Content-Type": "text/event-stream"}, events())
    out = to_proxy_response(response, load("apigw_rest_post"))
    assert out["body"] == "data: 1\n\n: ping\n\ndata: 2\n\n"
    assert out["isBase64Encoded"] is False
    assert closed == [True]


@pytest.mark.parametrize(
    ("content_type", "raw", "encoded"),
    [
        ("image/png", b"\x89PNG\r\n", True),
        ("application/octet-stream", b"abc", True),
        ("text/plain; charset=latin-1", b"caf\xe9", True),  # not UTF-8 after all
        ("application/problem+json", b"{}", False),
        ("", b"", False),
    ],
)
def test_binary_bodies_are_base64(content_type: str, raw: bytes, encoded: bool) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    out = to_proxy_response(HttpResponse(200, headers, raw), load("apigw_http_post"))
    assert out["isBase64Encoded"] is encoded
    assert (base64.b64decode(out["body"]) if encoded else out["body"].encode()) == raw


# -- the handler ------------------------------------------------------------------------


def test_handler_parses_calls_and_answers() -> None:
    seen: list[HttpRequest] = []

    def app(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(201, {"Content-Type": "application/json"}, b"{}")

    out = lambda_handler(app)(load("apigw_http_post"), CTX)
    assert out["statusCode"] == 201
    assert seen[0].path == "/agents/research/"
    assert seen[0].context is CTX


def test_handler_bad_event_is_a_400() -> None:
    out = lambda_handler(lambda r: HttpResponse(200, {}))(load("sqs_continue"), CTX)
    assert out["statusCode"] == 400
    error = json.loads(out["body"])["error"]
    assert error["code"] == -32600
    assert "API Gateway" in error["message"]


def test_handler_crash_is_a_500_without_a_stack_trace(caplog: pytest.LogCaptureFixture) -> None:
    def app(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("secret detail")

    with caplog.at_level(logging.ERROR, logger="pflambda.http"):
        out = lambda_handler(app)(load("apigw_rest_post"), CTX)
    assert out["statusCode"] == 500
    assert out["headers"] == {"Content-Type": "application/json"}
    assert json.loads(out["body"])["error"] == {"code": -32603, "message": "internal error"}
    assert "secret" not in out["body"]
    assert "Traceback" not in out["body"]
    assert "secret detail" in caplog.text  # logged, with the traceback
