"""The sweeper: continues running runs whose lease lapsed -- whatever slipped through.

A driver that dies leaves its lease to lapse (on Lambda a grace after its own
deadline); its queue message, if any, normally brings the run back first. Anything
else -- a lost or deleted message, an API invocation killed mid-run, a bug -- is
found here, through the store's sparse lease index (no Scan; the cost does not
depend on how many runs are healthy), on a schedule (``template.yaml``'s
``SweeperFunction``, every minute; ``pflambda local`` runs the same sweep).

With a queue, each stalled run gets the ``queued`` lease (one conditional write, so
two sweeps never both take it) and a continuation message; without one (the CLI,
tests) the sweep drives it itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pflambda import limits
from pflambda.engine.lease import QUEUED, new_driver
from pflambda.engine.run import continuation
from pflambda.errors import InvalidRunState, PflambdaError, RunNotFound
from pflambda.stores.base import LeaseHeld

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = ["Sweep", "sweep"]

log = logging.getLogger("pflambda.sweeper")


@dataclass
class Sweep:
    """What one sweep did."""

    found: int = 0
    """Runs the lease index listed as lapsed."""
    continued: list[str] = field(default_factory=list)
    """Runs handed to the queue (or driven) by this sweep."""
    failed: list[str] = field(default_factory=list)
    """Runs this sweep could not hand over (a retryable error; the next sweep tries)."""


def sweep(engine: Engine, *, limit: int = 100) -> Sweep:
    """Continue up to ``limit`` running runs whose lease lapsed; see the module doc."""
    now = engine.clock.now()
    stalled = engine.store.list_stalled(now, limit=limit)
    done = Sweep(found=len(stalled))
    for record in stalled:
        run_id = record.run_id
        try:
            if engine.queue is None:
                engine.resume(run_id, driver=new_driver("sweep"), running_only=True)
            else:
                engine.store.acquire_lease(
                    run_id, QUEUED, now + limits.QUEUED_LEASE_SECONDS, now=now
                )
                engine.queue.send([continuation(run_id, -1)])
        except (LeaseHeld, InvalidRunState, RunNotFound):
            continue  # the index was behind: someone took it, or it finished
        except PflambdaError:
            log.warning("run %s: could not be continued by the sweep", run_id, exc_info=True)
            done.failed.append(run_id)
            continue
        log.info("run %s: lease lapsed at %s; continued", run_id, record.lease_until)
        done.continued.append(run_id)
    return done
