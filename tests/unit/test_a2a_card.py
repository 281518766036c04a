"""The agent card: one per protocol generation, each with its own schema's fields only."""

from __future__ import annotations

import json
from typing import Any

from pflambda.a2a.agent import Agent
from pflambda.a2a.auth import BearerAuth
from pflambda.a2a.card import CardInfo, Extension, Provider, SecurityScheme, Skill, media_accepted
from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, request, rpc

URL = "https://api.example.com/prod/agents/test-agent/"
CARD = "/agents/test-agent/.well-known/agent-card.json"
LEGACY = "/agents/test-agent/.well-known/agent.json"

# Field names of the A2A 1.0 JSON schema (additionalProperties: false everywhere).
V1_CARD = {
    "name", "description", "supportedInterfaces", "provider", "version", "documentationUrl",
    "capabilities", "securitySchemes", "securityRequirements", "defaultInputModes",
    "defaultOutputModes", "skills", "signatures", "iconUrl",
}  # fmt: skip
V1_CAPABILITIES = {"streaming", "pushNotifications", "extensions", "extendedAgentCard"}
V1_SKILL = {
    "id", "name", "description", "tags", "examples", "inputModes", "outputModes",
    "securityRequirements",
}  # fmt: skip
V03_REQUIRED = {
    "capabilities", "defaultInputModes", "defaultOutputModes", "description", "name",
    "protocolVersion", "skills", "url", "version",
}  # fmt: skip
V03_ONLY = {"url", "protocolVersion", "preferredTransport", "additionalInterfaces", "security"}


def get_card(agent: Agent, path: str = CARD, headers: dict[str, str] | None = None) -> Any:
    resp = agent.dispatcher.handle(request(b"", headers, method="GET", path=path))
    assert resp.status == 200
    assert resp.headers["Vary"] == "A2A-Version"
    return json.loads(resp.body)  # type: ignore[arg-type]


def full_agent(**kw: Any) -> Agent:
    info = CardInfo(
        input_modes=("text/plain", "image/*"),
        output_modes=("text/markdown",),
        provider=Provider("Example Org", "https://example.org"),
        documentation_url="https://example.org/docs",
        icon_url="https://example.org/icon.png",
        extensions=(Extension("https://example.org/ext/v1", "an extension", True, {"a": 1}),),
        security_schemes={
            "oidc": SecurityScheme("openIdConnect", url="https://example.org/.well-known/oidc"),
            "key": SecurityScheme("apiKey", name="x-api-key", location="header"),
        },
        security=({"oidc": ["read"]}, {"key": []}),
        extended_skills=(Skill("admin", "Admin", "Only for signed-in callers", tags=["admin"]),),
    )
    return make_agent(card=info, **kw)


def test_v1_card_has_only_v1_fields() -> None:
    for agent in (make_agent(), full_agent(auth=BearerAuth(tokens=["t"]))):
        card = get_card(agent)
        assert set(card) <= V1_CARD, set(card) - V1_CARD
        assert set(card["capabilities"]) <= V1_CAPABILITIES
        assert all(set(s) <= V1_SKILL for s in card["skills"])
        assert card["supportedInterfaces"] == [
            {"url": URL, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": URL, "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
            {"url": URL, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ]
        assert get_card(agent, headers=V1) == card


def test_v03_card_at_the_legacy_path_or_with_the_header() -> None:
    agent = make_agent()
    card = get_card(agent, LEGACY)
    assert get_card(agent, CARD, {"a2a-version": "0.3"}) == card
    assert set(card) >= V03_REQUIRED
    assert "supportedInterfaces" not in card
    assert card["url"] == URL
    assert card["protocolVersion"] == "0.3.0"
    assert card["preferredTransport"] == "JSONRPC"


def test_everything_on_the_card_is_configurable() -> None:
    agent = full_agent(auth=BearerAuth(tokens=["t"]))
    v1 = get_card(agent)
    assert v1["defaultInputModes"] == ["text/plain", "image/*"]
    assert v1["defaultOutputModes"] == ["text/markdown"]
    assert v1["provider"] == {"organization": "Example Org", "url": "https://example.org"}
    assert v1["documentationUrl"] == "https://example.org/docs"
    assert v1["iconUrl"] == "https://example.org/icon.png"
    assert v1["capabilities"]["extensions"] == [
        {"uri": "https://example.org/ext/v1", "description": "an extension", "required": True,
         "params": {"a": 1}}
    ]  # fmt: skip
    assert v1["capabilities"]["extendedAgentCard"] is True
    assert v1["securitySchemes"] == {
        "oidc": {
            "openIdConnectSecurityScheme": {
                "openIdConnectUrl": "https://example.org/.well-known/oidc"
            }
        },
        "key": {"apiKeySecurityScheme": {"name": "x-api-key", "location": "header"}},
        "bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer"}},
    }
    assert v1["securityRequirements"] == [
        {"schemes": {"oidc": {"list": ["read"]}}},
        {"schemes": {"key": {"list": []}}},
        {"schemes": {"bearer": {"list": []}}},
    ]
    assert [s["id"] for s in v1["skills"]] == ["test-agent"]  # extended skills stay hidden
    old = get_card(agent, LEGACY)
    assert old["securitySchemes"]["key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    assert old["securitySchemes"]["bearer"] == {"type": "http", "scheme": "Bearer"}
    assert old["security"] == [{"oidc": ["read"]}, {"key": []}, {"bearer": []}]
    assert old["supportsAuthenticatedExtendedCard"] is True


def test_extended_card_for_authenticated_callers() -> None:
    agent = full_agent(auth=BearerAuth(tokens=["t"]))
    auth = {"authorization": "Bearer t"}
    card = rpc(agent, "GetExtendedAgentCard", {}, {**V1, **auth})["result"]
    assert [s["id"] for s in card["skills"]] == ["test-agent", "admin"]
    assert card["supportedInterfaces"][0]["url"] == URL
    old = rpc(agent, "agent/getAuthenticatedExtendedCard", {}, auth)["result"]
    assert old["url"] == URL
    plain = rpc(make_agent(), "GetExtendedAgentCard", {}, V1)
    assert plain["error"]["code"] == -32007


def test_card_caching_headers() -> None:
    agent = make_agent()
    resp = agent.dispatcher.handle(request(b"", method="GET", path=CARD))
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
    assert modified.endswith(" GMT")
    again = request(b"", {"if-none-match": etag}, method="GET", path=CARD)
    assert agent.dispatcher.handle(again).status == 304
    since = request(b"", {"if-modified-since": modified}, method="GET", path=CARD)
    assert agent.dispatcher.handle(since).status == 304
    legacy = agent.dispatcher.handle(
        request(b"", {"if-none-match": etag}, method="GET", path=LEGACY)
    )
    assert legacy.status == 200  # another card, another ETag


def test_parts_outside_the_input_modes_are_content_type_not_supported() -> None:
    agent = full_agent()
    png = {"raw": "iVBORw0=", "mediaType": "image/png"}
    ok = rpc(agent, "SendMessage", {"message": msg_v1("hi", parts=[{"text": "a"}, png])}, V1)
    assert "result" in ok
    bad = {"raw": "dGNr", "mediaType": "application/x-unsupported"}
    out = rpc(agent, "SendMessage", {"message": msg_v1("hi", parts=[bad])}, V1)
    assert out["error"]["code"] == -32005
    assert out["error"]["data"][0]["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"
    data = rpc(agent, "SendMessage", {"message": msg_v1("hi", parts=[{"data": {"a": 1}}])}, V1)
    assert data["error"]["code"] == -32005  # application/json is not among this card's modes
    skill = Skill("s", "S", "takes json", input_modes=["application/json"])
    assert "result" in rpc(
        make_agent(card=CardInfo(input_modes=("text/plain",)), skills=[skill]),
        "SendMessage",
        {"message": msg_v1("hi", parts=[{"data": {"a": 1}}])},
        V1,
    )


def test_media_matching() -> None:
    assert media_accepted("image/PNG; q=1", ["image/*"])
    assert media_accepted("anything/else", ["*/*"])
    assert not media_accepted("text/html", ["text/plain"])


def test_json_rpc_refuses_bodies_that_are_not_json() -> None:
    agent = make_agent()
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}).encode()
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        resp = agent.dispatcher.handle(request(body, {**V1, "content-type": kind}))
        out = json.loads(resp.body)  # type: ignore[arg-type]
        assert out["error"]["code"] == -32005, kind
    ok = agent.dispatcher.handle(
        request(body, {**V1, "content-type": "application/json; charset=utf-8"})
    )
    assert "result" in json.loads(ok.body)  # type: ignore[arg-type]
