"""Configuration from the environment: defaults, and clear errors for bad values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pflambda.aws.config import Settings, reset_memory_ports
from pflambda.blobs.disk import DiskBlobStore
from pflambda.errors import ConfigError
from pflambda.queues.sqlite import SQLiteQueue
from pflambda.stores.sqlite import SQLiteStore


def test_defaults_outside_and_on_lambda() -> None:
    assert Settings.from_env({}).backend == "sqlite"
    on_lambda = Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f"})
    assert on_lambda.backend == "dynamodb"
    assert (on_lambda.table, on_lambda.bucket, on_lambda.queue_name) == (
        "pflambda-runs",
        "pflambda-state",
        "pflambda-work",
    )


def test_values_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "PFLAMBDA_STORE": "dynamodb",
            "PFLAMBDA_TABLE": "t",
            "PFLAMBDA_BUCKET": "b",
            "PFLAMBDA_QUEUE_URL": "https://sqs/q",
            "PFLAMBDA_MARGIN_MS": "5000",
            "PFLAMBDA_TTL_DAYS": "7",
            "PFLAMBDA_PAUSED_TTL_DAYS": "120",
            "PFLAMBDA_ALLOW_PRIVATE_PUSH": "1",
            "PFLAMBDA_LIST_SHARDS": "100",
        }
    )
    assert settings == Settings(
        "dynamodb",
        "t",
        "b",
        "pflambda-work",
        "https://sqs/q",
        5000,
        7,
        True,
        paused_ttl_days=120,
        list_shards=100,
    )
    engine = dataclasses.replace(settings, backend="memory").engine()
    assert (engine.ttl_days, engine.paused_ttl_days) == (7, 120)
    assert Settings.from_env({}).list_shards == 64


def test_retention_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.ttl_days, settings.paused_ttl_days) == (30, 90)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PFLAMBDA_STORE": "redis"}, "PFLAMBDA_STORE must be one of sqlite, memory, dynamodb"),
        ({"PFLAMBDA_MARGIN_MS": "soon"}, "PFLAMBDA_MARGIN_MS must be a whole number"),
        ({"PFLAMBDA_TTL_DAYS": "0"}, "PFLAMBDA_TTL_DAYS must be from 1 to 365 days, got 0"),
        ({"PFLAMBDA_PAUSED_TTL_DAYS": "366"}, "PFLAMBDA_PAUSED_TTL_DAYS must be from 1 to 365"),
        ({"PFLAMBDA_PAUSED_TTL_DAYS": "a month"}, "PFLAMBDA_PAUSED_TTL_DAYS must be a whole"),
        ({"PFLAMBDA_MARGIN_MS": "-1"}, "PFLAMBDA_MARGIN_MS must be >= 0"),
        ({"PFLAMBDA_LIST_SHARDS": "many"}, "PFLAMBDA_LIST_SHARDS must be a whole number"),
        ({"PFLAMBDA_LIST_SHARDS": "0"}, "PFLAMBDA_LIST_SHARDS must be between 1 and 1000"),
        ({"PFLAMBDA_LIST_SHARDS": "1001"}, "PFLAMBDA_LIST_SHARDS must be between 1 and 1000"),
    ],
)
def test_bad_values_are_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_the_embedded_default_lives_in_dot_pflambda_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.home == tmp_path / ".pflambda"
    assert settings.describe() == f"{tmp_path / '.pflambda' / 'pflambda.db'} (embedded SQLite)"
    moved = Settings.from_env({"PFLAMBDA_DIR": str(tmp_path / "elsewhere")})
    assert moved.home == tmp_path / "elsewhere"


def test_embedded_ports_are_shared_per_directory_and_persist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    reset_memory_ports()
    try:
        ports = Settings.from_env({}).ports
        assert isinstance(ports.store, SQLiteStore)
        assert isinstance(ports.blobs, DiskBlobStore)
        assert isinstance(ports.queue, SQLiteQueue)
        assert Settings.from_env({}).ports is ports
        flow = "tests.flows.sample:big_state"  # ~200 KB a step: values go to blobs
        outcome = Settings.from_env({}).engine().start(flow, {"limit": 3})
        assert outcome.status == "completed"
        reset_memory_ports()  # as if a new process: nothing cached, everything reopened
        shared, _, seq = Settings.from_env({}).engine().state(outcome.run_id)
        assert (shared, seq) == (outcome.shared, outcome.seq)
        assert any((tmp_path / ".pflambda" / "blobs").rglob("*"))
    finally:
        reset_memory_ports()


def test_memory_ports_describe_themselves() -> None:
    assert "memory" in Settings.from_env({"PFLAMBDA_STORE": "memory"}).describe()
    assert (
        "'t'" in Settings.from_env({"PFLAMBDA_STORE": "dynamodb", "PFLAMBDA_TABLE": "t"}).describe()
    )


def test_a_prefix_names_the_table_bucket_and_queue() -> None:
    settings = Settings.from_env({"PFLAMBDA_PREFIX": "shop-"})
    assert (settings.table, settings.bucket, settings.queue_name) == (
        "shop-runs",
        "shop-state",
        "shop-work",
    )
    explicit = Settings.from_env({"PFLAMBDA_PREFIX": "shop-", "PFLAMBDA_TABLE": "t"})
    assert explicit.table == "t"
    assert explicit.bucket == "shop-state"
    assert Settings.from_env({}).table == "pflambda-runs"


@pytest.mark.parametrize("prefix", ["Shop-", "-shop", "shop_", "a" * 41, ""])
def test_a_prefix_must_fit_every_resource_name(prefix: str) -> None:
    with pytest.raises(ConfigError, match="PFLAMBDA_PREFIX must be"):
        Settings.from_env({"PFLAMBDA_PREFIX": prefix})
