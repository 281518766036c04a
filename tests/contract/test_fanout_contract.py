"""The fan-out part of the Store contract (pflambda/stores/base.py), on memory and moto."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError

from pflambda.errors import PflambdaError, RetryableError
from pflambda.stores._fanout_items import chunk_item
from pflambda.stores._item import ITEM_LIMIT, item_size
from pflambda.stores.base import (
    Checkpoint,
    FanOut,
    FanOutNotFound,
    ItemTooLarge,
    Store,
)
from pflambda.stores.dynamodb import DynamoDBStore
from tests.contract.conftest import TABLE, DynamoKit, count_calls, fail_calls

T0 = 1_700_000_000.0
T = TypeVar("T")


def fan(run_id: str = "r1", seq: int = 3, chunks: int = 4, **fields: Any) -> FanOut:
    base = FanOut(
        run_id=run_id, seq=seq, node_id="summarise", chunks=chunks, items=10, created_at=T0
    )
    return dataclasses.replace(base, **fields)


def ckpt(seq: int, snapshot: bool = False, run_id: str = "r1") -> Checkpoint:
    return Checkpoint(run_id, seq, f"body-{seq}".encode(), snapshot, T0 + seq, node_id=f"n{seq}")


@contextmanager
def serialised(store: Store) -> Iterator[None]:
    """moto applies a transaction by copying the table and copying it back on a refusal,
    with no lock: two threads at once can undo each other's writes, which DynamoDB never
    does. One call at a time through moto keeps the store's own logic under test."""
    if not isinstance(store, DynamoDBStore):
        yield
        return
    aws_client: Any = store._client
    lock, call = threading.Lock(), aws_client._make_api_call

    def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return call(*args, **kwargs)

    aws_client._make_api_call = one_at_a_time
    try:
        yield
    finally:
        del aws_client._make_api_call


def retrying(call: Callable[[], T]) -> T:
    """What SQS redelivery does for a worker: try again after a RetryableError."""
    for _ in range(50):
        try:
            return call()
        except RetryableError:
            continue
    return call()


# -- headers --------------------------------------------------------------------------------


def test_create_then_get_round_trips_every_field(store: Store) -> None:
    header = fan(created_at=1_700_000_000.123456789, expires_at=1_800_000_000, items=0)
    assert store.create_fanout(header) == header
    assert store.get_fanout("r1", 3) == header
    bare = fan(seq=0, chunks=1, node_id="ñ")
    assert store.create_fanout(bare) == bare
    assert store.get_fanout("r1", 0) == bare


def test_creating_again_returns_the_stored_header(store: Store) -> None:
    original = fan(chunks=4, expires_at=1_800_000_000)
    store.create_fanout(original)
    assert store.record_chunk("r1", 3, 2, b"results")
    again = store.create_fanout(fan(chunks=9, node_id="other", created_at=T0 + 60))
    assert again == dataclasses.replace(original, done=1)
    assert store.get_fanout("r1", 3) == again
    assert store.load_chunks("r1", 3) == [(2, b"results")]


def test_an_unknown_fanout_is_not_found_everywhere(store: Store) -> None:
    store.create_fanout(fan(run_id="r1", seq=3))
    for run_id, seq in [("r1", 4), ("r1", 2), ("r2", 3)]:
        with pytest.raises(FanOutNotFound, match=f"{seq} of run {run_id}"):
            store.get_fanout(run_id, seq)
        with pytest.raises(FanOutNotFound):
            store.record_chunk(run_id, seq, 0, b"x")
        with pytest.raises(FanOutNotFound):
            store.claim_fanin(run_id, seq)
        assert store.load_chunks(run_id, seq) == []
    assert store.get_fanout("r1", 3).done == 0


def test_a_header_cannot_have_more_chunks_than_keys_allow(store: Store) -> None:
    with pytest.raises(ValueError, match="chunks"):
        store.create_fanout(fan(chunks=-1))
    with pytest.raises(ValueError, match="chunks"):
        store.create_fanout(fan(chunks=10**8 + 1))
    with pytest.raises(FanOutNotFound):
        store.get_fanout("r1", 3)


# -- recording chunks -----------------------------------------------------------------------


def test_each_chunk_counts_once(store: Store) -> None:
    store.create_fanout(fan(chunks=4))
    for done, chunk in enumerate([2, 0, 3, 1], start=1):
        assert store.record_chunk("r1", 3, chunk, f"chunk-{chunk}".encode()) is True
        assert store.get_fanout("r1", 3).done == done
    assert store.load_chunks("r1", 3) == [(k, f"chunk-{k}".encode()) for k in range(4)]


def test_a_duplicate_records_nothing_and_the_first_results_stand(store: Store) -> None:
    store.create_fanout(fan(chunks=4))
    assert store.record_chunk("r1", 3, 1, b"first") is True
    assert store.record_chunk("r1", 3, 1, b"second") is False
    assert store.record_chunk("r1", 3, 1, b"first") is False
    assert store.get_fanout("r1", 3).done == 1
    assert store.load_chunks("r1", 3) == [(1, b"first")]


@pytest.mark.parametrize("chunk", [4, 5, 10**7, -1])
def test_a_chunk_out_of_range_is_refused_and_nothing_is_stored(store: Store, chunk: int) -> None:
    store.create_fanout(fan(chunks=4))
    with pytest.raises(ValueError, match=f"chunk {chunk} .*out of range"):
        store.record_chunk("r1", 3, chunk, b"x")
    assert store.get_fanout("r1", 3).done == 0
    assert store.load_chunks("r1", 3) == []


def test_the_range_error_names_the_bound(store: Store) -> None:
    store.create_fanout(fan(chunks=4))
    with pytest.raises(ValueError, match="0 <= chunk < 4"):
        store.record_chunk("r1", 3, 4, b"x")


def test_fanouts_of_other_steps_and_runs_are_separate(store: Store) -> None:
    for run_id, seq in [("r1", 3), ("r1", 30), ("r10", 3)]:
        store.create_fanout(fan(run_id=run_id, seq=seq, chunks=2))
        store.record_chunk(run_id, seq, 0, f"{run_id}/{seq}".encode())
    assert store.load_chunks("r1", 3) == [(0, b"r1/3")]
    assert store.load_chunks("r1", 30) == [(0, b"r1/30")]
    assert store.load_chunks("r10", 3) == [(0, b"r10/3")]
    assert [store.get_fanout(r, s).done for r, s in [("r1", 3), ("r1", 30), ("r10", 3)]] == [1] * 3


def test_bodies_are_copied(store: Store) -> None:
    store.create_fanout(fan(chunks=1))
    body = bytearray(b"original")
    store.record_chunk("r1", 3, 0, body)  # type: ignore[arg-type]
    body[:] = b"changed!"
    ((_, loaded),) = store.load_chunks("r1", 3)
    assert loaded == b"original"
    assert type(loaded) is bytes


def boundary_body_length(run_id: str, seq: int, chunk: int) -> int:
    """The body length that makes the chunk's item exactly :data:`ITEM_LIMIT` bytes."""
    return ITEM_LIMIT - item_size(chunk_item(run_id, seq, chunk, b""))


def test_chunk_bodies_up_to_the_item_limit(store: Store) -> None:
    store.create_fanout(fan(chunks=2))
    length = boundary_body_length("r1", 3, 0)
    assert length > 399_000
    with pytest.raises(ItemTooLarge, match="chunk 1 of fan-out 3 of run r1"):
        store.record_chunk("r1", 3, 1, b"x" * (length + 1))
    fits = bytes(range(256)) * (length // 256) + b"z" * (length % 256)
    assert store.record_chunk("r1", 3, 0, fits)
    assert store.load_chunks("r1", 3) == [(0, fits)]
    assert store.get_fanout("r1", 3).done == 1


# -- claiming the fan-in --------------------------------------------------------------------


def test_the_fanin_is_claimed_once_and_only_when_every_chunk_is_done(store: Store) -> None:
    store.create_fanout(fan(chunks=3))
    assert store.claim_fanin("r1", 3) is False
    store.record_chunk("r1", 3, 0, b"a")
    store.record_chunk("r1", 3, 2, b"c")
    store.record_chunk("r1", 3, 2, b"c")  # a duplicate counts nothing
    assert store.claim_fanin("r1", 3) is False
    assert not store.get_fanout("r1", 3).claimed
    store.record_chunk("r1", 3, 1, b"b")
    assert store.claim_fanin("r1", 3) is True
    assert store.claim_fanin("r1", 3) is False
    header = store.get_fanout("r1", 3)
    assert (header.done, header.claimed) == (3, True)
    assert store.create_fanout(fan(chunks=3)) == header  # a resumed run sees the claim


def test_concurrent_workers_record_each_chunk_once_and_one_claims(store: Store) -> None:
    chunks, workers = 20, 8
    store.create_fanout(fan(chunks=chunks))
    start = threading.Barrier(workers)

    def worker(me: int) -> tuple[list[int], bool]:
        order = random.Random(me).sample(range(chunks), chunks)
        start.wait()
        won = [
            k
            for k in order
            if retrying(partial(store.record_chunk, "r1", 3, k, f"{k}/{me}".encode()))
        ]
        start.wait()
        return won, retrying(lambda: store.claim_fanin("r1", 3))

    with serialised(store), ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(worker, range(workers)))
    recorded = Counter(k for won, _ in outcomes for k in won)
    assert recorded == Counter(range(chunks))
    assert [claimed for _, claimed in outcomes].count(True) == 1
    header = store.get_fanout("r1", 3)
    assert (header.done, header.claimed) == (chunks, True)
    winners = {k: me for me, (won, _) in enumerate(outcomes) for k in won}
    assert store.load_chunks("r1", 3) == [(k, f"{k}/{winners[k]}".encode()) for k in range(chunks)]


# -- loading chunks and living beside checkpoints -------------------------------------------


def test_chunks_load_in_chunk_order_in_one_query_per_page(store: Store) -> None:
    chunks = 250
    store.create_fanout(fan(chunks=chunks))
    bodies = {k: bytes([k % 256]) * 10_000 + str(k).encode() for k in range(chunks)}
    for k in random.Random(7).sample(range(chunks), chunks):
        store.record_chunk("r1", 3, k, bodies[k])
    pages = count_pages(store._client) if isinstance(store, DynamoDBStore) else None
    assert store.load_chunks("r1", 3) == sorted(bodies.items())
    assert store.get_fanout("r1", 3).done == chunks
    if pages is not None:  # 2.5 MB of results: three 1 MB pages, each one Query
        assert pages == Counter({"Query": 3, "LastEvaluatedKey": 2})


def count_pages(aws_client: Any) -> Counter[str]:
    """Count the Query calls a client makes, and the answers that say more follow."""
    pages = count_calls(aws_client, "dynamodb.Query")

    def on_page(parsed: dict[str, Any], **_: Any) -> None:
        pages["LastEvaluatedKey"] += "LastEvaluatedKey" in parsed

    aws_client.meta.events.register("after-call.dynamodb.Query", on_page)
    return pages


def test_fanout_records_do_not_disturb_checkpoints(store: Store) -> None:
    for seq in range(8):
        store.put_checkpoint(ckpt(seq, snapshot=seq in (0, 4)))
        if seq in (2, 5, 7):
            store.create_fanout(fan(seq=seq, chunks=3))
            for k in range(3):
                store.record_chunk("r1", seq, k, b"results" * 50)
            store.claim_fanin("r1", seq)
    assert [c.seq for c in store.load_checkpoints("r1")] == [4, 5, 6, 7]
    assert store.load_checkpoints("r1") == [ckpt(s, s == 4) for s in range(4, 8)]
    assert [c.seq for c in store.load_checkpoints("r1", at=3)] == [0, 1, 2, 3]
    assert [c.seq for c in store.load_checkpoints("r1", at=5)] == [4, 5]
    assert [i.seq for i in store.list_checkpoints("r1")] == list(range(8))
    assert [i.seq for i in store.list_checkpoints("r1", after=4)] == [5, 6, 7]
    assert all(i.node_id == f"n{i.seq}" for i in store.list_checkpoints("r1"))
    assert store.load_chunks("r1", 5) == [(k, b"results" * 50) for k in range(3)]


# -- DynamoDB only: the access patterns -----------------------------------------------------


def test_record_chunk_is_one_transaction_whatever_happens(dynamo: DynamoKit) -> None:
    store = dynamo.store
    store.create_fanout(fan(chunks=2))
    calls = count_calls(dynamo.client, "dynamodb.*")
    assert store.record_chunk("r1", 3, 0, b"a")
    assert not store.record_chunk("r1", 3, 0, b"b")
    with pytest.raises(ValueError, match="out of range"):
        store.record_chunk("r1", 3, 2, b"c")
    with pytest.raises(FanOutNotFound):
        store.record_chunk("r1", 4, 0, b"d")
    assert dict(calls) == {"TransactWriteItems": 4}
    with pytest.raises(ValueError, match="out of range"):
        store.record_chunk("r1", 3, -1, b"e")
    with pytest.raises(ItemTooLarge):
        store.record_chunk("r1", 3, 1, b"f" * ITEM_LIMIT)
    assert dict(calls) == {"TransactWriteItems": 4}


def test_every_fanout_access_is_a_single_call(dynamo: DynamoKit) -> None:
    store = dynamo.store
    calls = count_calls(dynamo.client, "dynamodb.*")
    store.create_fanout(fan(chunks=1))
    assert dict(calls) == {"PutItem": 1}
    store.create_fanout(fan(chunks=1))  # already there: the stored one is read back
    assert dict(calls) == {"PutItem": 2, "GetItem": 1}
    store.get_fanout("r1", 3)
    store.record_chunk("r1", 3, 0, b"x")
    store.claim_fanin("r1", 3)
    store.claim_fanin("r1", 3)
    store.load_chunks("r1", 3)
    assert dict(calls) == {
        "PutItem": 2,
        "GetItem": 2,
        "TransactWriteItems": 1,
        "UpdateItem": 2,
        "Query": 1,
    }


def test_the_items_and_their_keys(dynamo: DynamoKit) -> None:
    store = dynamo.store
    store.create_fanout(fan(seq=12, chunks=3, expires_at=1_800_000_000))
    store.record_chunk("r1", 12, 2, b"\x00\xff", expires_at=1_800_000_123)
    pk = {"pk": {"S": "RUN#r1"}}

    def raw(sk: str) -> dict[str, Any]:
        response = dynamo.client.get_item(TableName=TABLE, Key=pk | {"sk": {"S": sk}})
        return dict(response["Item"])

    header = raw("FAN#000000000012")
    assert header["ttl"] == {"N": "1800000000"}
    assert (header["done"], header["chunks"], header["claimed"]) == (
        {"N": "1"},
        {"N": "3"},
        {"BOOL": False},
    )
    chunk = raw("FAN#000000000012#CHUNK#00000002")
    assert chunk["body"] == {"B": b"\x00\xff"}
    assert chunk["ttl"] == {"N": "1800000123"}


def cancel_transactions(aws_client: Any, *codes: str) -> None:
    """Make the next TransactWriteItems be cancelled with these reasons, without moto."""
    remaining = [1]

    def hook(**_: Any) -> Any:
        if not remaining[0]:
            return None
        remaining[0] -= 1
        reasons = [{"Code": code} for code in codes]
        body = {
            "Error": {"Code": "TransactionCanceledException", "Message": f"cancelled {codes}"},
            "CancellationReasons": reasons,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return SimpleNamespace(status_code=400), body

    aws_client.meta.events.register("before-call.dynamodb.TransactWriteItems", hook)


@pytest.mark.parametrize(
    "reasons",
    [
        ("None", "TransactionConflict"),
        ("TransactionConflict", "None"),
        ("ThrottlingError", "ThrottlingError"),
        ("ProvisionedThroughputExceeded", "None"),
    ],
)
def test_conflicts_and_throttling_are_retryable(
    dynamo: DynamoKit, reasons: tuple[str, str]
) -> None:
    dynamo.store.create_fanout(fan(chunks=2))
    cancel_transactions(dynamo.client, *reasons)
    with pytest.raises(RetryableError, match=reasons[0] if reasons[0] != "None" else reasons[1]):
        dynamo.store.record_chunk("r1", 3, 0, b"x")
    assert dynamo.store.record_chunk("r1", 3, 0, b"x")  # the next try goes through


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("TransactWriteItems", "ThrottlingException"),
        ("UpdateItem", "TransactionConflictException"),
        ("UpdateItem", "ProvisionedThroughputExceededException"),
        ("PutItem", "TransactionConflictException"),
        ("Query", "InternalServerError"),
    ],
)
def test_plain_errors_are_retryable_too(dynamo: DynamoKit, operation: str, code: str) -> None:
    store = dynamo.store
    store.create_fanout(fan(chunks=1))
    fail_calls(dynamo.client, f"dynamodb.{operation}", code)
    call: dict[str, Callable[[], object]] = {
        "TransactWriteItems": lambda: store.record_chunk("r1", 3, 0, b"x"),
        "UpdateItem": lambda: store.claim_fanin("r1", 3),
        "PutItem": lambda: store.create_fanout(fan(seq=4)),
        "Query": lambda: store.load_chunks("r1", 3),
    }
    with pytest.raises(RetryableError, match=code):
        call[operation]()


@pytest.mark.parametrize("reasons", [("ValidationError", "None"), ("None",), ()])
def test_unreadable_cancellations_are_not_disguised(
    dynamo: DynamoKit, reasons: tuple[str, ...]
) -> None:
    dynamo.store.create_fanout(fan(chunks=2))
    cancel_transactions(dynamo.client, *reasons)
    with pytest.raises(ClientError, match="TransactionCanceled") as raised:
        dynamo.store.record_chunk("r1", 3, 0, b"x")
    assert not isinstance(raised.value, PflambdaError)
    assert dynamo.store.get_fanout("r1", 3).done == 0


def test_chunk_items_carry_the_ttl(store: Any) -> None:
    from pflambda.stores.base import FanOut

    store.create_fanout(
        FanOut("ttl-run", 3, "Node", chunks=1, items=1, created_at=1.0, expires_at=99)
    )
    assert store.record_chunk("ttl-run", 3, 0, b"[]", expires_at=4242)
    assert store.load_chunks("ttl-run", 3) == [(0, b"[]")]
