"""The two node-graph implementations the core tests run against.

``IMPLS`` is a list of ``(name, module)`` pairs.  Each module exposes the eleven
pocketflow classes under their pocketflow names, so a scenario written as
``pf.Node``, ``pf.Flow``, ... runs unchanged on either implementation:

* ``"pocketflow"`` -- the reference, the real ``pocketflow`` 0.0.3 package;
* ``"pflambda"``   -- a ``types.ModuleType`` named ``pocketflow`` that re-exports
  the classes exported from ``pflambda``.

Set ``PFLAMBDA_CORE_TEST_IMPLS=pocketflow`` to run the suites against the reference
only (useful while ``pflambda.core`` is being written).  By default both are used
and a missing ``pflambda`` is a hard import error, never a silent skip.
"""

from __future__ import annotations

import asyncio
import os
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pocketflow
import pytest

CLASS_NAMES = (
    "BaseNode",
    "Node",
    "BatchNode",
    "Flow",
    "BatchFlow",
    "AsyncNode",
    "AsyncBatchNode",
    "AsyncParallelBatchNode",
    "AsyncFlow",
    "AsyncBatchFlow",
    "AsyncParallelBatchFlow",
)

_wanted = os.environ.get("PFLAMBDA_CORE_TEST_IMPLS", "pocketflow,pflambda").split(",")
WANT_PFLAMBDA = "pflambda" in _wanted


def _pflambda_module() -> types.ModuleType:
    import pflambda

    mod = types.ModuleType("pocketflow", "pocketflow API backed by pflambda's classes")
    for name in CLASS_NAMES:
        setattr(mod, name, getattr(pflambda, name))
    mod.__all__ = list(CLASS_NAMES)
    return mod


pflambda_pf: types.ModuleType | None = _pflambda_module() if WANT_PFLAMBDA else None

IMPLS: list[tuple[str, types.ModuleType]] = [("pocketflow", pocketflow)]
if pflambda_pf is not None:
    IMPLS.append(("pflambda", pflambda_pf))

IMPL_IDS = [name for name, _ in IMPLS]
IMPL_MODULES = [mod for _, mod in IMPLS]


# --------------------------------------------------------------------------- harness


@dataclass
class Outcome:
    obs: dict[str, Any]
    warnings: list[tuple[str, str]]
    exc: tuple[str, str] | None
    sleeps: list[tuple[str, float]]


def observe(
    fn: Callable[[types.ModuleType, dict[str, Any]], None], pf: types.ModuleType
) -> Outcome:
    """Run ``fn(pf, obs)``; record obs, warnings, the escaping exception and sleeps.

    ``time.sleep`` and ``asyncio.sleep`` are patched globally for the duration:
    calls are recorded and never wait (the async one still yields to the loop).
    An ``AssertionError`` raised by the scenario itself is a test failure and
    propagates; any other exception is part of the observed behaviour.
    """
    obs: dict[str, Any] = {}
    sleeps: list[tuple[str, float]] = []
    real_async_sleep = asyncio.sleep

    def fake_sleep(secs):
        sleeps.append(("time.sleep", secs))

    async def fake_async_sleep(secs, result=None):
        sleeps.append(("asyncio.sleep", secs))
        return await real_async_sleep(0, result)

    exc = None
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mp.setattr("time.sleep", fake_sleep)
        mp.setattr("asyncio.sleep", fake_async_sleep)
        try:
            fn(pf, obs)
        except AssertionError:
            raise
        except BaseException as e:
            exc = (type(e).__name__, str(e))
    return Outcome(
        obs=obs,
        warnings=[(w.category.__name__, str(w.message)) for w in caught],
        exc=exc,
        sleeps=sleeps,
    )
