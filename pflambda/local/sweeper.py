"""The local twin of the scheduled sweeper: a thread that sweeps every so often.

``pflambda local`` runs it beside the server and the SQS poller, so a run whose
driver died (a killed request, a crashed worker) is continued locally as it would be
on AWS. The period is ``PFLAMBDA_SWEEP_SECONDS`` (default: the template's minute).
With ``expire``, each sweep also deletes the runs that expired (the local twin of
DynamoDB's TTL and ReaperFunction, :mod:`pflambda.local.expiry`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pflambda import limits
from pflambda.engine.sweeper import Sweep, sweep

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = ["SweepThread"]

log = logging.getLogger("pflambda.sweeper")


class SweepThread:
    """Calls :func:`~pflambda.engine.sweeper.sweep` every ``every`` seconds until stopped."""

    def __init__(
        self,
        engine: Callable[[], Engine],
        every: float | None = None,
        expire: Callable[[Engine], int] | None = None,
    ) -> None:
        env = os.environ.get("PFLAMBDA_SWEEP_SECONDS")
        self.every = every if every is not None else float(env or limits.SWEEP_EVERY_SECONDS)
        self._engine, self._expire = engine, expire
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pflambda-sweep", daemon=True)
        self.sweeps = 0

    def start(self) -> SweepThread:
        """Start sweeping in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the sweep in progress, if any."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def sweep_once(self) -> Sweep:
        """One sweep now (what the thread does each period)."""
        self.sweeps += 1
        engine = self._engine()
        done = sweep(engine)
        if self._expire is not None:
            self._expire(engine)
        return done

    def _run(self) -> None:
        engine: Engine | None = None
        while not self._stop.wait(self.every):
            try:
                engine = engine or self._engine()
                sweep(engine)
                if self._expire is not None:
                    self._expire(engine)
                self.sweeps += 1
            except Exception:  # a sweep that fails is logged; the next one tries again
                log.exception("local sweep failed")
