"""Two projects with different ``PFLAMBDA_PREFIX`` share one emulator and not their work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pflambda.aws.config import Settings
from pflambda.local.emulator import Emulator, start_emulator
from pflambda.local.session import endpoint_env


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    started = start_emulator()
    yield started
    started.stop()


def project(
    emulator: Emulator, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, dict[str, str]]:
    """What `pflambda local --endpoint-url` does for a project with this prefix."""
    monkeypatch.setenv("PFLAMBDA_PREFIX", prefix)
    for key in ("PFLAMBDA_TABLE", "PFLAMBDA_BUCKET", "PFLAMBDA_QUEUE", "PFLAMBDA_QUEUE_URL"):
        monkeypatch.delenv(key, raising=False)
    env = endpoint_env(emulator.endpoint)
    settings = Settings.from_env({**env, "PFLAMBDA_PREFIX": prefix})
    return settings, env


def test_each_prefix_gets_its_own_queue_table_and_bucket(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pflambda.aws.clients import reset_clients

    shop, shop_env = project(emulator, "shop-", monkeypatch)
    blog, blog_env = project(emulator, "blog-", monkeypatch)
    assert shop_env["PFLAMBDA_QUEUE_URL"] != blog_env["PFLAMBDA_QUEUE_URL"]
    assert shop.table == "shop-runs"
    assert blog.table == "blog-runs"

    shop.ports.queue.send(["for the shop"])
    assert blog.ports.queue.receive(10) == []  # the blog's poller does not take it
    got = shop.ports.queue.receive(10, wait_seconds=1)
    assert [m.body for m in got] == ["for the shop"]

    run = shop.engine().start("tests.flows.sample:loop", {"limit": 2})
    assert [r.run_id for r in shop.ports.store.list_runs(limit=5).runs] == [run.run_id]
    assert blog.ports.store.list_runs(limit=5).runs == []
    reset_clients()
