"""Backfill: give listing keys to runs written before the listing indexes existed.

A run's ``META`` item gets its listing keys (``lpk``, ``lsk``, ``ssk``, ``apk``, ``cpk``;
see :mod:`pflambda.stores._listing`) when it is created; runs created by older versions
have none, so no listing index holds them and ``ListTasks``/the console never show them
(later status writes only move ``lsk``/``ssk``, so they stay unlisted for life). Older
A2A runs also kept their agent only in ``attrs["a2a"]["agent"]``, not in the ``agent``
field the listing partitions by. :func:`keyed` says what such an item should hold; the
stores' ``backfill_listing`` writes it (DynamoDB: :mod:`._listing_dynamo_backfill`;
SQLite: in one transaction per page). The in-memory store has no older runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pflambda.stores._item import Item, index_attrs

__all__ = ["Backfill", "Progress", "keyed"]


@dataclass
class Backfill:
    """What a backfill did so far: pages read, runs without listing keys it found, runs
    it gave keys, runs another writer keyed first (nothing to do), runs deleted meanwhile."""

    pages: int = 0
    found: int = 0
    added: int = 0
    raced: int = 0
    gone: int = 0

    def line(self) -> str:
        """One progress line."""
        return (
            f"page {self.pages}: {self.found} runs without listing keys found, {self.added} "
            f"keyed, {self.raced} keyed meanwhile by another writer, {self.gone} deleted meanwhile"
        )


Progress = Callable[[Backfill], None]
"""Called after every page (the CLI prints :meth:`Backfill.line`)."""


def agent_of(item: Item) -> str | None:
    """The agent that started the run: its ``agent`` field, else older A2A runs' attrs."""
    if "agent" in item:
        return str(item["agent"]["S"])
    try:
        a2a = json.loads(item["attrs"]["S"]).get("a2a") if "attrs" in item else None
    except (ValueError, AttributeError):
        return None
    agent = a2a.get("agent") if isinstance(a2a, dict) else None
    return agent if isinstance(agent, str) else None


def keyed(item: Item, shards: int) -> dict[str, Any]:
    """What a ``META`` item without listing keys must gain: its ``agent`` (when only its
    attrs name it) and every listing key, computed from its current fields."""
    gain: dict[str, Any] = {}
    agent = agent_of(item)
    if agent is not None and "agent" not in item:
        gain["agent"] = {"S": agent}
    return gain | index_attrs(item | gain, shards)
