"""Every declared agent, found by importing the package that declares them, and the one
worker that serves them all.

Registration, not lists: an :class:`~pflambda.a2a.agent.Agent` enters
:data:`~pflambda.a2a.agent.REGISTRY` when it is made, so the shared worker imports every
module of the handlers package and finds each agent there -- a new agent's pushes are
delivered without anyone editing the worker.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from pflambda.a2a.agent import REGISTRY, Agent

if TYPE_CHECKING:
    from pflambda.aws.worker import Worker

__all__ = ["declare", "shared_worker"]


def declare(package: str) -> dict[str, Agent]:
    """Import ``package`` and every module in it; the agents declared so far, by name."""
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(getattr(root, "__path__", []), prefix=f"{package}."):
        importlib.import_module(info.name)
    return dict(REGISTRY)


def shared_worker(package: str = "handlers") -> Worker:
    """The SQS worker for every agent declared in ``package``: it continues their runs,
    queues the pushes of the status changes it makes, and delivers every queued push."""
    from pflambda.a2a.notify import KIND, PushDelivery, Pushes
    from pflambda.aws.worker import Worker

    declare(package)
    pushes = Pushes(REGISTRY.get)
    return Worker(
        listeners=[pushes.on_status],
        step_listeners=[pushes.on_step],
        kinds={KIND: PushDelivery(REGISTRY.get)},
    )
