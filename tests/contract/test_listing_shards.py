"""Changing the listing shard count of a live DynamoDB table hides no run.

A run's shard is fixed when it is created (hash of its id mod the writer's count); the
table records the largest count any writer used and every listing asks that many
(pflambda.stores._listing_shards), so runs written under an older count stay listed after
the count goes up or down, even by readers still configured with the old count.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pflambda.errors import ConfigError
from pflambda.stores._listing import shard_of
from pflambda.stores._listing_shards import SHARDS_KEY
from pflambda.stores.dynamodb import DynamoDBStore
from tests.contract.conftest import TABLE, DynamoKit
from tests.contract.test_store_listing import listed, run


def _store(kit: DynamoKit, shards: int) -> DynamoDBStore:
    return DynamoDBStore(TABLE, kit.client, shards=shards)


def _create(store: DynamoDBStore, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}{i:03d}" for i in range(count)]
    for i, run_id in enumerate(ids):
        store.create_run(run(run_id, i, owner="ada", agent="qa"))
    return ids


def _queries(kit: DynamoKit) -> dict[str, int]:
    seen = {"queries": 0}
    # the store sends a listing's shard Queries from a thread pool: count under a lock
    lock = threading.Lock()

    def count(**_: Any) -> None:
        with lock:
            seen["queries"] += 1

    kit.client.meta.events.register("before-call.dynamodb.Query", count)
    return seen


def _recorded(kit: DynamoKit) -> int:
    item = kit.client.get_item(TableName=TABLE, Key=SHARDS_KEY, ConsistentRead=True)["Item"]
    return int(item["shards"]["N"])


def test_raising_the_count_keeps_old_runs_and_old_readers_see_new_ones(dynamo: DynamoKit) -> None:
    old = _create(_store(dynamo, 4), "old-", 30)
    new = _create(_store(dynamo, 12), "new-", 30)
    assert any(shard_of(run_id, 12) >= 4 for run_id in new)  # some live where 4 never looks
    everything = sorted(old + new)
    for reader in (_store(dynamo, 4), _store(dynamo, 12)):  # a half-updated deployment
        assert sorted(listed(reader, 7, owner="ada", agent="qa")) == everything
        assert sorted(listed(reader, 50)) == everything
        assert reader.count_runs(owner="ada", agent="qa") == 60
    assert _recorded(dynamo) == 12


def test_lowering_the_count_keeps_runs_written_under_the_higher_one(dynamo: DynamoKit) -> None:
    old = _create(_store(dynamo, 12), "old-", 30)
    assert any(shard_of(run_id, 12) >= 3 for run_id in old)
    lowered = _store(dynamo, 3)
    new = _create(lowered, "new-", 10)
    assert {shard_of(run_id, 3) for run_id in new} <= {0, 1, 2}
    seen = _queries(dynamo)
    assert sorted(listed(lowered, 100, owner="ada", agent="qa")) == sorted(old + new)
    assert seen["queries"] == 12  # max(own 3, recorded 12) partitions, one Query each
    assert _recorded(dynamo) == 12  # never lowered


def test_a_status_write_keeps_a_run_in_its_shard(dynamo: DynamoKit) -> None:
    _create(_store(dynamo, 12), "old-", 20)
    lowered = _store(dynamo, 2)
    for i in range(20):
        lowered.update_run(f"old-{i:03d}", {"status": "completed", "updated_at": 1e9 + 1e6 + i})
    got = listed(lowered, 6, owner="ada", agent="qa", status="completed")
    assert got == [f"old-{i:03d}" for i in range(19, -1, -1)]


def test_a_reader_alone_records_nothing(dynamo: DynamoKit) -> None:
    assert _store(dynamo, 5).list_runs().runs == []
    assert "Item" not in dynamo.client.get_item(TableName=TABLE, Key=SHARDS_KEY)


@pytest.mark.parametrize("shards", [0, -1, 1001, 2.5, "64", True])
def test_bad_counts_are_refused(dynamo: DynamoKit, shards: Any) -> None:
    with pytest.raises(ConfigError, match="listing shards must be"):
        DynamoDBStore(TABLE, dynamo.client, shards=shards)


def test_the_environment_sets_the_count_of_the_deployed_store(dynamo: DynamoKit) -> None:
    from pflambda.aws.config import Settings

    env = {"PFLAMBDA_STORE": "dynamodb", "PFLAMBDA_TABLE": TABLE, "PFLAMBDA_LIST_SHARDS": "7"}
    settings = Settings.from_env({**env, "PFLAMBDA_QUEUE_URL": "https://sqs.test/q"})
    store = settings.ports.store
    assert isinstance(store, DynamoDBStore)
    store.create_run(run("r1", owner="ada", agent="qa"))
    assert _recorded(dynamo) == 7
