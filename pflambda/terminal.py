"""How the ``pflambda`` command reports: one line per error with a hint, an exit code, quiet logs.

A user at a terminal gets ``pflambda: <what is wrong>`` and ``  hint: <what to do>``, never
a traceback (``--verbose`` shows them, and the access logs of the servers). The codes are
the table in :mod:`pflambda.cli`.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pflambda.errors import ConfigError, FingerprintMismatch, PflambdaError
from pflambda.graph import GraphError

__all__ = ["CONFIG", "FAILED", "UNREACHABLE", "report_error", "setup_logging"]

FAILED = 1
CONFIG = 2
UNREACHABLE = 6

_HANDLER_NAME = "pflambda-terminal"
_NOISY = ("werkzeug", "botocore", "urllib3")
"""Loggers that print a line per request or retry: shown only with ``--verbose``."""


def report_error(exc: Exception, stream: TextIO | None = None) -> int:
    """Print ``exc`` as one line and a hint (when there is one); return the exit code."""
    stream = stream or sys.stderr
    message, hint, code = _describe(exc)
    print(f"pflambda: {message}", file=stream)
    if hint:
        print(f"  hint: {hint}", file=stream)
    return code


def _describe(exc: Exception) -> tuple[str, str, int]:
    if "botocore" in sys.modules:  # only AWS calls can have failed in botocore
        from pflambda.aws.failures import explain

        try:
            problem = explain(exc)
        except PflambdaError:  # the settings themselves are wrong: say that instead
            problem = None
        if problem is not None:
            return problem.message, problem.hint, UNREACHABLE if problem.unreachable else CONFIG
    if isinstance(exc, FingerprintMismatch):
        return str(exc), "add --allow-changed-flow to resume on the new flow anyway", FAILED
    if isinstance(exc, ConfigError | GraphError):
        return str(exc), "", CONFIG
    if isinstance(exc, PflambdaError):
        return str(exc), "", FAILED
    return (
        f"unexpected {type(exc).__name__}: {exc}",
        "run it again with --verbose for the traceback",
        FAILED,
    )


class _OneLine(logging.Formatter):
    """``pflambda: message`` -- no traceback (the outcome line says what happened)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"pflambda: {record.getMessage()}"


def _not_the_outcome(record: logging.LogRecord) -> bool:
    """Drop the engine's 'run ... failed' record: the command prints the outcome itself."""
    return not str(record.msg).startswith("run %s failed")


def setup_logging(verbose: bool, *, level: int = logging.WARNING) -> None:
    """Quiet by default: ``pflambda`` warnings as one line each on stderr.

    ``verbose``: every ``pflambda`` record from INFO up with its traceback, and the
    request logs of the emulator (werkzeug) and botocore's retries.
    """
    logger = logging.getLogger("pflambda")
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.setLevel(min(level, logging.INFO))
    else:
        handler.setFormatter(_OneLine())
        handler.addFilter(_not_the_outcome)
        logger.setLevel(level)
    logger.addHandler(handler)
    logger.propagate = False
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
