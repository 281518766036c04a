"""Store records as DynamoDB items: the one layout, and the size rule, both stores share.

The in-memory store keeps exactly the items the DynamoDB store writes, so both refuse
the same oversize records and both hand back fresh copies on every read. Items are in
DynamoDB's low-level attribute-value form (``{"S": ...}``, ``{"N": ...}``, ``{"B": ...}``,
``{"BOOL": ...}``), built here without boto3.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Collection, Mapping
from typing import Any, Final

from pflambda.errors import ConfigError, InvalidRunState
from pflambda.limits import DYNAMODB_MAX_ITEM_BYTES, LIST_SHARDS
from pflambda.stores._listing import PROJECTED, index_keys, status_key, time_key
from pflambda.stores.base import (
    SUMMARY_LIMIT,
    UPDATABLE,
    Checkpoint,
    CheckpointInfo,
    ItemTooLarge,
    RunRecord,
    RunStatus,
)

Item = dict[str, Any]
"""A DynamoDB item: attribute name -> attribute value (``{"S": "..."}`` and so on)."""

ITEM_LIMIT: Final = DYNAMODB_MAX_ITEM_BYTES - 9_600
"""What the stores accept (400,000 bytes as :func:`item_size` counts them).

DynamoDB's limit is 409,600 bytes, but its count of numbers is only documented as
approximate, and moto refuses items above 405,000 bytes by its own count; holding
to 400,000 keeps memory, moto and DynamoDB in agreement.
"""

META: Final = "META"
CKPT_PREFIX: Final = "CKPT#"
LEASE_PREFIX: Final = "LEASE#"
LEASE_SHARDS: Final = 4
"""Partitions of the sparse lease index (``gsi3``): the sweeper reads each one."""
MARKER: Final = "marker"
"""Attribute of a step item that only claims the step (a cancel), holding no checkpoint."""

# RunRecord field -> (attribute name, kind). Kinds: str, float, int, bool, json, status.
_RUN_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "run_id": ("run_id", "str"),
    "flow": ("flow", "str"),
    "fingerprint": ("fingerprint", "str"),
    "status": ("status", "status"),
    "created_at": ("created_at", "float"),
    "updated_at": ("updated_at", "float"),
    "owner": ("owner", "str"),
    "context_id": ("context_id", "str"),
    "cancel_requested": ("cancel_requested", "bool"),
    "error": ("error", "str"),
    "prompt": ("prompt", "str"),
    "input_key": ("input_key", "str"),
    "expires_at": ("ttl", "int"),
    "attrs": ("attrs", "json"),
    "prompt_ref": ("prompt_ref", "str"),
    "lease_owner": ("lease_owner", "str"),
    "lease_until": ("lease_until", "float"),
    "agent": ("agent", "str"),
    "summary": ("summary", "json"),
    "pinned": ("pinned", "str"),
}
_NULLABLE: Final = frozenset(
    {
        "owner",
        "context_id",
        "error",
        "prompt",
        "input_key",
        "expires_at",
        "lease_owner",
        "lease_until",
        "prompt_ref",
        "agent",
        "pinned",
    }
)


def run_pk(run_id: str) -> str:
    """The partition key of a run and all its checkpoints."""
    return f"RUN#{run_id}"


def checkpoint_sk(seq: int) -> str:
    """The sort key of checkpoint ``seq``: zero-padded, so keys sort by step."""
    return f"{CKPT_PREFIX}{seq:012d}"


def lease_pk(run_id: str) -> str:
    """``gsi3pk`` of a leased run: its shard of the lease index."""
    return f"{LEASE_PREFIX}{zlib.crc32(run_id.encode()) % LEASE_SHARDS}"


def lease_sk(until: float, run_id: str) -> str:
    """``gsi3sk``: the lease's end as a fixed-width string, then the id; sorts like time."""
    return f"{max(until, 0.0):020.6f}#{run_id}"


def lease_index(run_id: str, until: float | None) -> dict[str, dict[str, Any] | None]:
    """The lease index keys for a lease ending at ``until`` (``None``: out of the index)."""
    if until is None:
        return {"gsi3pk": None, "gsi3sk": None}
    return {"gsi3pk": {"S": lease_pk(run_id)}, "gsi3sk": {"S": lease_sk(until, run_id)}}


def run_key(run_id: str) -> Item:
    """The primary key of a run's ``META`` item."""
    return {"pk": {"S": run_pk(run_id)}, "sk": {"S": META}}


def _encode(kind: str, value: Any) -> dict[str, Any]:
    if kind == "str":
        return {"S": str(value)}
    if kind == "status":
        return {"S": RunStatus(value).value}
    if kind == "bool":
        return {"BOOL": bool(value)}
    if kind == "int":
        return {"N": str(int(value))}
    if kind == "float":
        number = float(value)
        if not math.isfinite(number):
            raise ConfigError(f"cannot store the number {number!r}")
        return {"N": repr(number)}
    return {"S": json.dumps(dict(value), separators=(",", ":"))}


def _decode(kind: str, value: Mapping[str, Any]) -> Any:
    if kind == "status":
        return RunStatus(value["S"])
    if kind == "bool":
        return bool(value["BOOL"])
    if kind == "int":
        return int(value["N"])
    if kind == "float":
        return float(value["N"])
    if kind == "json":
        return json.loads(value["S"])
    return str(value["S"])


def run_item(record: RunRecord, shards: int = LIST_SHARDS) -> Item:
    """The ``META`` item of a run, index keys included (see :mod:`._listing`)."""
    check_summary(record.summary)
    item = run_key(record.run_id)
    for name, (attr, kind) in _RUN_FIELDS.items():
        value = getattr(record, name)
        if value is None or (name == "summary" and not value):
            continue
        item[attr] = _encode(kind, value)
    if record.lease_until is not None and record.status == RunStatus.RUNNING:
        item |= {k: v for k, v in lease_index(record.run_id, record.lease_until).items() if v}
    return item | index_attrs(item, shards)


def index_attrs(item: Mapping[str, Any], shards: int = LIST_SHARDS) -> Item:
    """The index keys of a ``META`` item, from the fields it holds."""
    keys = index_keys(
        run_id=item["run_id"]["S"],
        owner=item["owner"]["S"] if "owner" in item else None,
        agent=item["agent"]["S"] if "agent" in item else None,
        context_id=item["context_id"]["S"] if "context_id" in item else None,
        status=item["status"]["S"],
        updated_at=float(item["updated_at"]["N"]),
        shards=shards,
    )
    return {name: {"S": value} for name, value in keys.items()}


def check_summary(summary: Mapping[str, Any]) -> None:
    """Refuse a ``summary`` larger than :data:`SUMMARY_LIMIT` as JSON."""
    size = len(json.dumps(dict(summary), separators=(",", ":")).encode("utf-8"))
    if size > SUMMARY_LIMIT:
        raise ItemTooLarge(f"a run summary is {size} bytes as JSON; the limit is {SUMMARY_LIMIT}")


def run_from_item(item: Mapping[str, Any]) -> RunRecord:
    """The run a ``META`` item holds."""
    fields = {
        name: _decode(kind, item[attr])
        for name, (attr, kind) in _RUN_FIELDS.items()
        if attr in item
    }
    return RunRecord(**fields)


def listed_from_item(item: Mapping[str, Any]) -> RunRecord:
    """The run as the listing indexes hold it: every field but ``attrs``."""
    return run_from_item({attr: value for attr, value in item.items() if attr in PROJECTED})


def update_values(run_id: str, changes: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """``update_run``'s changes as attribute -> new value (``None``: remove it).

    The lease index follows the lease, and a status other than ``running`` drops the
    lease (a finished, paused or failed run has nobody driving it)."""
    unknown = sorted(set(changes) - UPDATABLE)
    if unknown:
        raise ConfigError(f"update_run cannot change {', '.join(unknown)}")
    changes = dict(changes)
    status = changes.get("status")
    if status is not None and RunStatus(status) != RunStatus.RUNNING:
        changes |= {"lease_owner": None, "lease_until": None}
    values: dict[str, dict[str, Any] | None] = {}
    if "lease_until" in changes:
        values |= lease_index(run_id, changes["lease_until"])
    for name, value in changes.items():
        attr, kind = _RUN_FIELDS[name]
        if value is None and name not in _NULLABLE:
            raise ConfigError(f"update_run cannot set {name} to None")
        if name == "summary":
            check_summary(value)
        values[attr] = None if value is None else _encode(kind, value)
    return values


def moved_keys(run_id: str, status: str, updated_at: float) -> dict[str, dict[str, Any]]:
    """The sort keys an update of ``status``/``updated_at`` rewrites (the partitions stay)."""
    lsk = time_key(updated_at, run_id)
    return {"lsk": {"S": lsk}, "ssk": {"S": status_key(status, lsk)}}


def refused(run_id: str, status: RunStatus | str, expect: Collection[RunStatus]) -> InvalidRunState:
    """The error for an ``update_run`` whose ``expect_status`` did not hold."""
    wanted = " or ".join(sorted(RunStatus(s).value for s in expect)) or "nothing"
    return InvalidRunState(f"run {run_id} is {RunStatus(status).value}, expected {wanted}")


def checkpoint_item(checkpoint: Checkpoint) -> Item:
    """A checkpoint's item; ``size`` (the body's length) lets lists skip the body."""
    item: Item = {
        "pk": {"S": run_pk(checkpoint.run_id)},
        "sk": {"S": checkpoint_sk(checkpoint.seq)},
        "seq": {"N": str(checkpoint.seq)},
        "body": {"B": bytes(checkpoint.body)},
        "snapshot": {"BOOL": checkpoint.snapshot},
        "size": {"N": str(len(checkpoint.body))},
        "created_at": _encode("float", checkpoint.created_at),
    }
    if checkpoint.node_id is not None:
        item["node_id"] = {"S": checkpoint.node_id}
    if checkpoint.action is not None:
        item["action"] = {"S": checkpoint.action}
    if checkpoint.expires_at is not None:
        item["ttl"] = {"N": str(checkpoint.expires_at)}
    if checkpoint.duration_ms is not None:
        item["ms"] = _encode("float", round(checkpoint.duration_ms, 3))
    if checkpoint.retries:
        item["retries"] = {"N": str(int(checkpoint.retries))}
    if checkpoint.position is not None:
        item["position"] = {"S": checkpoint.position}
    if checkpoint.base is not None:
        item["base"] = {"N": str(checkpoint.base)}
    return item


def checkpoint_from_item(run_id: str, item: Mapping[str, Any]) -> Checkpoint:
    """The checkpoint an item holds."""
    return Checkpoint(
        run_id=run_id,
        seq=int(item["seq"]["N"]),
        body=bytes(item["body"]["B"]),
        snapshot=bool(item["snapshot"]["BOOL"]),
        created_at=float(item["created_at"]["N"]),
        node_id=item["node_id"]["S"] if "node_id" in item else None,
        action=item["action"]["S"] if "action" in item else None,
        expires_at=int(item["ttl"]["N"]) if "ttl" in item else None,
        duration_ms=float(item["ms"]["N"]) if "ms" in item else None,
        retries=int(item["retries"]["N"]) if "retries" in item else 0,
        position=item["position"]["S"] if "position" in item else None,
        base=int(item["base"]["N"]) if "base" in item else None,
    )


def marker_item(run_id: str, seq: int, kind: str, expires_at: int | None) -> Item:
    """A step item that holds no checkpoint, only claims step ``seq`` (e.g. a cancel)."""
    item: Item = {
        "pk": {"S": run_pk(run_id)},
        "sk": {"S": checkpoint_sk(seq)},
        "seq": {"N": str(seq)},
        MARKER: {"S": kind},
    }
    if expires_at is not None:
        item["ttl"] = {"N": str(expires_at)}
    return item


def is_marker(item: Mapping[str, Any]) -> bool:
    """Whether a step item is a marker (see :func:`marker_item`), not a checkpoint."""
    return MARKER in item


def info_from_item(item: Mapping[str, Any]) -> CheckpointInfo:
    """A checkpoint's timeline entry, from an item with or without its body."""
    return CheckpointInfo(
        seq=int(item["seq"]["N"]),
        node_id=item["node_id"]["S"] if "node_id" in item else None,
        action=item["action"]["S"] if "action" in item else None,
        snapshot=bool(item["snapshot"]["BOOL"]),
        size=int(item["size"]["N"]),
        created_at=float(item["created_at"]["N"]),
        duration_ms=float(item["ms"]["N"]) if "ms" in item else None,
        retries=int(item["retries"]["N"]) if "retries" in item else 0,
        position=item["position"]["S"] if "position" in item else None,
    )


def _number_size(text: str) -> int:
    mantissa = text.lstrip("+-").lower().split("e")[0].replace(".", "")
    digits = len(mantissa.strip("0")) or 1
    return (digits + 1) // 2 + 1


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "B":
        return len(data)
    if kind == "N":
        return _number_size(data)
    if kind in ("BOOL", "NULL"):
        return 1
    raise TypeError(f"no size rule for DynamoDB type {kind}")


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values, in bytes.

    Strings count their UTF-8 bytes, binaries their length, numbers one byte per two
    significant digits plus one, booleans one.
    """
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def check_size(item: Mapping[str, Any], what: str) -> None:
    """Raise :class:`ItemTooLarge` naming ``what`` if ``item`` is over :data:`ITEM_LIMIT`."""
    size = item_size(item)
    if size > ITEM_LIMIT:
        raise ItemTooLarge(f"{what} is {size} bytes as a DynamoDB item; the limit is {ITEM_LIMIT}")
