"""What listing runs costs, and what each run writes to the listing indexes.

Prints two tables:

1. Index write arithmetic: the size of one index entry of a typical A2A run (projected
   attributes only) against its ``META`` item carrying a 10 KB history, the WCU each
   lifecycle event costs in the four indexes, and the write rate per index partition
   for one principal starting R runs/s, at the default shard count.
2. Listing cost on DynamoDB (moto, in-process): Queries sent and index entries read
   (``ScannedCount``) by a first ListTasks page and by its ``totalSize`` count, for a
   caller with no runs and for one with 3, while another principal has 0 or 2,000 runs.

Run: ``.venv/bin/python bench/listing.py`` (about 20 s).
"""

from __future__ import annotations

import math
import os
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pflambda.limits import LIST_SHARDS
from pflambda.stores._item import item_size, run_item
from pflambda.stores._listing import INDEX_ATTRS, PROJECTED
from pflambda.stores.base import RunRecord, RunStatus

T0 = 1_700_000_000.0
PARTITION_WCU = 1_000
INDEXES = 4


def record(run_id: str, owner: str, i: int = 0, history: int = 10_000) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        flow="flows.research.flow:create_flow",
        fingerprint="3f9a1c2e4b5d6f70",
        status=RunStatus.RUNNING,
        created_at=T0 + i,
        updated_at=T0 + i,
        owner=owner,
        agent="research",
        context_id="6b1e6f7e-8a0c-4a53-9d7e-0f1d2c3b4a59",
        expires_at=1_800_000_000,
        attrs={"a2a": {"history": ["x" * history]}},
        summary={"submitted": True},
    )


def wcu(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def arithmetic() -> None:
    item = run_item(record("0d6f4c1e-5a7b-4c8d-9e0f-1a2b3c4d5e6f", "principal-0123456789"))
    entry = {
        k: v for k, v in item.items() if k in PROJECTED or k in INDEX_ATTRS or k in ("pk", "sk")
    }
    meta, index = item_size(item), item_size(entry)
    print(f"META item with a 10 KB history: {meta:,} B = {wcu(meta)} WCU per write")
    print(f"one index entry (projected):    {index:,} B = {wcu(index)} WCU per write\n")
    rows = [
        ("create (put)", 1),
        ("status change (sort key moves: delete + put)", 2),
        ("attrs-only update (history, push config)", 0),
    ]
    print(f"| event | writes per index | WCU in {INDEXES} indexes | before (2 GSIs, ALL) |")
    print("|---|---|---|---|")
    before = {"create (put)": 2 * wcu(meta)}
    before["status change (sort key moves: delete + put)"] = 2 * wcu(meta)
    before["attrs-only update (history, push config)"] = 2 * wcu(meta)
    for name, writes in rows:
        print(f"| {name} | {writes} | {writes * INDEXES * wcu(index)} | {before[name]} |")
    print()
    print("Per index partition, one principal+agent at R runs/s over N shards:")
    print("| N shards | R runs/s | index writes per run | WCU/s per partition | share of 1,000 |")
    print("|---|---|---|---|---|")
    for shards in (LIST_SHARDS, 100):
        for rate, per_run in ((1_000, 3), (10_000, 3), (10_000, 7)):
            per_partition = rate * per_run * wcu(index) / shards
            share = per_partition / PARTITION_WCU
            print(f"| {shards} | {rate:,} | {per_run} | {per_partition:,.0f} | {share:.0%} |")
    print("(3 = create + completion; 7 = with one input-required pause and its answer)\n")


def listing_cost() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    import boto3
    from moto import mock_aws

    from pflambda.stores.dynamodb import DynamoDBStore, create_table

    print(
        "| others' runs | caller's runs | page: Queries | page: entries read | "
        "count: Queries | count: entries read | GetItem per listing (shard count) |"
    )
    print("|---|---|---|---|---|---|---|")
    for others in (0, 2_000):
        for mine in (0, 3):
            with mock_aws():
                client = boto3.client("dynamodb")
                create_table(client, "bench")
                store = DynamoDBStore("bench", client)
                load(client, "busy", others)
                load(client, "me", mine)
                seen = meter(client)
                store.list_runs(owner="me", agent="research", limit=50)
                page = dict(seen)
                store.count_runs(owner="me", agent="research")
                count = {k: seen[k] - page[k] for k in seen}
                print(
                    f"| {others:,} | {mine} | {page['queries']} | {page['scanned']} | "
                    f"{count['queries']} | {count['scanned']} | {page['gets']} |"
                )


def load(client: Any, owner: str, count: int) -> None:
    items = [run_item(record(f"{owner}-{i:05d}", owner, i, history=100)) for i in range(count)]
    for start in range(0, count, 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        client.batch_write_item(RequestItems={"bench": batch})


def meter(client: Any) -> dict[str, int]:
    seen = {"queries": 0, "scanned": 0, "gets": 0}
    # the store sends a listing's shard Queries from a thread pool: count under a lock
    lock = threading.Lock()

    def before(**_: Any) -> None:
        with lock:
            seen["queries"] += 1

    def get(**_: Any) -> None:
        with lock:
            seen["gets"] += 1

    def after(parsed: dict[str, Any], **_: Any) -> None:
        with lock:
            seen["scanned"] += int(parsed.get("ScannedCount", 0))

    client.meta.events.register("before-call.dynamodb.Query", before)
    client.meta.events.register("after-call.dynamodb.Query", after)
    client.meta.events.register("before-call.dynamodb.GetItem", get)
    return seen


if __name__ == "__main__":
    arithmetic()
    listing_cost()
