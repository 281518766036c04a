"""The embedded ports across processes: what the shared contract cannot show in one.

Each race starts several Python processes on one SQLite file; they wait for a "go" file
and then all try the same conditional write. Whatever the interleaving, exactly one wins.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pflambda.blobs.disk import DiskBlobStore
from pflambda.clock import FakeClock
from pflambda.embedded import SCHEMA_VERSION, Database
from pflambda.errors import ConfigError, RetryableError
from pflambda.queues.sqlite import SQLiteQueue
from pflambda.stores.base import Checkpoint, FanOut, RunRecord, RunStatus
from pflambda.stores.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
RACERS = 4

_PRELUDE = """
import json, sys, time
from pathlib import Path
from pflambda.errors import CheckpointConflict
from pflambda.stores.base import Checkpoint
from pflambda.stores.sqlite import SQLiteStore
from pflambda.queues.sqlite import SQLiteQueue
db, go, who = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
while not go.exists():
    time.sleep(0.005)
"""


def _race(tmp_path: Path, body: str) -> list[str]:
    """Run ``body`` in :data:`RACERS` processes at once; their stdout lines."""
    go = tmp_path / "go"
    script = _PRELUDE + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "pflambda.db"), str(go), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(RACERS)
    ]
    go.touch()
    lines = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        lines += out.splitlines()
    return lines


def _record(run_id: str = "r1") -> RunRecord:
    return RunRecord(run_id, "m:f", "fp", RunStatus.RUNNING, 1.0, 1.0)


def test_processes_racing_on_one_checkpoint_commit_it_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "pflambda.db")
    store.create_run(_record())
    results = _race(
        tmp_path,
        """
        store = SQLiteStore(db)
        try:
            store.put_checkpoint(Checkpoint("r1", 1, who.encode(), True, 2.0))
            print("won")
        except CheckpointConflict:
            print("lost")
        """,
    )
    assert sorted(results) == ["lost"] * (RACERS - 1) + ["won"]
    (stored,) = store.load_checkpoints("r1")
    assert stored.seq == 1
    assert stored.body.decode() in {str(n) for n in range(RACERS)}


def test_processes_racing_on_a_fanout_record_each_chunk_once_and_one_claims(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "pflambda.db")
    store.create_fanout(FanOut("r1", 3, "Map", chunks=2, items=20, created_at=1.0))
    results = _race(
        tmp_path,
        """
        store = SQLiteStore(db)
        recorded = [store.record_chunk("r1", 3, c, who.encode()) for c in (0, 1)]
        print(json.dumps({"recorded": sum(recorded), "claimed": store.claim_fanin("r1", 3)}))
        """,
    )
    outcomes = [json.loads(line) for line in results]
    assert sum(o["recorded"] for o in outcomes) == 2
    assert sum(o["claimed"] for o in outcomes) <= 1
    header = store.get_fanout("r1", 3)
    assert header.done == 2
    assert store.claim_fanin("r1", 3) is not any(o["claimed"] for o in outcomes)


def test_processes_receiving_from_one_queue_never_share_a_delivery(tmp_path: Path) -> None:
    queue = SQLiteQueue(tmp_path / "pflambda.db")
    queue.send([f"m{n}" for n in range(40)])
    results = _race(
        tmp_path,
        """
        queue = SQLiteQueue(db)
        got = []
        while batch := queue.receive(3, visibility_timeout=600):
            got += [m.body for m in batch]
        print(" ".join(got))
        """,
    )
    assert sorted(" ".join(results).split()) == sorted(f"m{n}" for n in range(40))


def test_runs_outlive_the_process_that_wrote_them(tmp_path: Path) -> None:
    path = tmp_path / "pflambda.db"
    first = SQLiteStore(path)
    first.create_run(_record())
    first.put_checkpoint(Checkpoint("r1", 0, b"state", True, 1.0))
    first.close()
    again = SQLiteStore(path)
    assert again.get_run("r1") == _record()
    assert [c.body for c in again.load_checkpoints("r1")] == [b"state"]
    queue = SQLiteQueue(path)
    queue.send(["later"])
    queue.db.close()
    assert [m.body for m in SQLiteQueue(path).receive()] == ["later"]


def test_the_file_is_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "pflambda.db", timeout=7)
    conn = store.db.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 7000
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_writer_held_up_too_long_gets_a_retryable_error(tmp_path: Path) -> None:
    path = tmp_path / "pflambda.db"
    store = SQLiteStore(path, timeout=0.05)
    store.create_run(_record())
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(RetryableError, match=r"locked by another process.*try again"):
            store.update_run("r1", {"error": "x"})
        assert store.get_run("r1").error is None  # WAL: readers are not held up
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.update_run("r1", {"error": "x"}).error == "x"


def test_a_file_from_a_newer_pflambda_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pflambda.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ConfigError, match=r"newer pflambda.*PFLAMBDA_DIR"):
        SQLiteStore(path).get_run("r1")


def test_a_file_that_is_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "pflambda.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match=str(path)):
        SQLiteStore(path).get_run("r1")


def test_connections_are_per_thread(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(db.connection()))
    thread.start()
    thread.join()
    assert seen[0] is not db.connection()
    assert db.connection() is db.connection()
    db.close()


def test_a_long_poll_sees_what_another_connection_sends(tmp_path: Path) -> None:
    receiver = SQLiteQueue(tmp_path / "q.db")  # the real clock: wait_seconds waits
    sender = SQLiteQueue(tmp_path / "q.db")
    timer = threading.Timer(0.2, lambda: sender.send(["late"]))
    timer.start()
    started = time.monotonic()
    got = receiver.receive(wait_seconds=10)
    timer.join()
    assert [m.body for m in got] == ["late"]
    assert time.monotonic() - started < 10


def test_named_queues_in_one_file_are_separate(tmp_path: Path) -> None:
    clock = FakeClock()
    work = SQLiteQueue(tmp_path / "q.db", "work", clock=clock)
    other = SQLiteQueue(tmp_path / "q.db", "other", clock=clock)
    work.send(["a"])
    assert other.receive() == []
    (message,) = work.receive()
    other.ack([message.receipt])  # another queue's receipt deletes nothing
    assert work.approximate_size() == 1


def test_a_put_leaves_no_temporary_files_and_bad_keys_are_refused(tmp_path: Path) -> None:
    blobs = DiskBlobStore(tmp_path / "blobs")
    blobs.put("runs/r1/abc", b"x")
    assert sorted(p.name for p in (tmp_path / "blobs" / "runs" / "r1").iterdir()) == ["abc"]
    for key in ("", "/etc/passwd", "runs/../../x", "runs//x", "runs/./x", "a\\b"):
        with pytest.raises(ValueError, match="invalid blob key"):
            blobs.put(key, b"x")
