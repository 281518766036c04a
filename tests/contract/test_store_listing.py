"""Listing runs (Store.list_runs / count_runs), held against memory and DynamoDB on moto.

Order is by last update, newest first, ties by id; filters by owner, agent, context and
status; a page token is a position in that order; pages are never empty because of a
filter; counts match the listing. The DynamoDB-only tests count Queries and items read
(botocore hooks) to show a caller's listing costs the same however many runs others have.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from pflambda.errors import ConfigError
from pflambda.limits import LIST_SHARDS
from pflambda.stores._item import run_item
from pflambda.stores._listing import encode_token, shard_of
from pflambda.stores.base import Checkpoint, RunRecord, RunStatus, Store
from pflambda.stores.dynamodb import DynamoDBStore
from tests.contract.conftest import TABLE, DynamoKit

T0 = 1_700_000_000.0
S = RunStatus


def run(run_id: str, updated: float = 0.0, **fields: Any) -> RunRecord:
    base = RunRecord(
        run_id=run_id,
        flow="flows.research.flow:create_flow",
        fingerprint="fp1",
        status=S.RUNNING,
        created_at=T0,
        updated_at=T0 + updated,
    )
    return dataclasses.replace(base, **fields)


def every_page(store: Store, limit: int, **filters: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        page = store.list_runs(limit=limit, next_token=token, **filters)
        assert len(page.runs) <= limit
        pages.append([r.run_id for r in page.runs])
        token = page.next_token
        if token is None:
            return pages
        assert page.runs, "an empty page with a token"
        assert len(pages) < 200, "pagination does not end"


def listed(store: Store, limit: int = 7, **filters: Any) -> list[str]:
    return [rid for page in every_page(store, limit, **filters) for rid in page]


def test_most_recently_updated_first_then_by_id(store: Store) -> None:
    for run_id, updated in [("a", 3.0), ("b", 1.0), ("c", 2.0), ("d", 2.0), ("e", 0.5)]:
        store.create_run(run(run_id, updated))
    page = store.list_runs()
    assert [r.run_id for r in page.runs] == ["a", "d", "c", "b", "e"]
    assert page.next_token is None


def test_an_update_moves_a_run_to_the_top(store: Store) -> None:
    for i in range(5):
        store.create_run(run(f"r{i}", i))
    store.update_run("r1", {"status": S.COMPLETED, "updated_at": T0 + 10})
    store.update_run("r3", {"updated_at": T0 + 11}, expect_status=[S.RUNNING])
    store.update_run("r0", {"status": S.FAILED})  # no time given: keeps its place
    assert listed(store) == ["r3", "r1", "r4", "r2", "r0"]
    assert listed(store, status=S.FAILED) == ["r0"]
    assert listed(store, status=S.RUNNING) == ["r3", "r4", "r2"]


def test_an_empty_store(store: Store) -> None:
    page = store.list_runs(owner="o", agent="a")
    assert (page.runs, page.next_token) == ([], None)
    assert store.count_runs() == 0


def test_pages_cover_everything_once(store: Store) -> None:
    ids = [f"run-{i:02d}" for i in range(25)]
    for i, run_id in enumerate(ids):
        store.create_run(run(run_id, i, owner="o", agent="a"))
    for filters in ({}, {"owner": "o", "agent": "a"}):
        pages = every_page(store, 10, **filters)
        assert [len(p) for p in pages] == [10, 10, 5]
        assert [rid for page in pages for rid in page] == ids[::-1]
        assert every_page(store, 25, **filters) == [ids[::-1]]
        assert every_page(store, 1000, **filters) == [ids[::-1]]


def _population(store: Store) -> list[RunRecord]:
    records = []
    statuses = [S.RUNNING, S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED]
    for i in range(42):
        record = run(
            f"run-{i:02d}",
            i,
            owner=["alice", "bob", None][i % 3],
            agent=["qa", "sum"][i % 2 if i % 7 else 0],
            context_id=f"ctx-{i % 4}" if i % 5 else None,
            status=statuses[(i * 7) % 5],
        )
        store.create_run(record)
        records.append(record)
    return records[::-1]


FILTERS: list[dict[str, Any]] = [
    {},
    {"owner": "alice"},
    {"agent": "qa"},
    {"owner": "alice", "agent": "qa"},
    {"owner": "bob", "agent": "sum", "context_id": "ctx-1"},
    {"owner": "bob", "agent": "sum", "context_id": "ctx-1", "status": S.COMPLETED},
    {"owner": "alice", "agent": "qa", "status": S.PAUSED},
    {"owner": "alice", "agent": "qa", "status": [S.PAUSED, S.FAILED]},
    {"status": S.RUNNING},
    {"status": [S.COMPLETED, S.CANCELLED], "agent": "sum"},
    {"context_id": "ctx-2"},
    {"owner": "carol", "agent": "qa"},
    {"owner": "alice", "agent": "qa", "context_id": "nope"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=[str(f) for f in FILTERS])
def test_filters_and_counts(store: Store, filters: dict[str, Any]) -> None:
    records = _population(store)
    wanted = set(filters.get("status", [])) if "status" in filters else None
    if isinstance(filters.get("status"), str):
        wanted = {filters["status"]}
    expected = [
        r.run_id
        for r in records
        if all(getattr(r, k) == v for k, v in filters.items() if k != "status")
        and (wanted is None or r.status in wanted)
    ]
    for limit in (4, 50):
        assert listed(store, limit, **filters) == expected, limit
    assert store.count_runs(**filters) == len(expected)


def test_listed_runs_carry_all_but_attrs(store: Store) -> None:
    record = run(
        "r1",
        owner="o",
        agent="a",
        context_id="c",
        error="e",
        prompt="p?",
        input_key="k",
        expires_at=1_800_000_000,
        attrs={"history": ["x" * 1000]},
        summary={"submitted": True},
    )
    store.create_run(record)
    (got,) = store.list_runs(owner="o", agent="a").runs
    assert got == dataclasses.replace(record, attrs={})
    got.summary["submitted"] = False  # type: ignore[index]
    assert store.get_run("r1").summary == {"submitted": True}


def test_a_token_is_a_position_whatever_the_filters(store: Store) -> None:
    for i in range(6):
        store.create_run(run(f"r{i}", i, owner="o", agent="a"))
    first = store.list_runs(limit=2, owner="o", agent="a")
    assert [r.run_id for r in first.runs] == ["r5", "r4"]
    rest = store.list_runs(limit=10, next_token=first.next_token)
    assert [r.run_id for r in rest.runs] == ["r3", "r2", "r1", "r0"]
    made = encode_token(f"{T0 + 2:020.6f}#r2")
    assert [r.run_id for r in store.list_runs(next_token=made).runs] == ["r1", "r0"]


@pytest.mark.parametrize(
    "token", ["not a token", encode_token("2020#x"), "eyJhZnRlciI6IDV9", encode_token("")]
)
def test_bad_tokens_and_limits_are_refused(store: Store, token: str) -> None:
    with pytest.raises(ConfigError, match="next_token"):
        store.list_runs(next_token=token)
    with pytest.raises(ConfigError, match="limit"):
        store.list_runs(limit=0)
    with pytest.raises(ConfigError, match="status"):
        store.list_runs(status="bogus")  # type: ignore[arg-type]


def test_keys_cannot_be_forged_by_hash_signs(store: Store) -> None:
    store.create_run(run("r1", owner="a#b", agent="c"))
    store.create_run(run("r2", owner="a", agent="b#c"))
    assert listed(store, owner="a#b", agent="c") == ["r1"]
    assert listed(store, owner="a", agent="b#c") == ["r2"]
    assert listed(store, owner="a", agent="b") == []


# -- DynamoDB only: what a listing reads ------------------------------------------------------


def _meter(kit: DynamoKit) -> dict[str, int]:
    """Queries sent and items DynamoDB evaluated (ScannedCount) for them."""
    seen = {"queries": 0, "scanned": 0}
    # the store sends a listing's shard Queries from a thread pool: count under a lock
    lock = threading.Lock()

    def before(**_: Any) -> None:
        with lock:
            seen["queries"] += 1

    def after(parsed: dict[str, Any], **_: Any) -> None:
        with lock:
            seen["scanned"] += int(parsed.get("ScannedCount", 0))

    kit.client.meta.events.register("before-call.dynamodb.Query", before)
    kit.client.meta.events.register("after-call.dynamodb.Query", after)
    return seen


@pytest.fixture
def wide(dynamo: DynamoKit) -> DynamoKit:
    """The moto table behind a store with the default number of shards."""
    return DynamoKit(DynamoDBStore(TABLE, dynamo.client), dynamo.client)


def _bulk(kit: DynamoKit, owner: str, count: int, agent: str = "qa") -> None:
    """``count`` runs of one owner, written 25 at a time (the store is not under test)."""
    items = [run_item(run(f"{owner}-{i:05d}", i, owner=owner, agent=agent)) for i in range(count)]
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        kit.client.batch_write_item(RequestItems={TABLE: requests})


def test_a_callers_cost_does_not_depend_on_other_principals(wide: DynamoKit) -> None:
    dynamo = wide
    seen = _meter(dynamo)
    store = dynamo.store
    empty_before = dict(seen)
    assert store.list_runs(owner="nobody", agent="qa").runs == []
    alone = {k: seen[k] - empty_before[k] for k in seen}
    _bulk(dynamo, "busy", 2_000)
    _bulk(dynamo, "small", 3)
    before = dict(seen)
    assert store.list_runs(owner="nobody", agent="qa").runs == []
    assert store.count_runs(owner="nobody", agent="qa") == 0
    assert [r.run_id for r in store.list_runs(owner="small", agent="qa").runs] == [
        "small-00002",
        "small-00001",
        "small-00000",
    ]
    assert store.count_runs(owner="small", agent="qa", status=S.RUNNING) == 3
    crowded = {k: seen[k] - before[k] for k in seen}
    assert alone == {"queries": LIST_SHARDS, "scanned": 0}
    assert crowded == {"queries": 4 * LIST_SHARDS, "scanned": 6}


def test_a_page_reads_about_a_page(wide: DynamoKit) -> None:
    dynamo = wide
    _bulk(dynamo, "busy", 600)
    seen = _meter(dynamo)
    page = dynamo.store.list_runs(owner="busy", agent="qa", limit=50)
    assert [r.run_id for r in page.runs] == [f"busy-{i:05d}" for i in range(599, 549, -1)]
    assert seen["queries"] <= 2 * LIST_SHARDS
    assert seen["scanned"] <= 50 + 3 * LIST_SHARDS


def test_status_goes_through_the_key(wide: DynamoKit) -> None:
    dynamo = wide
    _bulk(dynamo, "busy", 400)
    for i in range(0, 400, 40):
        dynamo.store.update_run(f"busy-{i:05d}", {"status": S.COMPLETED, "updated_at": T0 + i})
    seen = _meter(dynamo)
    got = listed(dynamo.store, 50, owner="busy", agent="qa", status=S.COMPLETED)
    assert got == [f"busy-{i:05d}" for i in range(360, -1, -40)]
    assert seen["scanned"] == 10  # only the completed runs' entries are read


def test_runs_spread_over_every_shard(dynamo: DynamoKit) -> None:
    shards = {shard_of(f"r{i}") for i in range(2_000)}
    assert shards == set(range(LIST_SHARDS))
    counts = [sum(1 for i in range(3_200) if shard_of(f"r{i}") == s) for s in range(LIST_SHARDS)]
    assert max(counts) < 2 * min(counts)


def test_index_items_hold_no_attrs(dynamo: DynamoKit) -> None:
    table = dynamo.client.describe_table(TableName=TABLE)["Table"]
    for index in table["GlobalSecondaryIndexes"]:
        projection = index["Projection"]
        assert projection["ProjectionType"] == "INCLUDE"
        assert "attrs" not in projection["NonKeyAttributes"]


def test_no_partition_holds_every_run(wide: DynamoKit) -> None:
    dynamo = wide
    for i in range(40):
        dynamo.store.create_run(run(f"r{i}", i, owner="o", agent="a", context_id="c"))
    item = dynamo.client.get_item(
        TableName=TABLE, Key={"pk": {"S": "RUN#r7"}, "sk": {"S": "META"}}
    )["Item"]
    partitions = {item[k]["S"] for k in ("lpk", "cpk", "apk")}
    assert all(p.endswith(f"#{shard_of('r7')}") for p in partitions)
    assert not any(k.startswith("gsi") for k in item)
    for attr in ("lpk", "cpk", "apk"):
        values = set()
        for i in range(40):
            key = {"pk": {"S": f"RUN#r{i}"}, "sk": {"S": "META"}}
            values.add(dynamo.client.get_item(TableName=TABLE, Key=key)["Item"][attr]["S"])
        assert len(values) > LIST_SHARDS // 3, attr


def _step(run_id: str, seq: int) -> Checkpoint:
    return Checkpoint(run_id, seq, b"x", seq == 0, T0 + seq)


def test_every_status_write_moves_the_run_in_listings(store: Store) -> None:
    for name in ("a", "b", "c"):
        store.start_run(run(name, 0, owner="o", agent="q"), _step(name, 0))
    done = {"status": S.COMPLETED, "updated_at": T0 + 5}
    store.commit_step(_step("a", 1), done, expect_status={S.RUNNING})
    store.acquire_lease("b", "me", T0 + 60, now=T0 + 1, changes={"updated_at": T0 + 6})
    store.update_run("c", {"status": S.PAUSED})  # no time given: read, then guarded
    assert listed(store, owner="o", agent="q") == ["b", "a", "c"]
    assert listed(store, owner="o", agent="q", status=S.COMPLETED) == ["a"]
    assert listed(store, owner="o", agent="q", status=S.RUNNING) == ["b"]
    assert listed(store, owner="o", agent="q", status=S.PAUSED) == ["c"]
    assert store.count_runs(owner="o", agent="q", status=[S.PAUSED, S.RUNNING]) == 2
