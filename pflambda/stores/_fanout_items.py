"""Fan-out records as DynamoDB items, and the rules of recording a chunk, for both stores.

A fan-out lives in its run's partition, beside (never among) the checkpoints:

==========================================  ===========================================
sk                                          holds
==========================================  ===========================================
``FAN#<seq:012d>``                          the header (:class:`FanOut`): ``chunks``,
                                            ``items``, ``done``, ``claimed``, ``ttl``
``FAN#<seq:012d>#CHUNK#<chunk:08d>``        one chunk's results (``body``, Binary)
==========================================  ===========================================

No ``FAN#`` key starts with ``CKPT#``, so checkpoint queries never see them. A chunk is
recorded by one transaction: put the chunk item if it is new, and add one to the
header's ``done`` if the header exists and the chunk is in range; :func:`cancelled`
reads what DynamoDB says when that transaction is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pflambda.errors import RetryableError
from pflambda.stores._item import Item, _encode, check_size, run_pk
from pflambda.stores.base import FanOut, FanOutNotFound

FAN_PREFIX: Final = "FAN#"
MAX_CHUNKS: Final = 10**8
"""Chunk numbers have eight digits in their sort key, so a fan-out has at most this many."""

_CONDITION_FAILED: Final = "ConditionalCheckFailed"
_RETRYABLE_REASONS: Final = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
"""Cancellation reasons that say "try again": another transaction held an item, or
the table was throttled."""


def fanout_sk(seq: int) -> str:
    """The sort key of the header of the fan-out started by checkpoint ``seq``."""
    return f"{FAN_PREFIX}{seq:012d}"


def chunk_prefix(seq: int) -> str:
    """What every chunk of fan-out ``seq`` has its sort key begin with."""
    return f"{fanout_sk(seq)}#CHUNK#"


def chunk_sk(seq: int, chunk: int) -> str:
    """The sort key of chunk ``chunk``: zero-padded, so keys sort by chunk."""
    return f"{chunk_prefix(seq)}{chunk:08d}"


def fanout_key(run_id: str, seq: int) -> Item:
    """The primary key of a fan-out header."""
    return {"pk": {"S": run_pk(run_id)}, "sk": {"S": fanout_sk(seq)}}


def fanout_name(run_id: str, seq: int) -> str:
    """How errors name a fan-out."""
    return f"fan-out {seq} of run {run_id}"


def not_found(run_id: str, seq: int) -> FanOutNotFound:
    """The error for a fan-out with no header."""
    return FanOutNotFound(f"no {fanout_name(run_id, seq)}")


def out_of_range(run_id: str, seq: int, chunk: int, chunks: int | None = None) -> ValueError:
    """The error for a chunk number outside ``range(chunks)``."""
    bound = "the header's chunks" if chunks is None else str(chunks)
    return ValueError(
        f"chunk {chunk} of {fanout_name(run_id, seq)} is out of range: 0 <= chunk < {bound}"
    )


def fanout_item(fanout: FanOut) -> Item:
    """A header's item; :class:`ValueError` if ``chunks`` cannot be keyed, oversize refused."""
    if not 0 <= fanout.chunks <= MAX_CHUNKS:
        raise ValueError(f"a fan-out has 0 to {MAX_CHUNKS} chunks, not {fanout.chunks}")
    item: Item = fanout_key(fanout.run_id, fanout.seq) | {
        "run_id": {"S": fanout.run_id},
        "seq": {"N": str(fanout.seq)},
        "node_id": {"S": fanout.node_id},
        "chunks": {"N": str(fanout.chunks)},
        "items": {"N": str(fanout.items)},
        "created_at": _encode("float", fanout.created_at),
        "done": {"N": str(fanout.done)},
        "claimed": {"BOOL": bool(fanout.claimed)},
    }
    if fanout.expires_at is not None:
        item["ttl"] = {"N": str(fanout.expires_at)}
    check_size(item, fanout_name(fanout.run_id, fanout.seq))
    return item


def fanout_from_item(item: Mapping[str, Any]) -> FanOut:
    """The header an item holds."""
    return FanOut(
        run_id=item["run_id"]["S"],
        seq=int(item["seq"]["N"]),
        node_id=item["node_id"]["S"],
        chunks=int(item["chunks"]["N"]),
        items=int(item["items"]["N"]),
        created_at=float(item["created_at"]["N"]),
        done=int(item["done"]["N"]),
        claimed=bool(item["claimed"]["BOOL"]),
        expires_at=int(item["ttl"]["N"]) if "ttl" in item else None,
    )


def chunk_item(
    run_id: str, seq: int, chunk: int, body: bytes, expires_at: int | None = None
) -> Item:
    """A chunk's item; :class:`ValueError` below 0 (the upper bound is the header's),
    :class:`~pflambda.stores.base.ItemTooLarge` over the item limit."""
    if chunk < 0:
        raise out_of_range(run_id, seq, chunk)
    item: Item = {
        "pk": {"S": run_pk(run_id)},
        "sk": {"S": chunk_sk(seq, chunk)},
        "chunk": {"N": str(chunk)},
        "body": {"B": bytes(body)},
    }
    if expires_at is not None:
        item["ttl"] = {"N": str(expires_at)}
    check_size(item, f"chunk {chunk} of {fanout_name(run_id, seq)}")
    return item


def chunk_from_item(item: Mapping[str, Any]) -> tuple[int, bytes]:
    """``(chunk, body)`` from a chunk's item."""
    return int(item["chunk"]["N"]), bytes(item["body"]["B"])


def record_request(table: str, run_id: str, seq: int, chunk: Item) -> dict[str, Any]:
    """The TransactWriteItems arguments that record ``chunk`` (an item of
    :func:`chunk_item`) and count it done: first the put, then the header's update,
    the order the reasons of a refusal come back in (see :func:`cancelled`)."""
    put = {
        "TableName": table,
        "Item": chunk,
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    update = {
        "TableName": table,
        "Key": fanout_key(run_id, seq),
        "UpdateExpression": "ADD #done :one",
        "ConditionExpression": "attribute_exists(pk) AND #chunks > :chunk",
        "ExpressionAttributeNames": {"#done": "done", "#chunks": "chunks"},
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":chunk": chunk["chunk"]},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    return {"TransactItems": [{"Put": put}, {"Update": update}]}


def claim_request(table: str, run_id: str, seq: int) -> dict[str, Any]:
    """The UpdateItem arguments that claim a fan-in: ``claimed`` goes true once, and
    only when ``done`` has reached ``chunks``; a refusal returns the header, if any."""
    return {
        "TableName": table,
        "Key": fanout_key(run_id, seq),
        "UpdateExpression": "SET #claimed = :true",
        "ConditionExpression": "attribute_exists(pk) AND #done = #chunks AND #claimed = :false",
        "ExpressionAttributeNames": {"#claimed": "claimed", "#done": "done", "#chunks": "chunks"},
        "ExpressionAttributeValues": {":true": {"BOOL": True}, ":false": {"BOOL": False}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def chunks_query(table: str, run_id: str, seq: int) -> dict[str, Any]:
    """The Query arguments that read every chunk of fan-out ``seq``, in chunk order."""
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :chunks)",
        "ExpressionAttributeValues": {
            ":pk": {"S": run_pk(run_id)},
            ":chunks": {"S": chunk_prefix(seq)},
        },
        "ConsistentRead": True,
    }


def cancelled(reasons: Sequence[Mapping[str, Any]], run_id: str, seq: int, chunk: int) -> bool:
    """What a refused :func:`record_request` means, from its cancellation reasons.

    ``False`` when only the chunk was there already (a duplicate delivery). Raises
    :class:`FanOutNotFound` when the header is missing, :class:`ValueError` when the
    header refused the chunk number, :class:`RetryableError` for a conflict or
    throttling, and :class:`LookupError` for reasons it cannot read (the caller
    re-raises the original error then).
    """
    codes = [str(reason.get("Code", "None")) for reason in reasons]
    if len(codes) != 2:
        raise LookupError(f"expected 2 cancellation reasons, got {codes}")
    if _RETRYABLE_REASONS.intersection(codes):
        raise RetryableError(f"recording chunk {chunk} of {fanout_name(run_id, seq)}: {codes}")
    if codes[1] == _CONDITION_FAILED:
        header = reasons[1].get("Item")
        if not header:
            raise not_found(run_id, seq)
        raise out_of_range(run_id, seq, chunk, int(header["chunks"]["N"]))
    if codes == [_CONDITION_FAILED, "None"]:
        return False
    raise LookupError(f"unexpected cancellation reasons {codes}")
