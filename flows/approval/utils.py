"""What the approval agent calls and how it reads a human's reply."""

from __future__ import annotations

import re
from typing import Any

from flows.llm import call_llm

__all__ = ["APPROVALS", "call_llm", "feedback_of", "is_approval"]

APPROVALS = frozenset({"yes", "y", "approve", "approved"})
"""Replies (case-insensitive, surrounding punctuation ignored) that approve the plan."""

_REFUSAL = re.compile(r"^\s*(?:no|nope|n|reject(?:ed)?|revise)\b[\s,.;:!-]*", re.IGNORECASE)


def is_approval(reply: Any) -> bool:
    """Whether the human's reply approves the plan: ``yes`` or ``approve``, nothing more."""
    return str(reply).strip().strip(".!").strip().lower() in APPROVALS


def feedback_of(reply: Any) -> str:
    """What the human wants changed: the reply without a leading ``no,`` (may be empty)."""
    return _REFUSAL.sub("", str(reply), count=1).strip()
