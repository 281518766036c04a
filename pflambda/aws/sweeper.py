"""The scheduled sweeper Lambda: EventBridge calls it every minute (``template.yaml``).

It lists the runs whose lease lapsed through the lease index and sends each a
continuation (see :mod:`pflambda.engine.sweeper`); the worker does the rest.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pflambda.aws.config import Settings
from pflambda.engine.sweeper import sweep

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = ["Sweeper", "handler"]

log = logging.getLogger("pflambda.sweeper")


class Sweeper:
    """The handler: one sweep per scheduled event, with an engine made once per container."""

    def __init__(self, engine: Engine | None = None, limit: int = 100) -> None:
        self._engine, self.limit = engine, limit

    @property
    def engine(self) -> Engine:
        """The engine, made on first use (once per warm container)."""
        if self._engine is None:
            self._engine = Settings.from_env().engine()
        return self._engine

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Sweep once; answer what was found and continued (for the logs)."""
        done = sweep(self.engine, limit=self.limit)
        if done.found:
            log.info("sweep: %d stalled, %d continued", done.found, len(done.continued))
        return {"found": done.found, "continued": done.continued, "failed": done.failed}


handler = Sweeper()
"""The default sweeper, configured from the environment."""
