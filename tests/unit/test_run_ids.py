"""Run ids name a DynamoDB partition and a blob folder: only safe characters are taken."""

from __future__ import annotations

import pytest

from pflambda.blobs.memory import MemoryBlobStore
from pflambda.engine.runner import Engine
from pflambda.stores.memory import MemoryStore

LOOP = "tests.flows.sample:loop"


@pytest.fixture
def engine() -> Engine:
    return Engine(MemoryStore(), MemoryBlobStore())


@pytest.mark.parametrize("bad", ["a/b", "../up", "x" * 129, "spa ce", "hash#key", "é"])
def test_a_start_refuses_an_unsafe_run_id_and_stores_nothing(engine: Engine, bad: str) -> None:
    with pytest.raises(ValueError, match=r"run_id must be 1-128 letters, digits or \._:-"):
        engine.start(LOOP, {"limit": 2}, run_id=bad)
    assert engine.store.list_runs().runs == []


def test_safe_ids_and_the_default_uuid_are_taken(engine: Engine) -> None:
    assert engine.start(LOOP, {"limit": 2}, run_id="a.b_c:d-" + "x" * 120).run_id.startswith("a.b")
    generated = engine.start(LOOP, {"limit": 2}).run_id
    assert len(generated) == 36


def test_a_fork_refuses_an_unsafe_new_run_id(engine: Engine) -> None:
    engine.start(LOOP, {"limit": 3}, run_id="source")
    before = {r.run_id for r in engine.store.list_runs().runs}
    with pytest.raises(ValueError, match="new_run_id must be"):
        engine.fork("source", 1, new_run_id="source/child")
    assert {r.run_id for r in engine.store.list_runs().runs} == before


def test_the_cli_says_it_in_one_line_with_the_usage_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pflambda.errors import InvalidRunId
    from pflambda.terminal import report_error

    code = report_error(InvalidRunId("run_id must be 1-128 letters, digits or ._:- (got 'a/b')"))
    err = capsys.readouterr().err
    assert err == "pflambda: run_id must be 1-128 letters, digits or ._:- (got 'a/b')\n"
    assert code == 2
