"""How runs are listed: the index keys of a run, the shards, the plan of a listing, tokens.

Every run's ``META`` item carries the keys of four indexes, all sorted by the run's last
update (``lsk`` = fixed-width ``updated_at`` + ``#`` + run id, newest first when read
backwards):

==================  ======================================  ==================================
index               partition                                sort key
==================  ======================================  ==================================
``runs-by-owner``   ``lpk`` = ``O#<owner>#<agent>#<shard>``  ``lsk``
``runs-by-status``  ``lpk``                                  ``ssk`` = ``<status>#`` + ``lsk``
``runs-by-context`` ``cpk`` = ``C#<owner>#<agent>#<ctx>#<s>`` ``lsk``
``runs-all``        ``apk`` = ``ALL#<shard>``                ``lsk``
==================  ======================================  ==================================

A run's shard is a hash of its id modulo the shard count (``PFLAMBDA_LIST_SHARDS``,
default :data:`~pflambda.limits.LIST_SHARDS`), chosen once when the run is created, so one
busy owner's writes spread over that many partitions of each index, and a listing merges
that many Queries in update-time order (on DynamoDB: as many as the most any writer of
the table used, see :mod:`pflambda.stores._listing_shards`). A page token is the ``lsk``
of the last run returned: one position in one global order, valid whatever index serves
the next page.

The plan (which index, which partitions, what is left to a filter) is pure and shared by
the stores: the in-memory store answers with the same order, the same tokens, the same
errors as DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final

from pflambda.errors import ConfigError
from pflambda.limits import LIST_SHARDS, MAX_LIST_SHARDS
from pflambda.stores.base import RunStatus

__all__ = [
    "INDEXES",
    "INDEX_ATTRS",
    "PROJECTED",
    "Plan",
    "Scope",
    "check_shards",
    "decode_token",
    "encode_token",
    "index_keys",
    "plan",
    "shard_of",
    "time_key",
]

OWNER_INDEX: Final = "runs-by-owner"
STATUS_INDEX: Final = "runs-by-status"
CONTEXT_INDEX: Final = "runs-by-context"
ALL_INDEX: Final = "runs-all"

INDEXES: Final = (
    (OWNER_INDEX, "lpk", "lsk"),
    (STATUS_INDEX, "lpk", "ssk"),
    (CONTEXT_INDEX, "cpk", "lsk"),
    (ALL_INDEX, "apk", "lsk"),
)
"""``(name, hash key, range key)`` of each listing index."""

INDEX_ATTRS: Final = ("lpk", "lsk", "ssk", "cpk", "apk")
"""The attributes that hold index keys (derived: never set by hand)."""

PROJECTED: Final = (
    "run_id",
    "flow",
    "fingerprint",
    "status",
    "created_at",
    "updated_at",
    "owner",
    "agent",
    "context_id",
    "cancel_requested",
    "error",
    "prompt",
    "prompt_ref",
    "input_key",
    "ttl",
    "summary",
    "lease_owner",
    "lease_until",
)
"""What the indexes carry besides keys: a run record without ``attrs`` (its bulk)."""

_TIME_KEY = re.compile(r"^\d{13}\.\d{6}#.+$")


def _part(value: str | None) -> str:
    """A key component: ``#`` and ``%`` escaped, so no component can forge another."""
    return (value or "").replace("%", "%25").replace("#", "%23")


def check_shards(shards: object, what: str = "listing shards") -> int:
    """``shards`` if it is a whole number in 1..:data:`~pflambda.limits.MAX_LIST_SHARDS`,
    else :class:`ConfigError` saying what is allowed."""
    if isinstance(shards, bool) or not isinstance(shards, int):
        raise ConfigError(f"{what} must be a whole number, got {shards!r}")
    if not 1 <= shards <= MAX_LIST_SHARDS:
        raise ConfigError(
            f"{what} must be between 1 and {MAX_LIST_SHARDS} (index partitions per owner and "
            f"agent; one Query each per listing), got {shards}"
        )
    return shards


def shard_of(run_id: str, shards: int = LIST_SHARDS) -> int:
    """The run's shard: a stable hash of its id (the same in every process)."""
    digest = hashlib.blake2b(run_id.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % shards


def time_key(updated_at: float, run_id: str) -> str:
    """``lsk``: the update time as a fixed-width string, then the id; sorts like time."""
    return f"{max(updated_at, 0.0):020.6f}#{run_id}"


def owner_pk(owner: str | None, agent: str | None, shard: int) -> str:
    return f"O#{_part(owner)}#{_part(agent)}#{shard}"


def context_pk(owner: str | None, agent: str | None, context_id: str, shard: int) -> str:
    return f"C#{_part(owner)}#{_part(agent)}#{_part(context_id)}#{shard}"


def all_pk(shard: int) -> str:
    return f"ALL#{shard}"


def status_key(status: RunStatus | str, lsk: str) -> str:
    return f"{RunStatus(status).value}#{lsk}"


def index_keys(
    *,
    run_id: str,
    owner: str | None,
    agent: str | None,
    context_id: str | None,
    status: RunStatus | str,
    updated_at: float,
    shards: int = LIST_SHARDS,
) -> dict[str, str]:
    """Every index key of a run (``cpk`` only when it has a context)."""
    shard = shard_of(run_id, shards)
    lsk = time_key(updated_at, run_id)
    keys = {
        "lpk": owner_pk(owner, agent, shard),
        "lsk": lsk,
        "ssk": status_key(status, lsk),
        "apk": all_pk(shard),
    }
    if context_id is not None:
        keys["cpk"] = context_pk(owner, agent, context_id, shard)
    return keys


@dataclass(frozen=True)
class Scope:
    """What a listing asks for; ``None`` means any."""

    owner: str | None = None
    agent: str | None = None
    context_id: str | None = None
    statuses: frozenset[RunStatus] | None = None

    @classmethod
    def of(
        cls,
        owner: str | None,
        agent: str | None,
        context_id: str | None,
        status: RunStatus | str | Collection[RunStatus | str] | None,
    ) -> Scope:
        """Validated filters (a status may be one or a collection)."""
        statuses: frozenset[RunStatus] | None = None
        if status is not None:
            many = [status] if isinstance(status, str) else list(status)
            try:
                statuses = frozenset(RunStatus(s) for s in many)
            except ValueError as err:
                raise ConfigError(f"list_runs: unknown status in {status!r}") from err
        return cls(owner, agent, context_id, statuses)

    def matches(self, item: dict[str, Any]) -> bool:
        """Whether a ``META`` item is in scope (the filter the plan leaves over)."""
        checks = (("owner", self.owner), ("agent", self.agent), ("context_id", self.context_id))
        for attr, wanted in checks:
            if wanted is not None and item.get(attr, {}).get("S") != wanted:
                return False
        return self.statuses is None or RunStatus(item["status"]["S"]) in self.statuses


@dataclass(frozen=True)
class Plan:
    """One listing as Queries: an index, its partitions, each with an optional ``ssk``
    prefix (a status), and what a filter must still check."""

    index: str
    partition_attr: str
    sort_attr: str
    partitions: list[tuple[str, str]]
    """``(partition value, sort-key prefix)``: one Query each, merged by ``lsk``."""
    filters: dict[str, Any] = field(default_factory=dict)
    """Attribute -> wanted value (a frozenset for ``status``): the FilterExpression."""


def plan(scope: Scope, shards: int = LIST_SHARDS) -> Plan:
    """Which index serves ``scope``: the owner's partitions when owner and agent are known
    (by context, or by status through the key), else the sharded ``ALL`` partitions."""
    rng = range(shards)
    if scope.owner is not None and scope.agent is not None:
        owner, agent = scope.owner, scope.agent
        if scope.context_id is not None:
            parts = [(context_pk(owner, agent, scope.context_id, s), "") for s in rng]
            status = {"status": scope.statuses} if scope.statuses is not None else {}
            return Plan(CONTEXT_INDEX, "cpk", "lsk", parts, status)
        if scope.statuses is not None:
            parts = [
                (owner_pk(owner, agent, s), f"{status.value}#")
                for status in sorted(scope.statuses)
                for s in rng
            ]
            return Plan(STATUS_INDEX, "lpk", "ssk", parts)
        return Plan(OWNER_INDEX, "lpk", "lsk", [(owner_pk(owner, agent, s), "") for s in rng])
    filters: dict[str, Any] = {
        attr: wanted
        for attr, wanted in (
            ("owner", scope.owner),
            ("agent", scope.agent),
            ("context_id", scope.context_id),
            ("status", scope.statuses),
        )
        if wanted is not None
    }
    return Plan(ALL_INDEX, "apk", "lsk", [(all_pk(s), "") for s in rng], filters)


def encode_token(lsk: str) -> str:
    """The page token after the run whose ``lsk`` this is."""
    return base64.urlsafe_b64encode(json.dumps({"after": lsk}).encode()).decode()


def decode_token(token: str | None) -> str | None:
    """The ``lsk`` a token points after; :class:`ConfigError` for anything else."""
    if token is None:
        return None
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise ConfigError(f"invalid list_runs next_token {token!r}") from err
    if not isinstance(after, str) or not _TIME_KEY.match(after):
        raise ConfigError(f"invalid list_runs next_token {token!r}")
    return after
