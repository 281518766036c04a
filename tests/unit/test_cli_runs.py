"""The CLI side of the console: runs list filters and JSON, runs show --at/--diff, fork --set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pflambda.aws.config import Settings, reset_memory_ports
from pflambda.cli import main
from tests.flows.console import as_agent


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("PFLAMBDA_STORE", "memory")
    reset_memory_ports()
    yield Settings.from_env().engine()
    reset_memory_ports()


def out_json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_runs_list_filters_and_json(engine: Any, capsys: pytest.CaptureFixture[str]) -> None:
    engine.start("tests.flows.console:review", {"topic": "a"}, run_id="p", **as_agent("w"))
    engine.start("tests.flows.sample:loop", {"limit": 1}, run_id="c")
    engine.start("tests.flows.sample:loop", {"limit": 3}, run_id="s", max_steps=1)
    capsys.readouterr()
    assert main(["runs", "list", "--json"]) == 0
    assert [r["run_id"] for r in out_json(capsys)["runs"]] == ["s", "c", "p"]
    assert main(["runs", "list", "--json", "--status", "completed"]) == 0
    assert [r["run_id"] for r in out_json(capsys)["runs"]] == ["c"]
    assert main(["runs", "list", "--json", "--agent", "w"]) == 0
    rows = out_json(capsys)["runs"]
    assert [(r["run_id"], r["node"], r["steps"]) for r in rows] == [("p", "Editing/Review", 1)]
    assert main(["runs", "list", "--json", "--stalled"]) == 0
    # "s" stopped at its step budget and let its lease lapse: nobody drives it
    assert [r["run_id"] for r in out_json(capsys)["runs"]] == ["s"]
    assert main(["runs", "list", "--status", "paused"]) == 0
    text = capsys.readouterr().out
    assert "p " in text
    assert "Editing/Review" in text
    assert "c " not in text.split("\n", 1)[1]


def test_runs_show_at_a_step_and_its_diff(engine: Any, capsys: pytest.CaptureFixture[str]) -> None:
    engine.start("tests.flows.console:review", {"topic": "cats"}, run_id="r")
    capsys.readouterr()
    assert main(["runs", "show", "r", "--at", "1"]) == 0
    shared = {"topic": "cats", "draft": "About cats", "words": 2}
    assert out_json(capsys) == {"seq": 1, "shared": shared, "display": shared, "offloaded": {}}
    assert main(["runs", "show", "r", "--at", "1", "--diff"]) == 0
    changes = out_json(capsys)["changes"]
    assert [(c["op"], c["path"], c["after"]) for c in changes] == [
        ("added", ["draft"], "About cats"),
        ("added", ["words"], 2),
    ]
    assert main(["runs", "show", "r", "--at", "7"]) == 1
    assert "run r has no checkpoint 7" in capsys.readouterr().err
    assert main(["runs", "show", "r", "--diff"]) == 2
    assert main(["runs", "show", "r"]) == 0
    assert "Draft" in capsys.readouterr().out


def test_fork_with_set(engine: Any, capsys: pytest.CaptureFixture[str]) -> None:
    engine.start("tests.flows.console:review", {"topic": "cats"}, run_id="r")
    capsys.readouterr()
    code = main(
        [
            "fork",
            "r",
            "--at",
            "1",
            "--set",
            'draft="About owls"',
            "--set",
            'verdict="yes"',
            "--set",
            'tags={"$pf": "tuple", "v": [1]}',
        ]
    )
    assert code == 0  # the verdict was set: the fork runs to the end
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["status"] == "completed"
    shared = engine.state(doc["run_id"])[0]
    assert shared["published"] == "ABOUT OWLS"
    assert shared["tags"] == (1,)
    assert main(["fork", "r", "--at", "1", "--set", "draft=About owls"]) == 2
    assert "--set draft: not JSON" in capsys.readouterr().err
    assert main(["fork", "r", "--at", "1", "--set", "oops"]) == 2


def test_runs_pinned_shows_which_versions_live_runs_need(
    engine: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.site = "research:3"
    engine.start("tests.flows.console:review", {"topic": "a"}, run_id="p3")  # paused
    engine.start("tests.flows.sample:loop", {"limit": 3}, run_id="r3", max_steps=1)  # running
    engine.start("tests.flows.sample:loop", {"limit": 1}, run_id="done")  # completed: not live
    engine.site = "research:2"
    engine.start("tests.flows.console:review", {"topic": "b"}, run_id="p2")
    engine.site = None
    engine.start("tests.flows.console:review", {"topic": "c"}, run_id="off")
    capsys.readouterr()
    assert main(["runs", "pinned", "--json"]) == 0
    pins = out_json(capsys)["pinned"]
    assert [(p["pinned"], p["runs"]) for p in pins] == [
        ("research:3", 2),
        (None, 1),
        ("research:2", 1),
    ]
    assert pins[0]["example"] == "p3"  # the oldest of them
    assert main(["runs", "pinned"]) == 0
    text = capsys.readouterr().out
    assert "research:3" in text
    assert "(nowhere: not started on a published version)" in text


def test_runs_backfill_prints_progress_and_lists_old_runs(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from tests.contract.test_listing_backfill import OLD, old_item

    monkeypatch.setenv("PFLAMBDA_STORE", "sqlite")
    monkeypatch.setenv("PFLAMBDA_DIR", str(tmp_path))
    Settings.from_env().ports.store.list_runs()  # makes the file and its schema
    with sqlite3.connect(tmp_path / "pflambda.db") as conn:
        for i, run_id in enumerate(OLD):
            item = old_item(run_id, i)
            row = (run_id, item["gsi1sk"]["S"], "ctx", "ada", json.dumps(item))
            conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)", row)
    assert main(["runs", "backfill", "--page-size", "4"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == (
        "page 1: 4 runs without listing keys found, 4 keyed, 0 keyed meanwhile by another "
        "writer, 0 deleted meanwhile"
    )
    assert len(text) == 4
    assert text[-1].startswith("done: 11 runs given listing keys")
    assert main(["runs", "list", "--json", "--agent", "qa", "--limit", "50"]) == 0
    assert [r["run_id"] for r in out_json(capsys)["runs"]] == list(reversed(OLD))
    assert main(["runs", "backfill"]) == 0
    assert "done: 0 runs" in capsys.readouterr().out
    reset_memory_ports()  # closes the embedded store it opened


def test_runs_backfill_on_the_memory_store_has_nothing_to_do(
    engine: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "backfill"]) == 0
    assert "nothing to backfill in MemoryStore" in capsys.readouterr().out
