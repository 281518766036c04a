"""The local emulator loses nothing under concurrency, and redrives as the template does."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pflambda.limits import MAX_RECEIVES
from pflambda.local.emulator import Emulator, start_emulator
from pflambda.stores.dynamodb import create_table


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    em = start_emulator()
    try:
        yield em
    finally:
        em.stop()


def _client(em: Emulator, service: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client(service, endpoint_url=em.endpoint)  # type: ignore[call-overload]


def lost_writes(em: Emulator, writers: int = 3, puts: int = 120) -> list[str]:
    """Acknowledged PutItems racing refused TransactWriteItems: the keys that vanished."""
    run = uuid.uuid4().hex  # moto's state is per process: a table of this call's own
    table, stop, acked = f"race-{run}", threading.Event(), []
    create_table(_client(em, "dynamodb"), table)
    lock = threading.Lock()

    def refuse(n: int) -> None:
        ddb, i = _client(em, "dynamodb"), 0
        while not stop.is_set():
            missing = {"pk": {"S": "RACE#missing"}, "sk": {"S": "x"}}
            puts = [
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": f"T{run}#{n}#{i}"}, "sk": {"S": k}},
                    }
                }
                for k in "abcdefghijklmnopqrstuvw"
            ]  # a long transaction: a wide window for the race
            items = [
                *puts,
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": missing,
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
            with pytest.raises(ClientError):
                ddb.transact_write_items(TransactItems=items)
            i += 1

    def write(n: int) -> None:
        ddb = _client(em, "dynamodb")
        for i in range(puts):
            key = f"RACE#{run}#{n}#{i}"
            ddb.put_item(TableName=table, Item={"pk": {"S": key}, "sk": {"S": "a"}})
            with lock:
                acked.append(key)

    refusers = [threading.Thread(target=refuse, args=(n,)) for n in range(3)]
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in refusers + threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    for thread in refusers:
        thread.join()
    ddb = _client(em, "dynamodb")
    return [
        key
        for key in acked
        if "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": key}, "sk": {"S": "a"}})
    ]


def test_refused_transactions_never_undo_acknowledged_writes(emulator: Emulator) -> None:
    assert lost_writes(emulator) == []


def test_a_long_poll_does_not_hold_up_other_requests(emulator: Emulator) -> None:
    """While one client long-polls an empty queue, another writes an item and sends a
    message: the write is answered and the long poll returns that message."""
    sqs, ddb = _client(emulator, "sqs"), _client(emulator, "dynamodb")
    url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
    started, got = threading.Event(), []

    def poll() -> None:
        started.set()
        reply = _client(emulator, "sqs").receive_message(QueueUrl=url, WaitTimeSeconds=10)
        got.extend(m["Body"] for m in reply.get("Messages", []))

    thread = threading.Thread(target=poll)
    thread.start()
    started.wait()
    item = {"pk": {"S": "POLL"}, "sk": {"S": "a"}}
    ddb.put_item(TableName=emulator.settings.table, Item=item)
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    thread.join()
    assert got == ["hello"]


def test_the_work_queue_redrives_after_the_templates_receive_count(emulator: Emulator) -> None:
    sqs = _client(emulator, "sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=emulator.queue_url, AttributeNames=["All"])
    import json

    policy = json.loads(attrs["Attributes"]["RedrivePolicy"])
    assert policy["maxReceiveCount"] == MAX_RECEIVES == 6


def unanswered(em: Emulator, threads: int = 8, runs: int = 20) -> list[str]:
    """Runs started at once from many threads, as ``pflambda local`` does under load:
    each one TransactWriteItems (META and checkpoint 0), then a read. The errors, if any.

    moto copies a table whole before a transaction (to roll it back on refusal); another
    thread's write during that copy made moto answer HTTP 500 (the A2A client saw
    -32603 "temporarily unavailable"). The SDK's retries are off, so none is hidden."""
    from botocore.config import Config

    table, errors = f"starts-{uuid.uuid4().hex}", []
    create_table(_client(em, "dynamodb"), table)
    no_retries = Config(retries={"mode": "standard", "max_attempts": 1})

    def start(n: int) -> None:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        ddb = session.client("dynamodb", endpoint_url=em.endpoint, config=no_retries)
        for i in range(runs):
            pk = {"S": f"RUN#{n}-{i}"}
            new = "attribute_not_exists(pk)"
            puts = [
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": pk, "sk": {"S": sk}, "v": {"S": "x" * 300}},
                        "ConditionExpression": new,
                    }
                }
                for sk in ("META", "CKPT#000000000000")
            ]
            try:
                ddb.transact_write_items(TransactItems=puts)
                key = {"pk": pk, "sk": {"S": "META"}}
                ddb.get_item(TableName=table, Key=key, ConsistentRead=True)
            except ClientError as err:
                errors.append(f"{err.response['Error']['Code']}: {str(err)[:80]}")

    workers = [threading.Thread(target=start, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return errors


def test_concurrent_starts_are_all_answered(emulator: Emulator) -> None:
    assert unanswered(emulator) == []
