"""Fixtures that hold every port implementation to one contract: memory, sqlite and moto.

``store``, ``blobs`` and ``queue`` are parametrized over ``["memory", "sqlite", "moto"]``;
the sqlite ones live in a fresh file in ``tmp_path``; the moto ones run in-process under
``moto.mock_aws()`` with fake credentials, and every DynamoDB client they hand out
refuses to Scan.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws

from pflambda.aws.clients import client, reset_clients
from pflambda.blobs.base import BlobStore
from pflambda.blobs.disk import DiskBlobStore
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.blobs.s3 import S3BlobStore, create_bucket
from pflambda.clock import FakeClock
from pflambda.queues.base import Queue
from pflambda.queues.memory import MemoryQueue
from pflambda.queues.sqlite import SQLiteQueue
from pflambda.queues.sqs import SQSQueue, create_queue
from pflambda.stores.base import Store
from pflambda.stores.dynamodb import DynamoDBStore, create_table
from pflambda.stores.memory import MemoryStore
from pflambda.stores.sqlite import SQLiteStore

TABLE = "pflambda-contract"
BUCKET = "pflambda-contract-state"
QUEUE = "pflambda-contract-work"
MAX_RECEIVES = 3
"""Deliveries before a message goes to the dead-letter queue, in every queue fixture."""

IMPLEMENTATIONS = ["memory", "sqlite", "moto"]
CONTRACT_SHARDS = 3
"""Listing shards of the contract suite's DynamoDB store: the logic is the same for any
count and moto answers each Query in time proportional to the table; the tests of what a
listing costs use the default (:data:`~pflambda.limits.LIST_SHARDS`)."""

_AWS_VARS_TO_CLEAR = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)


class ScanForbidden(AssertionError):
    """Raised by the hook that keeps Scan out of every store operation."""


def _forbid_scan(**_: Any) -> None:
    raise ScanForbidden("the DynamoDB store must never Scan")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, with fake credentials and no endpoint override from the shell."""
    for name in _AWS_VARS_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/pflambda-test-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/pflambda-test-credentials")
    reset_clients()
    with mock_aws():
        yield
    reset_clients()


def count_calls(aws_client: Any, event: str) -> Counter[str]:
    """Count the calls a client makes to ``event`` (say ``"dynamodb.Query"``), by name."""
    calls: Counter[str] = Counter()

    def hook(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    aws_client.meta.events.register(f"before-call.{event}", hook)
    return calls


def fail_calls(
    aws_client: Any, event: str, code: str, status: int = 400, message: str = "", times: int = 1
) -> None:
    """Make the next ``times`` calls to ``event`` fail with ``code`` without reaching moto.

    A ``before-call`` handler that answers short-circuits botocore: no request is sent
    and botocore raises the error as if the service had returned it.
    """
    remaining = [times]

    def hook(**_: Any) -> Any:
        if remaining[0] == 0:
            return None
        remaining[0] -= 1
        error = {"Error": {"Code": code, "Message": message or f"injected {code}"}}
        return SimpleNamespace(status_code=status), error | {
            "ResponseMetadata": {"HTTPStatusCode": status}
        }

    aws_client.meta.events.register(f"before-call.{event}", hook)


@dataclass
class DynamoKit:
    """A DynamoDB store on moto and the client under it (for hooks and raw reads)."""

    store: DynamoDBStore
    client: Any


@pytest.fixture
def dynamo(aws: None) -> DynamoKit:
    """A fresh table on moto; its client raises if anything Scans."""
    dynamodb = client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.Scan", _forbid_scan)
    create_table(dynamodb, TABLE)
    return DynamoKit(DynamoDBStore(TABLE, dynamodb, shards=CONTRACT_SHARDS), dynamodb)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A SQLite store in a fresh file, closed afterwards."""
    store = SQLiteStore(tmp_path / "pflambda.db")
    yield store
    store.close()


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request: pytest.FixtureRequest) -> Store:
    """Every Store implementation, fresh and empty."""
    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_store")
    kit: DynamoKit = request.getfixturevalue("dynamo")
    return kit.store


@dataclass
class S3Kit:
    """An S3 blob store on moto and the client under it."""

    blobs: S3BlobStore
    client: Any


@pytest.fixture
def s3(aws: None) -> S3Kit:
    """A fresh bucket on moto, with blobs under the ``state/`` prefix."""
    s3_client = client("s3")
    create_bucket(s3_client, BUCKET)
    return S3Kit(S3BlobStore(BUCKET, s3_client, prefix="state"), s3_client)


@pytest.fixture(params=IMPLEMENTATIONS)
def blobs(request: pytest.FixtureRequest) -> BlobStore:
    """Every BlobStore implementation, fresh and empty."""
    if request.param == "memory":
        return MemoryBlobStore()
    if request.param == "sqlite":
        return DiskBlobStore(request.getfixturevalue("tmp_path") / "blobs")
    kit: S3Kit = request.getfixturevalue("s3")
    return kit.blobs


@dataclass
class QueueKit:
    """A queue with a dead-letter queue after :data:`MAX_RECEIVES`, and its test controls."""

    queue: Queue
    dead_letter: Queue
    send_calls: Callable[[], int]
    """How many SendMessageBatch calls the queue has made."""
    advance: Callable[[float], None]
    """Let this many seconds pass for the queue (a fake clock, or a real short wait)."""
    client: Any = None


@pytest.fixture
def sqs(aws: None) -> QueueKit:
    """A work queue and its DLQ on moto; time passes for real (keep it to ~1 s)."""
    sqs_client = client("sqs")
    url = create_queue(sqs_client, QUEUE, dlq_name=f"{QUEUE}-dlq", max_receives=MAX_RECEIVES)
    dlq_url = sqs_client.get_queue_url(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
    sends = count_calls(sqs_client, "sqs.SendMessageBatch")
    return QueueKit(
        queue=SQSQueue(url, sqs_client, clock=FakeClock()),
        dead_letter=SQSQueue(dlq_url, sqs_client),
        send_calls=lambda: sends["SendMessageBatch"],
        advance=lambda seconds: time.sleep(seconds + 0.05),
        client=sqs_client,
    )


@pytest.fixture
def sqlite_queue(tmp_path: Path) -> Iterator[QueueKit]:
    """A work queue and its DLQ in a fresh SQLite file, on a fake clock."""
    clock = FakeClock()
    path = tmp_path / "queue.db"
    dead_letter = SQLiteQueue(path, "work-dlq", clock=clock)
    queue = SQLiteQueue(
        path, "work", clock=clock, max_receives=MAX_RECEIVES, dead_letter="work-dlq"
    )
    yield QueueKit(queue, dead_letter, lambda: queue.send_calls, clock.advance)
    queue.db.close()
    dead_letter.db.close()


@pytest.fixture(params=IMPLEMENTATIONS)
def queue_kit(request: pytest.FixtureRequest) -> QueueKit:
    """Every Queue implementation, with its dead-letter queue and controls."""
    if request.param == "memory":
        clock = FakeClock()
        dead_letter = MemoryQueue(clock)
        queue = MemoryQueue(clock, max_receives=MAX_RECEIVES, dead_letter=dead_letter)
        return QueueKit(queue, dead_letter, lambda: queue.send_calls, clock.advance)
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_queue")
    kit: QueueKit = request.getfixturevalue("sqs")
    return kit


@pytest.fixture
def queue(queue_kit: QueueKit) -> Queue:
    """Every Queue implementation, fresh and empty."""
    return queue_kit.queue
