"""``pflambda runs prune`` / ``runs reap`` on the embedded store: expired runs, old shapes and
orphaned blob folders go (a line each); everything live stays."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pflambda.aws.config import Settings
from pflambda.blobs.disk import DiskBlobStore
from pflambda.cli import main
from pflambda.clock import FakeClock
from pflambda.engine.runner import Engine
from pflambda.errors import RunNotFound
from pflambda.stores.base import RunStatus

DAY = 86_400
BIG = {"limit": 1, "doc": b"\x03" * 200_000}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PFLAMBDA_STORE", "sqlite")
    monkeypatch.setenv("PFLAMBDA_DIR", str(tmp_path / ".pflambda"))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield tmp_path / ".pflambda"


def engine_at(days_ago: float) -> Engine:
    """An engine on the project's embedded ports whose clock reads ``days_ago`` days ago."""
    settings = Settings.from_env()
    clock = FakeClock(start=time.time() - days_ago * DAY)
    return Engine(settings.ports.store, settings.ports.blobs, clock=clock)


def age(path: Path, days: float) -> None:
    stamp = time.time() - days * DAY
    for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
        os.utime(file, (stamp, stamp))


def test_prune_deletes_expired_runs_old_shapes_and_orphans(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = engine_at(31)
    done = old.start("tests.flows.sample:approval", BIG, run_id="finished")
    old.resume(done.run_id, reply="yes")  # completed 31 days ago: expired
    old.start("tests.flows.sample:approval", BIG, run_id="waiting")  # paused: 90 days
    fresh = engine_at(0).start("tests.flows.sample:approval", BIG, run_id="fresh")
    blobs = Settings.from_env().ports.blobs
    assert isinstance(blobs, DiskBlobStore)
    blobs.put("runs/orphan/abc", b"left by a start that died")
    blobs.put("runs/young-orphan/abc", b"maybe a start in progress")
    blobs.put("shapes/ancient", b"{}")
    age(home / "blobs" / "runs" / "orphan", 2)
    age(home / "blobs" / "shapes" / "ancient", 401)
    capsys.readouterr()

    assert main(["runs", "prune"]) == 0
    out = capsys.readouterr().out
    assert "run finished: " in out
    assert "items" in out
    assert "run orphan: never stored" in out
    assert "shape ancient" in out
    assert out.strip().endswith("pruned 1 expired run(s), 1 old shape(s), 1 orphaned folder(s)")
    store = Settings.from_env().ports.store
    with pytest.raises(RunNotFound):
        store.get_run("finished")
    assert not (home / "blobs" / "runs" / "finished").exists()
    assert not (home / "blobs" / "runs" / "orphan").exists()
    assert (home / "blobs" / "runs" / "young-orphan").exists()
    assert not (home / "blobs" / "shapes" / "ancient").exists()
    assert store.get_run("waiting").status == RunStatus.PAUSED
    assert store.get_run(fresh.run_id).status == RunStatus.PAUSED
    assert engine_at(0).resume("waiting", reply="yes").shared["doc"] == BIG["doc"]

    assert main(["runs", "prune"]) == 0  # nothing left to do
    assert capsys.readouterr().out.strip() == "nothing to prune"


def test_reap_refuses_a_live_run_and_finishes_an_expired_one(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine_at(0).start("tests.flows.sample:approval", BIG, run_id="live")
    engine_at(100).start("tests.flows.sample:approval", BIG, run_id="dead")
    capsys.readouterr()
    assert main(["runs", "reap", "live"]) == 1
    assert "has a record that has not expired" in capsys.readouterr().out
    assert main(["runs", "reap", "dead"]) == 0
    assert "run dead: " in capsys.readouterr().out
    store: Any = Settings.from_env().ports.store
    assert store.load_checkpoints("dead") == []
    assert store.get_run("live").status == RunStatus.PAUSED


def test_prune_on_aws_says_the_ttl_does_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moto import mock_aws

    from pflambda.aws.clients import reset_clients

    monkeypatch.setenv("PFLAMBDA_STORE", "dynamodb")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PFLAMBDA_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    }.items():
        monkeypatch.setenv(key, value)
    reset_clients()
    with mock_aws():
        assert main(["runs", "prune"]) == 0
    reset_clients()
    assert "DynamoDB's TTL and ReaperFunction" in capsys.readouterr().out
