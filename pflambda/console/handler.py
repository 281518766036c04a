"""The console as a Lambda function behind API Gateway, configured from the environment.

``handlers/console.py`` in a project is one line: ``from pflambda.console.handler
import handler``. Configuration:

==============================  ===========================================
``PFLAMBDA_CONSOLE_OPERATORS``  principals who see every run (comma-
                                separated; ``*``: everyone). Anyone else
                                sees only the runs they own.
``PFLAMBDA_TOKEN`` and friends  bearer tokens, checked as the agents do
                                (see :class:`~pflambda.a2a.auth.BearerAuth`)
==============================  ===========================================

The store, blobs and queue are the agents' (:class:`~pflambda.aws.config.Settings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pflambda.a2a.auth import BearerAuth
from pflambda.console.app import Console

__all__ = ["console_from_env", "handler", "operators_from_env"]

_TOKEN_VARIABLES = ("PFLAMBDA_TOKEN", "PFLAMBDA_TOKEN_SECRET", "PFLAMBDA_TOKEN_PARAMETER")


def operators_from_env(env: Mapping[str, str] | None = None, default: str = "") -> frozenset[str]:
    """The principals ``PFLAMBDA_CONSOLE_OPERATORS`` names (``default`` when unset)."""
    env = os.environ if env is None else env
    raw = env.get("PFLAMBDA_CONSOLE_OPERATORS", default)
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def console_from_env(default_operators: str = "") -> Console:
    """A console on the environment's engine, with its bearer auth and operators."""
    from pflambda.aws.config import Settings

    auth = BearerAuth() if any(os.environ.get(v) for v in _TOKEN_VARIABLES) else None
    operators = operators_from_env(default=default_operators)
    return Console(Settings.from_env().engine(), auth=auth, operators=operators)


_CONSOLE: Console | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda handler: an API Gateway proxy event in, a proxy response out."""
    global _CONSOLE
    from pflambda.aws.http import lambda_handler

    if _CONSOLE is None:
        _CONSOLE = console_from_env()
    return lambda_handler(_CONSOLE)(event, context)
