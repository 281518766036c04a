"""Push notification configs on a task's run record, bounded so the record never
outgrows a DynamoDB item.

The configs live in the record's ``attrs["a2a"]["push"]`` (id -> stored form), written
with the record. DynamoDB refuses a whole write that would make an item larger than
400 KB (ValidationException, nothing applied), so every change is checked before it is
sent: at most :data:`~pflambda.limits.PUSH_CONFIGS_PER_TASK` configs of at most
:data:`~pflambda.limits.PUSH_CONFIG_BYTES` each, and the whole record within the item
limit. A refusal is the A2A invalid-params error and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pflambda import limits
from pflambda.a2a.errors import InvalidParams
from pflambda.a2a.wire import PushConfig
from pflambda.stores._item import check_size, run_item
from pflambda.stores.base import ItemTooLarge, RunRecord

__all__ = ["DEFAULT_ID", "fits", "with_push", "with_push_attrs"]

DEFAULT_ID = "default"
"""The id of a config given without one (as with a send's config)."""


def with_push(a2a: Mapping[str, Any], config: PushConfig) -> dict[str, Any]:
    """``a2a`` (the record's ``attrs["a2a"]``) with ``config`` added, or replacing the
    one with its id; :class:`InvalidParams` if it is too large or one too many."""
    config = replace(config, id=config.id or DEFAULT_ID)
    stored = config.to_json()
    size = len(json.dumps(stored, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limits.PUSH_CONFIG_BYTES:
        raise InvalidParams(
            f"the push notification config is {size} bytes; at most "
            f"{limits.PUSH_CONFIG_BYTES} are kept (URL, token and credentials together)"
        )
    push = dict(a2a.get("push", {}))
    assert config.id is not None
    if config.id not in push and len(push) >= limits.PUSH_CONFIGS_PER_TASK:
        raise InvalidParams(
            f"the task already has {len(push)} push notification configs, the most it "
            "keeps: delete one first, or replace one by giving its id"
        )
    push[config.id] = stored
    return {**a2a, "push": push}


def with_push_attrs(record: RunRecord, config: PushConfig) -> dict[str, Any]:
    """The record's ``attrs`` with ``config`` stored (see :func:`with_push`), checked to
    keep the whole record within DynamoDB's item limit."""
    attrs = {**record.attrs, "a2a": with_push(record.attrs.get("a2a", {}), config)}
    fits(replace(record, attrs=attrs))
    return attrs


def fits(record: RunRecord) -> None:
    """:class:`InvalidParams` if ``record`` would be larger than a DynamoDB item."""
    try:
        check_size(run_item(record), f"task {record.run_id}")
    except ItemTooLarge:
        raise InvalidParams(
            f"task {record.run_id} cannot store another push notification config: its "
            "record would pass DynamoDB's 400 KB item limit; delete a config first"
        ) from None
