"""The local twin of version pinning: two versions of a project's flow on disk, each run in
a real subprocess against one embedded store. A reply the new version refuses (its paused
node is gone) is answered by the copy the run started on; with that copy deleted, the
refusal names ``pflambda migrate`` and the task keeps waiting."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pflambda.aws.config import Settings
from pflambda.local.server import api_event
from pflambda.local.twin import VERSIONS, LocalTwin, project_files, snapshot
from pflambda.stores.base import RunStatus

AGENT = """
from pflambda import Agent

agent = Agent(name="twin", flow="twinflows.flow:create_flow", output_key="published")
handler = agent.api_handler
"""

FLOW = """
from pflambda import Flow, InputRequired, Node


class Draft(Node):
    def post(self, shared, prep_res, exec_res):
        shared["draft"] = "a plan"


class {ask}(Node):
    def prep(self, shared):
        if "ok" not in shared:
            raise InputRequired("Approve the plan?", key="ok")
        return shared["ok"]

    def post(self, shared, prep_res, exec_res):
        shared["published"] = f"{{shared['draft']}} ({{prep_res}}, {version})"


def create_flow():
    draft = Draft()
    draft >> {ask}()
    return Flow(start=draft)
"""


def write_version(root: Path, ask: str, version: str) -> None:
    (root / "twinflows" / "flow.py").write_text(
        textwrap.dedent(FLOW.format(ask=ask, version=version))
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    root = tmp_path / "project"
    for package in ("handlers", "twinflows"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "handlers" / "twin.py").write_text(textwrap.dedent(AGENT))
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("x = 1\n")
    write_version(root, "Ask", "v1")
    home = tmp_path / "home"
    for key in ("PFLAMBDA_SITE", "PFLAMBDA_TOKEN", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PFLAMBDA_STORE", "sqlite")
    monkeypatch.setenv("PFLAMBDA_DIR", str(home))
    yield root, home


def send(twin: LocalTwin, version: str, text: str, task_id: str | None = None) -> Any:
    message: dict[str, Any] = {"kind": "message", "messageId": f"m-{text}", "role": "user"}
    message["parts"] = [{"kind": "text", "text": text}]
    if task_id:
        message["taskId"] = task_id
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}}
    event = api_event(
        "POST",
        "/agents/twin/",
        [("Content-Type", "application/json")],
        json.dumps(body).encode(),
        domain="127.0.0.1:1",
    )
    answer = twin.call(f"local:{version}", event)
    assert answer["statusCode"] == 200, answer
    return json.loads(answer["body"])


def test_the_snapshot_is_the_projects_code_and_changes_with_it(
    project: tuple[Path, Path],
) -> None:
    root, home = project
    files = {p.as_posix() for p in project_files(root)}
    assert files == {
        "handlers/__init__.py",
        "handlers/twin.py",
        "twinflows/__init__.py",
        "twinflows/flow.py",
    }
    first = snapshot(root, home)
    assert snapshot(root, home) == first  # unchanged code: the same copy
    write_version(root, "Review", "v3")
    second = snapshot(root, home)
    assert second != first
    assert "Review" in (home / VERSIONS / second / "twinflows" / "flow.py").read_text()
    assert "Ask" in (home / VERSIONS / first / "twinflows" / "flow.py").read_text()


def test_a_reply_the_new_copy_refuses_is_answered_by_the_pinned_copy(
    project: tuple[Path, Path],
) -> None:
    root, home = project
    twin = LocalTwin(home)
    try:
        v1 = snapshot(root, home)
        task = send(twin, v1, "go")["result"]
        assert task["status"]["state"] == "input-required"
        second = send(twin, v1, "again")
        assert "result" in second, second
        pinned_waiting = second["result"]["id"]
        write_version(root, "Review", "v3")  # the redeploy: Ask is gone
        v3 = snapshot(root, home)
        done = send(twin, v3, "yes", task["id"])["result"]
        assert done["status"]["state"] == "completed"
        assert done["artifacts"][0]["parts"][0]["text"] == "a plan (yes, v1)"
        store = Settings.from_env().ports.store
        assert store.get_run(task["id"]).pinned == f"local:{v1}"

        shutil.rmtree(home / VERSIONS / v1)  # the old copy is deleted
        error = send(twin, v3, "yes", pinned_waiting)["error"]
        assert "pflambda migrate TASK_ID --map OLD=NEW" in error["message"]
        record = store.get_run(pinned_waiting)
        assert (record.status, record.prompt) == (RunStatus.PAUSED, "Approve the plan?")
    finally:
        twin.close()
