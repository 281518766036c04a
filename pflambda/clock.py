"""Time, behind an interface: retries, TTLs, deadlines and visibility timeouts read a Clock.

Tests pass a :class:`FakeClock` and move time by hand, so nothing in the suite sleeps
to test a timeout.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """Wall time (epoch seconds), monotonic time, and sleeping."""

    def now(self) -> float:
        """Seconds since the epoch (what gets stored in records)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (what durations are measured on)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to (``advance``) or when something sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        """The fake epoch time."""
        return self._now

    def monotonic(self) -> float:
        """The fake monotonic time."""
        return self._mono

    def sleep(self, seconds: float) -> None:
        """Record the sleep and move time forward by it, instantly."""
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        self._now += seconds
        self._mono += seconds
