"""What the research agent calls and how it reads the model: LLM, search, YAML decisions."""

from __future__ import annotations

import json
import re
from typing import Any

from flows.llm import call_llm, search_web

__all__ = [
    "ACTIONS",
    "call_llm",
    "format_context",
    "parse_decision",
    "parse_yaml_block",
    "search_web",
]

ACTIONS = ("search", "answer")
"""The actions the decide step may choose."""

_FENCE = re.compile(r"```[ \t]*(?:ya?ml)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:(?:\s+(.*))?$")


def parse_yaml_block(text: str) -> dict[str, str]:
    """The flat ``key: value`` mapping in the first fenced block of ``text`` (else all of it).

    Enough YAML for what models write back: plain, quoted and ``|``/``>`` block values,
    indented continuation lines. Keys are lower-cased; nested structure is flattened to
    text. No PyYAML needed at run time.
    """
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    out: dict[str, str] = {}
    key: str | None = None
    block: str | None = None  # "|" or ">" while reading a block scalar
    for line in body.splitlines():
        m = _KEY.match(line)
        if m is not None and not line[:1].isspace():
            key, value = m.group(1).lower(), (m.group(2) or "").strip()
            block = value[:1] if value[:1] in ("|", ">") else None
            out[key] = "" if block else _unquote(value)
        elif key is not None and (line[:1].isspace() or not line.strip()):
            joiner = "\n" if block == "|" else " "
            out[key] = (out[key] + joiner + line.strip()).strip() if line.strip() else out[key]
    return out


def parse_decision(text: str) -> dict[str, str]:
    """``action`` (one of :data:`ACTIONS`), ``reason`` and ``search_query`` from a reply.

    Raises ``ValueError`` when the reply names no valid action, so the node retries.
    """
    data = parse_yaml_block(text)
    words = re.findall(r"[a-z]+", data.get("action", "").lower())
    action = words[0] if words else ""
    if action not in ACTIONS:
        raise ValueError(f"no action out of {ACTIONS} in the model's reply: {text[:200]!r}")
    return {
        "action": action,
        "reason": data.get("reason", "").strip(),
        "search_query": data.get("search_query", "").strip() if action == "search" else "",
    }


def format_context(context: list[dict[str, Any]]) -> str:
    """The research so far, one ``Search:`` line per query and one bullet per result."""
    if not context:
        return "(none yet)"
    lines: list[str] = []
    for search in context:
        lines.append(f"Search: {search['query']}")
        lines.extend(
            f"- {r['snippet']} (source: {r['title']}, {r['url']})" for r in search["results"]
        )
    return "\n".join(lines)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except ValueError:
            return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    return value
