"""moto's TransactWriteItems, rolled back item by item instead of table by table.

moto deep-copies every table a transaction names before applying it, and puts the copy
back if the transaction is refused. That costs time in proportion to the table, paid by
every transaction -- two per A2A echo task -- and one after another in the emulator
(:mod:`pflambda.local.moto_server` admits one request at a time). It also undoes, on
refusal, any write another request made meanwhile.

:func:`install` makes the emulator's moto skip the table copies and instead remember the
items the transaction names (and the length of each table's stream), restoring exactly
those when the transaction is refused: the same outcome as moto's for the transaction's
own items, in time proportional to the transaction. The emulator installs it when it
starts; moto used in-process by the same process (``mock_aws`` in tests) then gets it too,
with the same outcomes.
"""

from __future__ import annotations

import copy
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["install", "installed"]

_lock = threading.Lock()
_state = {"installed": False}
_skip = threading.local()


def installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return _state["installed"]


def install() -> None:
    """Patch moto's DynamoDB backend (once per process; later calls do nothing)."""
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    with _lock:
        if _state["installed"]:
            return
        original = models.DynamoDBBackend.transact_write_items

        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            if isinstance(value, Table) and getattr(_skip, "on", False):
                return value  # the rollback below restores the items instead
            return copy.deepcopy(value, memo)

        models.copy = types.SimpleNamespace(deepcopy=deepcopy)  # type: ignore[assignment,attr-defined]

        def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
            saved = _touched(self, transact_items)
            try:
                with _skipping():
                    original(self, transact_items)
            except BaseException:
                _restore(saved)
                raise

        models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        _state["installed"] = True


@contextmanager
def _skipping() -> Iterator[None]:
    _skip.on = True
    try:
        yield
    finally:
        _skip.on = False


Saved = list[tuple[Any, Any, Any, Any]]
"""(table, hash value, range value, the item as it was or None) per named item."""


def _touched(backend: Any, transact_items: list[dict[str, Any]]) -> tuple[Saved, dict[int, Any]]:
    """The items a transaction names, copied as they are now, and each table's stream
    length. Items that cannot be found out (a missing table, a bad key) are skipped:
    moto refuses the transaction before it writes anything for them."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    items: Saved = []
    streams: dict[int, Any] = {}
    for entry in transact_items:
        try:
            ((_, op),) = entry.items()
            table = backend.tables[op["TableName"]]
            key = op["Item"] if "Item" in op else op["Key"]
            hash_value = DynamoType(key[table.hash_key_attr])
            range_attr = table.range_key_attr
            range_value = DynamoType(key[range_attr]) if range_attr is not None else None
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        current = table.get_item(hash_value, range_value)
        items.append((table, hash_value, range_value, copy.deepcopy(current)))
        shard = table.stream_shard
        if shard is not None and id(shard) not in streams:
            streams[id(shard)] = (shard, len(shard.items))
    return items, streams


def _restore(saved: tuple[Saved, dict[int, Any]]) -> None:
    """Put back the items a refused transaction named, and drop its stream records."""
    items, streams = saved
    for table, hash_value, range_value, before in reversed(items):
        if range_value is not None:
            if before is None:
                table.items[hash_value].pop(range_value, None)
                if not table.items[hash_value]:
                    del table.items[hash_value]
            else:
                table.items[hash_value][range_value] = before
        elif before is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = before
    for shard, length in streams.values():
        del shard.items[length:]
