"""What retention costs: the writes that keep a long run's record alive, and a reap.

On DynamoDB/S3 emulated by moto (in-process), with a fake clock:

1. A run that takes one step a day for 60 days (no status change until it completes):
   DynamoDB requests by kind over the whole run -- the expiry rides along in a step's
   write when less than half the retention is left, so there is no extra request.
2. Reaping one expired run (what ReaperFunction does after DynamoDB's TTL deleted its
   record) of 10, 100 and 1,000 steps, each with large values in S3: requests by kind,
   and the items and objects deleted.

Run: ``.venv/bin/python bench/retention.py`` (about half a minute). Counts, not times:
they are the same on every machine.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._moto import count_requests, moto_clients
from pflambda import Flow, Node
from pflambda.clock import FakeClock
from pflambda.engine import retention
from pflambda.engine.runner import Engine

DAY = 86_400
CLOCK = FakeClock()


class Step(Node):
    """A step that takes ``shared['every']`` seconds; each tenth step stores a 100 KB value."""

    def exec(self, prep_res: Any) -> None:
        CLOCK.advance(self.params.get("every", 0) or 0)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["n"] += 1
        if shared["n"] % 10 == 0:
            shared[f"big{shared['n']}"] = f"{shared['n']:06d}" * 17_000  # ~100 KB: to S3
        return "again" if shared["n"] < shared["limit"] else "done"


class Done(Node):
    pass


def stepping(every: float = 0) -> Flow:
    step = Step()
    step - "again" >> step
    step - "done" >> Done()
    flow = Flow(start=step)
    flow.set_params({"every": every})
    return flow


def daily() -> Flow:
    return stepping(DAY)


def instant() -> Flow:
    return stepping(0)


class Forever:
    def get_remaining_time_in_millis(self) -> int:
        return 10**12


def main() -> None:
    from pflambda.blobs.s3 import S3BlobStore
    from pflambda.stores.dynamodb import DynamoDBStore

    with moto_clients() as (ddb, s3):
        calls = count_requests(ddb, s3)
        engine = Engine(DynamoDBStore("bench", ddb), S3BlobStore("bench", s3), clock=CLOCK)
        long_run(engine, calls)
        reaps(engine, calls)


def long_run(engine: Engine, calls: Counter[str]) -> None:
    calls.clear()
    outcome = engine.start(f"{__name__}:daily", {"n": 0, "limit": 60}, context=Forever())
    assert outcome.status == "completed", outcome
    used = Counter(calls)
    steps = len(list(engine.store.list_checkpoints(outcome.run_id))) - 1
    puts, transactions = used.pop("PutItem", 0), used.pop("TransactWriteItems", 0)
    other = {k: v for k, v in used.items() if not k.startswith("S3")}
    print("A run of 60 daily steps and a last one (retention 30 days; its only status")
    print("change is the last step's: completed)\n")
    print("| DynamoDB requests | count |")
    print("|---|---|")
    print(f"| steps committed | {steps} |")
    print("| TransactWriteItems: the start (record + checkpoint 0) | 1 |")
    print(f"| PutItem: a step | {puts} |")
    print(f"| TransactWriteItems: a step + the expiry pushed out | {transactions - 2} |")
    print("| TransactWriteItems: the last step + completed | 1 |")
    print(f"| any other request | {sum(other.values())} |")
    print(f"| **requests per step** | **{(puts + transactions - 1) / steps:.3f}** |\n")


def reaps(engine: Engine, calls: Counter[str]) -> None:
    print("Reaping one expired run (ReaperFunction, after the TTL deleted its record)\n")
    print(
        "| steps | items deleted | objects deleted | Query | BatchWriteItem | GetItem "
        "| S3 ListObjectsV2 | S3 DeleteObjects |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for steps in (10, 100, 1000):
        run_id = f"r{steps}"
        engine.start(f"{__name__}:instant", {"n": 0, "limit": steps}, run_id=run_id)
        CLOCK.advance(engine.ttl_days * DAY + 1)
        engine.store._client.delete_item(  # type: ignore[attr-defined]  # the TTL's part
            TableName="bench", Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "META"}}
        )
        calls.clear()
        reaped = retention.reap(engine.store, engine.blobs, run_id, CLOCK.now())
        assert reaped is not None
        row = [
            calls[k]
            for k in ("Query", "BatchWriteItem", "GetItem", "S3 ListObjectsV2", "S3 DeleteObjects")
        ]
        print(f"| {steps} | {reaped.items} | {reaped.blobs} | " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
