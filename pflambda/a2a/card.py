"""The agent card: one JSON document that 1.0 and 0.3 clients both read.

1.0 clients pick an entry of ``supportedInterfaces`` (they prefer protocol 1.0);
0.3 clients read the top-level ``url``/``protocolVersion``/``preferredTransport``.
Both point at the same URL: the server tells the versions apart by method name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Skill", "build_card", "card_etag"]


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

    def to_json(self) -> dict[str, Any]:
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
        return doc


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
    provider: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The card for an agent served at ``url``."""
    card: dict[str, Any] = {
        "name": name,
        "description": description,
        "version": version,
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "url": url,
        "protocolVersion": "0.3.0",
        "preferredTransport": "JSONRPC",
        "capabilities": {"streaming": streaming, "pushNotifications": push},
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": [s.to_json() for s in skills],
    }
    if provider:
        card["provider"] = provider
    if bearer:
        card["securitySchemes"] = {
            "bearer": {
                "httpAuthSecurityScheme": {"scheme": "Bearer"},
                "type": "http",
                "scheme": "bearer",
            }
        }
        card["securityRequirements"] = [{"schemes": {"bearer": {"list": []}}}]
        card["security"] = [{"bearer": []}]
    return card


def card_etag(card: dict[str, Any]) -> str:
    """A strong ETag: the hash of the card's canonical JSON."""
    text = json.dumps(card, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
