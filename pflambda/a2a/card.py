"""The agent card, one per protocol generation, from what an :class:`Agent` declares.

A2A 1.0 clients read the 1.0 card (``supportedInterfaces``: JSON-RPC and HTTP+JSON for
1.0, JSON-RPC for 0.3); 0.3 clients read the 0.3 card (``url``, ``protocolVersion``,
``preferredTransport``, ``additionalInterfaces``). Each carries only its own schema's
fields. Everything else a card can say -- modes, provider, documentation, icon,
extensions, security schemes, an extended card -- comes from :class:`CardInfo`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CardInfo",
    "Extension",
    "Provider",
    "SecurityScheme",
    "Skill",
    "build_card",
    "card_etag",
    "media_accepted",
]

DEFAULT_MODES = ("text/plain", "application/json")


@dataclass(frozen=True)
class Skill:
    """Something the agent can do, as listed on its card."""

    id: str
    name: str
    description: str
    tags: Sequence[str] = ()
    examples: Sequence[str] = ()
    input_modes: Sequence[str] = field(default_factory=tuple)
    output_modes: Sequence[str] = field(default_factory=tuple)
    security: Sequence[Mapping[str, Sequence[str]]] = ()
    """Security requirements of this skill alone: ``[{"scheme name": ["scope", ...]}]``."""

    def to_json(self, version: str = "1.0") -> dict[str, Any]:
        """The card's skill object."""
        doc: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
        }
        if self.examples:
            doc["examples"] = list(self.examples)
        if self.input_modes:
            doc["inputModes"] = list(self.input_modes)
        if self.output_modes:
            doc["outputModes"] = list(self.output_modes)
        if self.security:
            key = "securityRequirements" if version == "1.0" else "security"
            doc[key] = _requirements(self.security, version)
        return doc


@dataclass(frozen=True)
class Provider:
    """Who runs the agent."""

    organization: str
    url: str

    def to_json(self) -> dict[str, str]:
        """The card's provider object (the same in 1.0 and 0.3)."""
        return {"organization": self.organization, "url": self.url}


@dataclass(frozen=True)
class Extension:
    """A protocol extension the agent supports (or requires)."""

    uri: str
    description: str | None = None
    required: bool = False
    params: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The card's extension object (the same in 1.0 and 0.3)."""
        doc: dict[str, Any] = {"uri": self.uri}
        if self.description:
            doc["description"] = self.description
        if self.required:
            doc["required"] = True
        if self.params:
            doc["params"] = dict(self.params)
        return doc


@dataclass(frozen=True)
class SecurityScheme:
    """How to authenticate, in OpenAPI's terms.

    ``kind`` is ``"http"`` (``scheme`` e.g. ``"bearer"``, optional ``bearer_format``),
    ``"apiKey"`` (``name`` of the header/query/cookie ``location``), ``"openIdConnect"``
    (``url``), ``"oauth2"`` (``flows`` as the spec writes them) or ``"mutualTLS"``.
    """

    kind: str
    scheme: str | None = None
    bearer_format: str | None = None
    name: str | None = None
    location: str | None = None
    url: str | None = None
    flows: Mapping[str, Any] | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _SCHEME_KEYS:
            raise ValueError(f"security scheme kind must be one of {sorted(_SCHEME_KEYS)}")

    def to_json(self, version: str) -> dict[str, Any]:
        """The 1.0 (one-of wrapper) or 0.3 (OpenAPI ``type``) shape."""
        if version == "1.0":
            shapes: dict[str, dict[str, Any]] = {
                "http": {"scheme": self.scheme, "bearerFormat": self.bearer_format},
                "apiKey": {"name": self.name, "location": self.location},
                "openIdConnect": {"openIdConnectUrl": self.url},
                "oauth2": {"flows": dict(self.flows or {})},
                "mutualTLS": {},
            }
            body = shapes[self.kind]
            body["description"] = self.description
            return {_SCHEME_KEYS[self.kind]: _drop_none(body)}
        doc: dict[str, Any] = {
            "type": self.kind,
            "description": self.description,
            "scheme": self.scheme,
            "bearerFormat": self.bearer_format,
            "name": self.name,
            "in": self.location,
            "openIdConnectUrl": self.url,
            "flows": dict(self.flows) if self.flows else None,
        }
        return _drop_none(doc)


_SCHEME_KEYS = {
    "http": "httpAuthSecurityScheme",
    "apiKey": "apiKeySecurityScheme",
    "openIdConnect": "openIdConnectSecurityScheme",
    "oauth2": "oauth2SecurityScheme",
    "mutualTLS": "mtlsSecurityScheme",
}
BEARER = SecurityScheme("http", scheme="Bearer")


@dataclass(frozen=True)
class CardInfo:
    """What an agent's card says beyond its name, skills and capabilities.

    ``input_modes`` are also enforced: a message part whose media type none of them
    (nor a skill's) accepts is refused with -32005 (wildcards such as ``image/*`` or
    ``*/*`` are allowed). ``extended_skills`` are listed only on the extended card
    (``GetExtendedAgentCard``), which callers get once authenticated.
    """

    input_modes: Sequence[str] = DEFAULT_MODES
    output_modes: Sequence[str] = DEFAULT_MODES
    provider: Provider | None = None
    documentation_url: str | None = None
    icon_url: str | None = None
    extensions: Sequence[Extension] = ()
    security_schemes: Mapping[str, SecurityScheme] = field(default_factory=dict)
    security: Sequence[Mapping[str, Sequence[str]]] = ()
    """Who may call: ``[{"scheme name": ["scope", ...]}]`` (any one entry suffices)."""
    extended_skills: Sequence[Skill] = ()
    extended_description: str | None = None


def build_card(
    *,
    name: str,
    description: str,
    version: str,
    url: str,
    skills: Sequence[Skill],
    streaming: bool,
    push: bool,
    bearer: bool,
    info: CardInfo | None = None,
    protocol: str = "1.0",
    extended: bool = False,
) -> dict[str, Any]:
    """The card of an agent served at ``url``, for ``protocol`` "1.0" or "0.3";
    ``extended``: the extended card (with ``info.extended_skills``)."""
    info = info or CardInfo()
    schemes = dict(info.security_schemes)
    security = list(info.security)
    if bearer and "bearer" not in schemes:
        schemes["bearer"] = BEARER
        security.append({"bearer": []})
    all_skills = [*skills, *(info.extended_skills if extended else ())]
    card: dict[str, Any] = {
        "name": name,
        "description": (extended and info.extended_description) or description,
        "version": version,
    }
    capabilities: dict[str, Any] = {"streaming": streaming, "pushNotifications": push}
    if info.extensions:
        capabilities["extensions"] = [e.to_json() for e in info.extensions]
    if protocol == "1.0":
        card["supportedInterfaces"] = [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": url, "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ]
        if info.extended_skills:
            capabilities["extendedAgentCard"] = True
    else:
        card |= {"url": url, "protocolVersion": "0.3.0", "preferredTransport": "JSONRPC"}
        if info.extended_skills:
            card["supportsAuthenticatedExtendedCard"] = True
    card["capabilities"] = capabilities
    card["defaultInputModes"] = list(info.input_modes)
    card["defaultOutputModes"] = list(info.output_modes)
    card["skills"] = [s.to_json(protocol) for s in all_skills]
    if info.provider:
        card["provider"] = info.provider.to_json()
    if info.documentation_url:
        card["documentationUrl"] = info.documentation_url
    if info.icon_url:
        card["iconUrl"] = info.icon_url
    if schemes:
        card["securitySchemes"] = {k: s.to_json(protocol) for k, s in schemes.items()}
    if security:
        key = "securityRequirements" if protocol == "1.0" else "security"
        card[key] = _requirements(security, protocol)
    return card


def _requirements(
    security: Sequence[Mapping[str, Sequence[str]]], protocol: str
) -> list[dict[str, Any]]:
    if protocol == "1.0":
        return [
            {"schemes": {name: {"list": list(scopes)} for name, scopes in r.items()}}
            for r in security
        ]
    return [{name: list(scopes) for name, scopes in r.items()} for r in security]


def media_accepted(media_type: str, modes: Sequence[str]) -> bool:
    """Whether ``media_type`` (parameters ignored) matches one of ``modes`` (``*`` wildcards)."""
    kind = media_type.partition(";")[0].strip().lower()
    return any(fnmatch.fnmatchcase(kind, m.partition(";")[0].strip().lower()) for m in modes)


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def card_etag(card: dict[str, Any]) -> str:
    """A strong ETag: the hash of the card's canonical JSON."""
    text = json.dumps(card, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
