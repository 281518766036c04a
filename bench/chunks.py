"""What streaming artifact chunks costs a run: requests and bytes per step.

Runs ``tests.flows.chunky:streaming`` (one node visit per word, 20 steps) on the DynamoDB
store (moto, in-process) and the in-memory blob store, three ways: no chunks, one small
chunk per step, one 100 KB chunk per step. Prints DynamoDB requests per step by
operation, blob puts per step and the mean checkpoint item body, then what reading the
artifacts back costs (``Engine.artifact_log``: what GetTask of a working task, and a
stream following a worker, add).

Run: ``.venv/bin/python bench/chunks.py`` (a few seconds).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import FakeClock
from pflambda.engine.runner import Engine

WORDS = 20


class CountingBlobs(MemoryBlobStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    def put(self, key: str, data: bytes) -> None:
        self.puts += 1
        super().put(key, data)


def meter(client: Any) -> Counter[str]:
    seen: Counter[str] = Counter()

    def before(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    client.meta.events.register("before-call.dynamodb", before)
    return seen


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    import boto3
    from moto import mock_aws

    from pflambda.stores.dynamodb import DynamoDBStore, create_table

    print(
        "| chunks | DynamoDB requests per step | blob puts per step | mean body B | "
        "artifact_log read: requests | chunks read |"
    )
    print("|---|---|---|---|---|---|")
    for label, extra in (
        ("none", {"quiet": True}),
        ("1 x 16 B per step", {}),
        ("1 x 100 KB per step", {"repeat": 100_000 // 4}),
    ):
        with mock_aws():
            client = boto3.client("dynamodb")
            create_table(client, "bench")
            blobs = CountingBlobs()
            engine = Engine(DynamoDBStore("bench", client), blobs, clock=FakeClock())
            words = [f"w{i:02d}" for i in range(WORDS)]
            seen = meter(client)
            outcome = engine.start("tests.flows.chunky:streaming", {"words": words, **extra})
            steps = outcome.seq
            writes = {k: v for k, v in seen.items() if k != "DescribeTable"}
            per_step = ", ".join(f"{k} {v / steps:.2f}" for k, v in sorted(writes.items()))
            bodies = [len(c.body) for c in engine.store.load_checkpoints(outcome.run_id)]
            mean = sum(bodies) / len(bodies)
            seen.clear()
            log, _ = engine.artifact_log(outcome.run_id)
            print(
                f"| {label} | {per_step} | {blobs.puts / steps:.2f} | {mean:,.0f} | "
                f"{sum(seen.values())} ({', '.join(sorted(seen))}) | {len(log)} |"
            )
    print(f"\n{WORDS} words: {WORDS} steps of Write, one of Finish (its commit completes the run)")


if __name__ == "__main__":
    main()
