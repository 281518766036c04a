"""Fan-out of 10,000 batch items: queue calls, store writes, throughput.

Runs one BatchNode over 10,000 items three ways and prints a table:

- in-process (no queue: PocketFlow's own loop inside one step);
- fanned out through the in-memory queue and store, drained by a pool of 4 local
  worker threads;
- fanned out through SQS and DynamoDB/S3 emulated by moto (in-process), 4 workers.

For each: SendMessageBatch calls (memory: batch sends), DynamoDB write requests per item
(moto: PutItem/UpdateItem/TransactWriteItems calls), Scan calls (must be 0), items/s,
and whether the results came back complete and in order.

Run: ``.venv/bin/python bench/fanout.py [ITEMS]`` (a minute or two for 10,000 on moto).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pflambda import BatchNode, Flow
from pflambda.aws.worker import Worker, parse
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.engine.fanout import run_chunk
from pflambda.engine.runner import Engine
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore

ITEMS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
WORKERS = 4
"""Worker threads on the memory backend."""


class Score(BatchNode):
    """A cheap per-item exec, so the table shows the machinery, not the work."""

    fan_out = True

    def prep(self, shared: dict[str, Any]) -> list[int]:
        return list(range(shared["n"]))

    def exec(self, item: int) -> int:
        return (item * 2654435761) % 1000

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: list[int]) -> None:
        shared["ok"] = exec_res == [(i * 2654435761) % 1000 for i in range(shared["n"])]


def scoring() -> Flow:
    return Flow(start=Score())


def drain(
    engine: Engine, receive: Callable[[], list[Any]], ack: Callable[[Any], None], workers: int
) -> None:
    """A pool of worker threads delivering messages until the run is done."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        worker = Worker(engine)
        while not stop.is_set():
            batch = receive()
            for message in batch:
                try:
                    doc = parse(message.body)
                    if doc["kind"] == "fanout":
                        run_chunk(engine, doc, message.receive_count)
                    else:
                        worker.handle(doc)
                    ack(message)
                except BaseException as exc:  # report, don't hang
                    errors.append(exc)
                    stop.set()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    while not stop.is_set():
        runs = engine.store.list_runs(limit=1).runs
        if runs and runs[0].status != RunStatus.RUNNING:
            stop.set()
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=30)
    if errors:
        raise errors[0]


@contextmanager
def memory() -> Iterator[
    tuple[Engine, Callable[[], Counter[str]], Callable[[], Any], Callable[[Any], None]]
]:
    queue = MemoryQueue()
    engine = Engine(MemoryStore(), MemoryBlobStore(), queue)
    yield (
        engine,
        lambda: Counter({"SendMessageBatch": queue.send_calls}),
        lambda: queue.receive(10, visibility_timeout=300),
        lambda m: queue.ack([m.receipt]),
    )


@contextmanager
def moto() -> Iterator[
    tuple[Engine, Callable[[], Counter[str]], Callable[[], Any], Callable[[Any], None]]
]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    from pflambda.blobs.s3 import S3BlobStore, create_bucket
    from pflambda.queues.sqs import SQSQueue, create_queue
    from pflambda.stores.dynamodb import DynamoDBStore, create_table

    with mock_aws():
        ddb, s3, sqs = boto3.client("dynamodb"), boto3.client("s3"), boto3.client("sqs")
        create_table(ddb, "bench")
        create_bucket(s3, "bench")
        url = create_queue(sqs, "bench")
        calls: Counter[str] = Counter()
        for client, service in ((ddb, "dynamodb"), (sqs, "sqs"), (s3, "s3")):
            client.meta.events.register(
                f"before-call.{service}.*", lambda model, **_: calls.update([model.name])
            )
        queue = SQSQueue(url, sqs)
        engine = Engine(DynamoDBStore("bench", ddb), S3BlobStore("bench", s3), queue)
        yield (
            engine,
            lambda: calls,
            lambda: queue.receive(10, visibility_timeout=300),
            lambda m: queue.ack([m.receipt]),
        )


def measure(backend: Any, workers: int) -> dict[str, Any]:
    with backend() as (engine, calls, receive, ack):
        start = time.perf_counter()
        outcome = engine.start(f"{__name__}:scoring", {"n": ITEMS})
        drain(engine, receive, ack, workers)
        elapsed = time.perf_counter() - start
        counted = calls()
        state = engine.state(outcome.run_id)[0]
        record = engine.store.get_run(outcome.run_id)
    writes = sum(counted[k] for k in ("PutItem", "UpdateItem", "TransactWriteItems"))
    return {
        "status": str(record.status),
        "ok": state.get("ok"),
        "sends": counted["SendMessageBatch"],
        "writes/item": writes / ITEMS if writes else float("nan"),
        "tx": counted["TransactWriteItems"],
        "scans": counted["Scan"],
        "items/s": ITEMS / elapsed,
    }


def in_process() -> dict[str, Any]:
    engine = Engine(MemoryStore(), MemoryBlobStore())
    start = time.perf_counter()
    outcome = engine.start(f"{__name__}:scoring", {"n": ITEMS})
    elapsed = time.perf_counter() - start
    return {"status": str(outcome.status), "ok": outcome.shared["ok"], "items/s": ITEMS / elapsed}


def main() -> None:
    print(f"{ITEMS} items, 10 per message, local worker threads\n")
    header = f"{'mode':<22} {'status':<10} {'in order':<9} {'SendMessageBatch':>16} {'writes/item':>12} {'scans':>6} {'items/s':>9}"
    print(header)
    print("-" * len(header))
    r = in_process()
    print(
        f"{'in-process':<22} {r['status']:<10} {r['ok']!s:<9} {'-':>16} {'-':>12} {'-':>6} {r['items/s']:>9.0f}"
    )
    # moto applies TransactWriteItems without a lock (it deep-copies the table), so its
    # workers must take turns; the memory store is thread-safe.
    for name, backend, workers in (
        (f"fan-out, memory x{WORKERS}", memory, WORKERS),
        ("fan-out, moto x1", moto, 1),
    ):
        r = measure(backend, workers)
        writes = "-" if r["writes/item"] != r["writes/item"] else f"{r['writes/item']:.3f}"
        print(
            f"{name:<22} {r['status']:<10} {r['ok']!s:<9} {r['sends']:>16} {writes:>12} "
            f"{r['scans']:>6} {r['items/s']:>9.0f}"
        )
    print(
        "\nwrites/item on moto counts every DynamoDB write of the run: one TransactWriteItems per"
        "\nmessage (the chunk's results + the done-count), plus the checkpoints and the header."
    )


if __name__ == "__main__":
    main()
