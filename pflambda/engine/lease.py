"""Leases: who drives a run now, and until when -- the durable trigger behind a running run.

An invocation takes the lease once, folded into the write that admits it (the start,
the reply, the continuation's take-over), never once per step. On Lambda the lease
ends a grace after the invocation's own deadline, so it never needs renewing while
the invocation lives; without a deadline (the CLI, tests) it lasts
:data:`~pflambda.limits.LEASE_SECONDS` and is renewed when half of it is gone.

A lease whose holder died lapses, and the sweeper (:mod:`pflambda.engine.sweeper`)
finds the run through the store's lease index. A run handed to the queue (a
continuation, a fan-out) carries the ``queued`` lease: any continuation may take it
over, and if the message is lost the sweeper re-sends it once that lease lapses.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from pflambda import limits
from pflambda.engine.run import Deadline, Live, continuation
from pflambda.stores.base import LeaseHeld

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = [
    "QUEUED",
    "hand_off",
    "hand_off_quietly",
    "lapse",
    "new_driver",
    "queued_fields",
    "renew",
    "until",
]

log = logging.getLogger("pflambda.engine")

QUEUED = "queued"
"""The holder of a run that waits in the queue: any continuation may take it over."""


def new_driver(prefix: str = "inv") -> str:
    """A fresh driver id for one invocation."""
    return f"{prefix}:{uuid.uuid4().hex[:16]}"


def until(engine: Engine, context: Deadline | None) -> float:
    """When a lease taken now by an invocation with ``context`` should end."""
    now = engine.clock.now()
    if context is None:
        return now + engine.lease_seconds
    return now + context.get_remaining_time_in_millis() / 1000 + engine.lease_grace


def renew(engine: Engine, live: Live) -> None:
    """Without a deadline: extend the lease once less than half of it is left (one write)."""
    if live.context is not None or live.driver is None:
        return
    now = engine.clock.now()
    ends = live.record.lease_until
    if ends is not None and ends - now >= engine.lease_seconds / 2:
        return
    live.record = engine.store.acquire_lease(
        live.record.run_id, live.driver, now + engine.lease_seconds, now=now
    )


def lapse(engine: Engine, live: Live) -> None:
    """Stopping without handing over: let the lease end now, so whoever comes next (a
    resume, the sweeper) may take the run at once."""
    if live.driver is None:
        return
    now = engine.clock.now()
    try:
        live.record = engine.store.acquire_lease(live.record.run_id, live.driver, now, now=now)
    except LeaseHeld:
        log.info("run %s: lease already taken over", live.record.run_id)


def hand_off(engine: Engine, live: Live, delay_seconds: int = 0) -> bool:
    """Give the run to the queue: the ``queued`` lease, then a continuation message.

    False (and the lease left as it is) when there is no queue. The order matters: a
    message lost after the lease write is found by the sweeper when the lease lapses.
    """
    if engine.queue is None:
        lapse(engine, live)
        return False
    now = engine.clock.now()
    takeover = {live.driver} if live.driver is not None else set()
    live.record = engine.store.acquire_lease(
        live.record.run_id,
        QUEUED,
        now + delay_seconds + limits.QUEUED_LEASE_SECONDS,
        now=now,
        takeover=takeover,
    )
    live.driver = QUEUED
    engine.queue.send([continuation(live.record.run_id, live.seq)], delay_seconds=delay_seconds)
    return True


def queued_fields(engine: Engine) -> dict[str, Any]:
    """The lease fields of a run handed to the queue (folded into the write that hands it)."""
    return {
        "lease_owner": QUEUED,
        "lease_until": engine.clock.now() + limits.QUEUED_LEASE_SECONDS,
    }


def hand_off_quietly(engine: Engine, live: Live) -> None:
    """A fan-in that is not ready: the run waits for its workers, in the queue's hands
    (their last chunk sends the continuation). No message is sent."""
    if live.driver is None or live.driver == QUEUED:
        return
    now = engine.clock.now()
    try:
        live.record = engine.store.acquire_lease(
            live.record.run_id,
            QUEUED,
            now + limits.QUEUED_LEASE_SECONDS,
            now=now,
            takeover={live.driver},
        )
        live.driver = QUEUED
    except LeaseHeld:
        log.info("run %s: lease already taken over", live.record.run_id)
