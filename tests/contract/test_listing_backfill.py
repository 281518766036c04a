"""``backfill_listing``: runs written before the listing indexes existed get their keys.

Such runs have no ``lpk``/``lsk``/``ssk``/``apk``/``cpk`` (and older A2A runs kept their
agent only in ``attrs["a2a"]``), so no listing shows them. The backfill (DynamoDB: paged
Scans and conditional writes; SQLite: a transaction per page) gives them keys without
overwriting what a live writer changed meanwhile, and finds nothing left when re-run.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from pflambda.stores._item import run_item
from pflambda.stores._listing import INDEX_ATTRS
from pflambda.stores._listing_backfill import Backfill
from pflambda.stores.base import RunRecord, RunStatus
from pflambda.stores.dynamodb import DynamoDBStore
from pflambda.stores.sqlite import SQLiteStore
from tests.contract.conftest import TABLE, DynamoKit
from tests.contract.test_store_listing import listed, run

S = RunStatus
OLD = [f"old-{i:02d}" for i in range(11)]


def old_item(run_id: str, i: int) -> dict[str, Any]:
    """A run's item as versions before the listing indexes wrote it: no keys, and the
    agent only in attrs (every other one), the old list key in ``gsi1*``."""
    record = run(run_id, i, owner="ada", context_id="ctx", attrs={"a2a": {"agent": "qa"}})
    item = {k: v for k, v in run_item(record).items() if k not in INDEX_ATTRS}
    if i % 2:
        item["agent"] = {"S": "qa"}
    item |= {"gsi1pk": {"S": "RUNS"}, "gsi1sk": {"S": f"{i:08d}#{run_id}"}}
    return item


def lines(into: list[str]) -> Callable[[Backfill], None]:
    return lambda so_far: into.append(so_far.line())


# -- DynamoDB ---------------------------------------------------------------------------


@pytest.fixture
def scanning(dynamo: DynamoKit) -> DynamoKit:
    """The contract table behind a client that may Scan (the backfill is the one scan)."""
    free = boto3.client("dynamodb", region_name="us-east-1")
    return DynamoKit(DynamoDBStore(TABLE, free, shards=3), free)


def _put_old(kit: DynamoKit) -> None:
    for i, run_id in enumerate(OLD):
        kit.client.put_item(TableName=TABLE, Item=old_item(run_id, i))


def test_dynamodb_backfill_lists_old_runs_and_is_idempotent(scanning: DynamoKit) -> None:
    kit, store = scanning, scanning.store
    _put_old(kit)
    store.create_run(run("new-1", 50, owner="ada", agent="qa"))
    assert listed(store, 5, owner="ada", agent="qa") == ["new-1"]
    progress: list[str] = []
    done = store.backfill_listing(page_size=4, progress=lines(progress))
    assert (done.found, done.added, done.raced, done.gone) == (11, 11, 0, 0)
    assert done.pages == len(progress) >= 3  # the Scan was paged
    assert listed(store, 5, owner="ada", agent="qa") == ["new-1", *reversed(OLD)]
    assert listed(store, 4, owner="ada", agent="qa", context_id="ctx") == list(reversed(OLD))
    assert store.count_runs(owner="ada", agent="qa", status=S.RUNNING) == 12
    assert store.get_run("old-00").agent == "qa"  # taken from its attrs
    again = store.backfill_listing(page_size=4)
    assert (again.found, again.added) == (0, 0)


def test_dynamodb_backfill_never_overwrites_a_newer_status(scanning: DynamoKit) -> None:
    kit, store = scanning, scanning.store
    _put_old(kit)
    other = boto3.client("dynamodb", region_name="us-east-1")  # a live writer meanwhile
    acted: list[str] = []

    def meanwhile(params: dict[str, Any], **_: Any) -> None:
        """Before the backfill's first write: that run's status changes, another run is
        keyed by a new-version writer, a third is deleted."""
        if acted or not params["Key"]["pk"]["S"].startswith("RUN#"):
            return  # (the shard count's record is written first)
        first = params["Key"]["pk"]["S"].removeprefix("RUN#")
        raced, gone = [run_id for run_id in OLD if run_id != first][:2]
        acted.extend([first, raced, gone])
        other.update_item(  # an old-version writer: status and time, no keys
            TableName=TABLE,
            Key=params["Key"],
            UpdateExpression="SET #s = :s, updated_at = :u",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "completed"}, ":u": {"N": "1800000000"}},
        )
        other.update_item(
            TableName=TABLE,
            Key={"pk": {"S": f"RUN#{raced}"}, "sk": {"S": "META"}},
            UpdateExpression="SET apk = :a",
            ExpressionAttributeValues={":a": {"S": "ALL#0"}},
        )
        other.delete_item(TableName=TABLE, Key={"pk": {"S": f"RUN#{gone}"}, "sk": {"S": "META"}})

    kit.client.meta.events.register("provide-client-params.dynamodb.UpdateItem", meanwhile)
    done = store.backfill_listing(page_size=100)
    first = acted[0]
    assert (done.found, done.added, done.raced, done.gone) == (11, 9, 1, 1)
    key = {"pk": {"S": f"RUN#{first}"}, "sk": {"S": "META"}}
    item = kit.client.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]
    assert item["status"]["S"] == "completed"
    assert item["ssk"]["S"] == f"completed#0001800000000.000000#{first}"
    assert listed(store, 5, owner="ada", agent="qa", status=S.COMPLETED) == [first]
    assert len(listed(store, 5, owner="ada", agent="qa", status=S.RUNNING)) == 8


# -- SQLite -----------------------------------------------------------------------------


def test_sqlite_backfill_lists_old_runs_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "pflambda.db"
    store = SQLiteStore(path)
    store.create_run(run("new-1", 50, owner="ada", agent="qa"))
    with sqlite3.connect(path) as conn:  # rows as the version before the listing wrote them
        for i, run_id in enumerate(OLD):
            item = old_item(run_id, i)
            conn.execute(
                "INSERT INTO runs (run_id, sort_key, context_id, owner, item) VALUES (?,?,?,?,?)",
                (run_id, item["gsi1sk"]["S"], "ctx", "ada", json.dumps(item)),
            )
    assert "old-00" not in listed(store, 50, owner="ada", agent="qa")
    progress: list[str] = []
    done = store.backfill_listing(page_size=5, progress=lines(progress))
    assert (done.found, done.added, done.pages) == (11, 11, 3)
    assert listed(store, 5, owner="ada", agent="qa") == ["new-1", *reversed(OLD)]
    assert store.count_runs(owner="ada", agent="qa") == 12
    store.update_run("old-00", {"status": S.COMPLETED, "updated_at": 1_900_000_000.0})
    assert listed(store, 3, owner="ada")[0] == "old-00"
    assert store.backfill_listing().added == 0
    store.close()


def test_records_are_what_the_backfill_reads() -> None:
    # guards old_item: it must lack every listing key, or the tests above prove nothing
    item = old_item("old-x", 0)
    assert not set(INDEX_ATTRS) & set(item)
    assert RunRecord.__dataclass_fields__["agent"]
