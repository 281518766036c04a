"""Naming flows so another process can build them again: ``"package.module:factory"``.

A durable run stores the reference, not the flow: every invocation that continues
the run imports the module and calls the factory to get a fresh graph.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pflambda.errors import ConfigError
from pflambda.graph import is_flow

__all__ = ["FlowSource", "load_flow", "ref_of"]

FlowSource = str | Callable[[], Any]
"""A ``"module:factory"`` string, or the factory function itself."""


def ref_of(source: FlowSource) -> str:
    """The importable ``"module:name"`` of a factory (or the string itself, checked)."""
    if isinstance(source, str):
        head, sep, name = source.partition(":")
        if not (head and sep and name):
            raise ConfigError(
                f"a flow reference looks like 'package.module:factory', not {source!r}"
            )
        return source
    module: str | None = getattr(source, "__module__", None)
    qualname: str = getattr(source, "__qualname__", "")
    if not module or module == "__main__" or "<locals>" in qualname:
        raise ConfigError(
            f"{source!r} cannot be imported by another process: define the flow factory "
            "at module level in an importable module, or pass 'module:factory'"
        )
    return f"{module}:{qualname}"


def load_flow(ref: str) -> Any:
    """Import ``ref`` and return a fresh flow (calling the factory if it is one)."""
    module_name, _, attr = ref_of(ref).partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import flow module {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no {attr!r}") from None
    flow = target if is_flow(target) else target() if callable(target) else None
    if not is_flow(flow):
        raise ConfigError(f"{ref!r} did not give a Flow (got {type(flow).__name__})")
    return flow
