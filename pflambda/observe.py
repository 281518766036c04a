"""What a log line knows: the run, task, node and step it belongs to.

The engine sets these as it goes (``bind``); :class:`ContextFilter` copies them onto
every record of the ``pflambda`` loggers, so each line -- the engine's, the worker's,
a user's own ``logging.getLogger("pflambda.flows...")`` -- can be searched by run id.
Stdlib only: the AWS edge (:mod:`pflambda.aws.observe`) adds JSON formatting and
metrics on Lambda.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["FIELDS", "ContextFilter", "bind", "current", "update"]

FIELDS = ("run_id", "task_id", "node", "step")
"""The context every pflambda log record carries (``None`` when unknown)."""

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "pflambda_log_context", default=None
)


def current() -> dict[str, Any]:
    """The fields bound right now."""
    return dict(_context.get() or {})


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to the context for the duration of the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def update(**fields: Any) -> None:
    """Change fields of the innermost :func:`bind` in place (the current step/node)."""
    context = _context.get()
    if context is not None:
        context.update(fields)


class ContextFilter(logging.Filter):
    """Puts the bound fields on every record (as attributes, for any formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        return True
