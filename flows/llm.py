"""The outside world the example agents call: an LLM, and a web search.

``call_llm`` is the one way every example flow talks to a model: Amazon Bedrock when
configured, a deterministic offline model otherwise, so every example runs (and is
tested) with no credentials and no network. ``search_web`` is the research agent's
search engine; it is offline only.

Environment
-----------
``PFLAMBDA_LLM``
    ``bedrock`` to call Bedrock, ``offline`` to force the offline model. Unset: Bedrock
    when ``BEDROCK_MODEL_ID`` is set, else offline.
``BEDROCK_MODEL_ID``
    The Bedrock model (or inference profile) id; default :data:`DEFAULT_MODEL_ID`.
``BEDROCK_REGION``
    The Bedrock endpoint's region; default boto3's own (``AWS_REGION``, ...).

Bedrock
-------
One Converse call per prompt (``system`` as the system prompt, ``max_tokens`` as
``inferenceConfig.maxTokens``); the reply is the text of the output message's content
blocks. A ``client=`` argument always uses Bedrock with that client; otherwise the
``bedrock-runtime`` client is made lazily, once per process (:func:`set_client`
replaces it, e.g. in tests). Throttling becomes :class:`LLMThrottled`, a
``RetryableError``; every other failure propagates unchanged.

The offline model
-----------------
Same ``system`` and ``prompt``, same answer: every choice it makes is drawn from a
SHA-256 of the two. It reads a prompt as *instructions* plus *material*: material is
the lines under a short heading line of their own (``Text:``, ``Previous research:``,
``Current plan:``), up to the next ``###`` section line, ```` ```yaml ```` fence or the
end. The subject is the value of the first ``Question:``, ``Request:``, ``Topic:`` or
``Task:`` line.
From the instructions alone it recognises, in this order:

- a fenced ```` ```yaml ```` template: it answers with a YAML block with the same keys.
  A value offering options (``search | answer``) gets the first option while the material
  holds no URL (no evidence yet), else one option by hash; a key naming a ``query``
  gets keywords of the subject plus a facet; any other key, one sentence.
- ``numbered``: a numbered plan. A numbered list already in the material is kept and
  every non-empty ``Feedback:`` line adds a step; otherwise the goal and 2 to 4 steps.
- ``summar``: an extractive summary -- the first sentence of each bullet of the
  material, or the opening sentences of prose.
- anything else: an answer to the subject built from the material's opening
  sentences, citing the URLs it found.

Free-text replies are cut to ``max_tokens`` words.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from pflambda.errors import RetryableError

__all__ = [
    "DEFAULT_MODEL_ID",
    "LLMThrottled",
    "call_llm",
    "offline_llm",
    "search_web",
    "set_client",
    "use_bedrock",
]

DEFAULT_MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
"""The Bedrock model used when ``BEDROCK_MODEL_ID`` is not set."""

_THROTTLING_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}
)

_client: Any = None


class LLMThrottled(RetryableError):
    """Bedrock refused the call for now (throttling or quota): try again later."""


def set_client(client: Any) -> None:
    """Replace the default ``bedrock-runtime`` client (``None``: make one again lazily)."""
    global _client
    _client = client


def use_bedrock() -> bool:
    """Whether ``call_llm`` calls Bedrock (see the module doc for the variables)."""
    mode = os.environ.get("PFLAMBDA_LLM", "").strip().lower()
    if mode:
        return mode == "bedrock"
    return bool(os.environ.get("BEDROCK_MODEL_ID"))


def call_llm(
    prompt: str, *, system: str | None = None, max_tokens: int = 512, client: Any = None
) -> str:
    """The model's reply to ``prompt``: from Bedrock when configured, else offline."""
    if client is not None or use_bedrock():
        return _converse(client or _default_client(), prompt, system, max_tokens)
    return offline_llm(prompt, system=system, max_tokens=max_tokens)


# -- Bedrock ----------------------------------------------------------------------------


def _default_client() -> Any:
    global _client
    if _client is None:
        # The examples' AWS edge: the only place a flow makes a boto3 client.
        import boto3  # noqa: TID251

        _client = boto3.client(
            "bedrock-runtime", region_name=os.environ.get("BEDROCK_REGION") or None
        )
    return _client


def _converse(client: Any, prompt: str, system: str | None, max_tokens: int) -> str:
    request: dict[str, Any] = {
        "modelId": os.environ.get("BEDROCK_MODEL_ID") or DEFAULT_MODEL_ID,
        "messages": [{"role": "user", "content": [{"text": prompt}]}],
        "inferenceConfig": {"maxTokens": max_tokens},
    }
    if system:
        request["system"] = [{"text": system}]
    try:
        response = client.converse(**request)
    except Exception as exc:
        error = getattr(exc, "response", None)  # botocore's ClientError carries the code
        code = error.get("Error", {}).get("Code", "") if isinstance(error, dict) else ""
        if code in _THROTTLING_CODES:
            raise LLMThrottled(f"Bedrock throttled {request['modelId']}: {exc}") from exc
        raise
    blocks = response["output"]["message"]["content"]
    return "".join(block["text"] for block in blocks if "text" in block)


# -- the offline model ------------------------------------------------------------------

_HEADING = re.compile(r"^\s*([A-Za-z]+(?: [A-Za-z]+){0,2}):\s*$")
_SUBJECT = re.compile(r"^\s*(?:question|request|topic|task)\s*:\s*(\S.*)$", re.IGNORECASE)
_FEEDBACK = re.compile(r"^\s*feedback\s*:\s*(.*)$", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s)>\],]+")
_URL_PAREN = re.compile(r"\s*\([^()]*https?://[^)]*\)")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(\S.*)$")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+(\S.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TEMPLATE_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$")
_CHOICE = re.compile(r"^[\w-]+(?:\s*(?:\||\bor\b)\s*[\w-]+)+$", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")

_STOPWORD_TEXT = (
    "a an and are about as at be by can could did do does for from how i in is it me "
    "my of on or should tell than that the their there these this to was we what when "
    "where which who why will with would you your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_FACETS = ("overview", "key facts", "history", "latest", "examples", "explained")
_OPENINGS = ("In short:", "Based on the research:", "From what the sources say:")
_PLAN_GOAL = "Clarify the goal and what done means: {s}"
_PLAN_STEPS = (
    "List the inputs, owners and constraints",
    "Break the work into small, checkable tasks",
    "Carry out the tasks, lowest risk first",
    "Verify the outcome against the goal",
    "Report the result and note follow-ups",
)


@dataclass
class _Prompt:
    """A prompt read the offline model's way (see the module doc)."""

    seed: bytes
    instructions: list[str] = field(default_factory=list)
    material: list[str] = field(default_factory=list)
    subject: str = ""
    feedback: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def number(self, salt: str) -> int:
        """A large number drawn from the prompt and ``salt``."""
        return int.from_bytes(hashlib.sha256(self.seed + salt.encode()).digest()[:8], "big")

    def pick(self, salt: str, options: tuple[str, ...] | list[str]) -> str:
        """One of ``options``, drawn from the prompt and ``salt``."""
        return options[self.number(salt) % len(options)]

    @property
    def asks(self) -> str:
        return "\n".join(self.instructions)


def offline_llm(prompt: str, *, system: str | None = None, max_tokens: int = 512) -> str:
    """The offline model's reply (deterministic; no network). See the module doc."""
    p = _read(prompt, system)
    lines = [line.strip().lower() for line in p.instructions]
    if any(line.startswith("```yaml") for line in lines):
        return _fill_yaml(p)
    lowered = "\n".join(lines)
    if "numbered" in lowered:
        reply = _plan(p)
    elif "summar" in lowered:
        reply = _summary(p)
    else:
        reply = _answer(p)
    return _cut(reply, max_tokens)


def _read(prompt: str, system: str | None) -> _Prompt:
    p = _Prompt(seed=hashlib.sha256(f"{system or ''}\x00{prompt}".encode()).digest())
    in_fence = in_material = False
    for line in prompt.splitlines():
        stripped = line.strip()
        if in_material and not stripped.lower().startswith(("###", "```yaml")):
            p.material.append(line)
            continue
        in_material = False
        if stripped.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and _HEADING.match(line):
            in_material = True
        p.instructions.append(line)
        if not in_fence and not p.subject and (m := _SUBJECT.match(line)):
            p.subject = m.group(1).strip()
        if not in_fence and (m := _FEEDBACK.match(line)) and m.group(1).strip():
            p.feedback.append(m.group(1).strip())
    if not p.subject:
        p.subject = next((x.strip() for x in prompt.splitlines() if x.strip()), "")[:120]
    p.urls = list(dict.fromkeys(_URL.findall("\n".join(p.material))))
    return p


def _fill_yaml(p: _Prompt) -> str:
    lines = p.asks.splitlines()
    start = next(i for i, x in enumerate(lines) if x.strip().lower().startswith("```yaml"))
    template: list[tuple[str, str]] = []
    for line in lines[start + 1 :]:
        if line.strip().startswith("```"):
            break
        if (m := _TEMPLATE_KEY.match(line)) is not None:
            template.append((m.group(1), m.group(2).strip()))
    chosen = {key: _choose(p, key, value) for key, value in template if _CHOICE.match(value)}
    sources = len(p.urls)
    out = ["```yaml"]
    for key, value in template:
        if key in chosen:
            out.append(f"{key}: {chosen[key]}")
        elif "query" in key.lower():
            out.append(f"{key}: {_quote(_query(p))}")
        else:
            said = ", ".join(f"{k}={v}" for k, v in chosen.items()) or "this answer"
            text = f"{sources} source(s) so far on {p.subject!r}; chose {said}."
            out.append(f"{key}: |\n    {text}" if value == "|" else f"{key}: {_quote(text)}")
    out.append("```")
    return "\n".join(out)


def _choose(p: _Prompt, key: str, value: str) -> str:
    options = [o for o in re.split(r"\s*(?:\||\bor\b)\s*", value, flags=re.IGNORECASE) if o]
    return options[0] if not p.urls else p.pick(f"choice:{key}", options)


def _query(p: _Prompt) -> str:
    words = [w for w in _WORD.findall(p.subject.lower()) if w not in _STOPWORDS][:6]
    return " ".join([*(words or ["general", "information"]), p.pick("facet", _FACETS)])


def _plan(p: _Prompt) -> str:
    steps = [m.group(1).strip() for x in p.material if (m := _NUMBERED.match(x))]
    if not steps:
        count = 2 + p.number("count") % 3
        order = sorted(range(len(_PLAN_STEPS)), key=lambda i: p.number(f"step:{i}"))
        goal = _PLAN_GOAL.format(s=p.subject.rstrip(". ") or "the request")
        steps = [goal, *(_PLAN_STEPS[i] for i in sorted(order[:count]))]
    steps += [f"Address the feedback: {fb}" for fb in p.feedback]
    return "\n".join(f"{n}. {step}" for n, step in enumerate(steps, 1))


def _summary(p: _Prompt) -> str:
    items = _items(p.material)
    if len(items) > 1:
        return " ".join(_sentences(item)[0] for item in items)
    sentences = _sentences(" ".join(items))
    if not sentences:
        return "There is nothing to summarise."
    picked = sentences[:1] if len(sentences[0].split()) >= 12 else sentences[:2]
    return " ".join(picked)


def _answer(p: _Prompt) -> str:
    texts = (_sentences(_URL_PAREN.sub("", item)) for item in _items(p.material))
    facts = [sentences[0] for sentences in texts if sentences][:2]
    if not facts:
        return (
            f"Offline answer to {p.subject!r}: there is no research to draw on, "
            "so this is only a placeholder."
        )
    cited = f" Sources: {', '.join(p.urls[:3])}." if p.urls else ""
    return f"{p.pick('opening', _OPENINGS)} {' '.join(facts)}{cited}"


def _items(material: list[str]) -> list[str]:
    """Bullets of the material (a bullet's continuation lines joined), else its prose."""
    items: list[str] = []
    prose: list[str] = []
    for line in material:
        if (m := _BULLET.match(line)) is not None:
            items.append(m.group(1).strip())
        elif line.strip() and items and line[:1].isspace():
            items[-1] += " " + line.strip()
        elif line.strip():
            prose.append(line.strip())
    return items if items else ([" ".join(prose)] if prose else [])


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _cut(text: str, max_words: int) -> str:
    words = list(re.finditer(r"\S+", text))
    keep = max(max_words, 1)
    return text if len(words) <= keep else text[: words[keep - 1].end()]


# -- web search -------------------------------------------------------------------------

_KINDS = (
    ("guide", "A practical guide", "A step-by-step guide to {q}, with the common pitfalls."),
    ("overview", "An overview", "An overview of {q}: the main facts and how they fit together."),
    ("faq", "Questions and answers", "Short answers to the questions people ask about {q}."),
    ("study", "What the research says", "A summary of published findings on {q}."),
    ("news", "Recent developments", "What changed recently in {q}, and why it matters."),
)


def search_web(query: str, *, count: int = 3) -> list[dict[str, str]]:
    """Offline search results for ``query``: ``title``, ``url`` (on example.com), ``snippet``.

    Deterministic and network-free: the same query always gives the same results.
    """
    q = " ".join(query.split())
    if not q:
        return []
    slug = re.sub(r"[^a-z0-9]+", "-", q.lower()).strip("-")[:60] or "query"
    first = int(hashlib.sha256(q.encode()).hexdigest()[:8], 16)
    results = []
    for i in range(count):
        digest = hashlib.sha256(f"{q}\x00{i}".encode()).hexdigest()
        kind, title, snippet = _KINDS[(first + i) % len(_KINDS)]
        results.append(
            {
                "title": f"{title}: {q}",
                "url": f"https://example.com/{kind}/{slug}-{digest[:8]}",
                "snippet": snippet.format(q=q),
            }
        )
    return results
