"""``pflambda migrate`` under moto: a run whose paused node a deploy removed is refused
with the command to run, migrated, and finished -- its shapes kept in S3."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pflambda.cli import main
from tests.flows import deploy

FLOW = "tests.flows.deploy:create_flow"


@pytest.fixture
def version() -> Iterator[dict[str, int]]:
    deploy.VERSION["v"] = 1
    yield deploy.VERSION
    deploy.VERSION["v"] = 1


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_refused_then_migrated_then_finished(
    aws: None, version: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "run", FLOW)
    assert code == 3  # paused
    run_id = json.loads(out.splitlines()[-1])["run_id"]
    version["v"] = 3
    code, _, err = cli(capsys, "resume", run_id, "--reply", "yes")
    assert code == 1
    assert f"pflambda migrate {run_id} --map OLD=NEW" in err
    code, _, err = cli(capsys, "migrate", run_id, "--map", "Ask")
    assert (code, "--map takes OLD=NEW" in err) == (2, True), err
    code, out, _ = cli(capsys, "migrate", run_id, "--map", "Ask=Review")
    assert code == 0
    assert "paused" in out
    code, out, _ = cli(capsys, "resume", run_id, "--reply", "yes")
    assert code == 0
    assert json.loads(out.splitlines()[-1])["status"] == "completed"
