"""The console's Lambda handler with real API Gateway REST events, on DynamoDB/S3/SQS (moto):
who sees what, the API's answers, refusals, and actions handed to the worker queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pflambda.aws.config import Settings
from pflambda.engine.runner import Engine
from pflambda.stores.base import RunStatus
from tests.functional.conftest import FakeContext, load_event

ADA = "7d8ca528-4931-4254-9273-ea5ee853f271"  # the fixture event's Cognito sub
REVIEW = "tests.flows.console:review"


@pytest.fixture
def engine(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    import pflambda.console.handler as module

    for key in ("PFLAMBDA_TOKEN", "PFLAMBDA_TOKEN_SECRET", "PFLAMBDA_CONSOLE_OPERATORS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(module, "_CONSOLE", None)
    yield Settings.from_env().engine()
    monkeypatch.setattr(module, "_CONSOLE", None)


def call(
    method: str,
    path: str,
    body: Any = None,
    *,
    sub: str | None = ADA,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    from pflambda.console.handler import handler

    event = load_event("apigw_rest_post.json")
    path, _, query = path.partition("?")
    event["path"], event["httpMethod"] = path, method
    event["resource"] = "/console/{proxy+}"
    event["requestContext"]["path"] = "/prod" + path
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["resourcePath"] = "/console/{proxy+}"
    if sub is None:
        event["requestContext"].pop("authorizer")
    else:
        event["requestContext"]["authorizer"]["claims"]["sub"] = sub
    pairs = [p.split("=", 1) for p in query.split("&") if p]
    event["queryStringParameters"] = dict(pairs) or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in pairs} or None
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    event["body"] = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    answer = handler(event, FakeContext())
    content = answer["body"]
    kind = answer["headers"].get("Content-Type", "")
    doc = json.loads(content) if kind == "application/json" and content else content
    return answer["statusCode"], answer["headers"], doc


def test_a_principal_sees_only_its_own_runs(engine: Engine) -> None:
    engine.start(REVIEW, {"topic": "a"}, run_id="mine", owner=ADA)
    engine.start(REVIEW, {"topic": "b"}, run_id="theirs", owner="someone-else")
    status, headers, doc = call("GET", "/console/api/runs")
    assert status == 200
    assert [r["run_id"] for r in doc["runs"]] == ["mine"]
    assert doc["runs"][0]["status"] == "paused"
    assert doc["runs"][0]["node"] == "Editing/Review"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert call("GET", "/console/api/runs/theirs")[0] == 404  # as if it did not exist
    assert call("GET", "/console/api/runs/theirs/steps/0")[0] == 404
    assert call("POST", "/console/api/runs/theirs/cancel", {})[0] == 404
    assert engine.store.get_run("theirs").status == RunStatus.PAUSED
    assert call("GET", "/console/api/me")[2] == {"principal": ADA, "operator": False}


def test_an_operator_sees_every_run(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFLAMBDA_CONSOLE_OPERATORS", f"ops-team, {ADA}")
    engine.start(REVIEW, {"topic": "b"}, run_id="theirs", owner="someone-else")
    assert [r["run_id"] for r in call("GET", "/console/api/runs")[2]["runs"]] == ["theirs"]
    status, _, doc = call("GET", "/console/api/runs/theirs")
    assert status == 200
    assert doc["cursor"][-1] == {"flow": "Editing", "node": "Editing/Review"}
    assert doc["prompt"] == "Publish the draft?"


def test_bearer_tokens_guard_the_api_not_the_pages(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PFLAMBDA_TOKEN", "s3cret")
    status, headers, _ = call("GET", "/console/api/runs", sub=None)
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    ok = call("GET", "/console/api/me", sub=None, headers={"Authorization": "Bearer s3cret"})
    assert ok[0] == 200
    assert ok[2]["principal"].startswith("bearer:")
    page = call("GET", "/console/", sub=None)
    assert page[0] == 200
    assert page[1]["Content-Type"].startswith("text/html")
    assert '<table id="runs"' in page[2]


def test_pages_static_files_and_redirect(engine: Engine) -> None:
    status, headers, _ = call("GET", "/console")
    assert status == 301
    assert (
        headers["Location"]
        == "https://1234567890.execute-api.us-east-1.amazonaws.com/prod/console/"
    )
    assert call("GET", "/console/runs/abc")[0] == 200
    status, headers, body = call("GET", "/console/static/run.js")
    assert status == 200
    assert headers["Content-Type"].startswith("text/javascript")
    assert "innerHTML" not in body  # data goes in with textContent only
    for bad in ("/console/static/../app.py", "/console/static/app.py", "/console/static/"):
        assert call("GET", bad)[0] == 404


def test_step_state_diff_and_offloaded_value(engine: Engine) -> None:
    big = "y" * 70_000
    engine.start(REVIEW, {"topic": "cats", "big": big}, run_id="r", owner=ADA)
    status, _, step = call("GET", "/console/api/runs/r/steps/1")
    assert status == 200
    assert step["shared"] == {"topic": "cats", "draft": "About cats", "words": 2}
    assert step["offloaded"]["big"]["size"] > 0
    assert [c["path"] for c in step["diff"]["changes"]] == [["draft"], ["words"]]
    value = call("GET", "/console/api/runs/r/steps/1/value?key=big")
    assert value[2] == {"key": "big", "value": big}
    assert call("GET", "/console/api/runs/r/steps/9")[2] == {"error": "run r has no checkpoint 9"}


def test_reply_is_committed_and_handed_to_the_worker(engine: Engine) -> None:
    from pflambda.aws.worker import Worker

    engine.start(REVIEW, {"topic": "cats"}, run_id="r", owner=ADA)
    status, _, doc = call("POST", "/console/api/runs/r/reply", {"text": "yes"})
    assert status == 200
    assert doc["status"] == "running"
    assert engine.state("r")[0]["verdict"] == "yes"
    assert engine.queue is not None
    messages = engine.queue.receive(10)
    assert [json.loads(m.body) for m in messages] == [{"kind": "continue", "run_id": "r", "seq": 2}]
    Worker(engine).handle(json.loads(messages[0].body))
    assert engine.store.get_run("r").status == RunStatus.COMPLETED


def test_refusals_say_why_and_change_nothing(engine: Engine) -> None:
    engine.start("tests.flows.sample:loop", {"limit": 1}, run_id="done", owner=ADA)
    engine.start(REVIEW, {"topic": "x"}, run_id="paused", owner=ADA)
    cases = [
        ("done", "reply", {"text": "hi"}, 409, "run done is completed, not waiting for input"),
        ("done", "resume", {}, 409, "run done is completed: nothing to resume"),
        ("done", "cancel", {}, 409, "run done is already completed"),
        ("paused", "resume", {}, 409, "waiting for input"),
        ("paused", "reply", {"text": 3}, 400, 'a reply needs "text", a string'),
        ("paused", "fork", {"at": 99}, 409, "run paused has no checkpoint 99"),
        ("paused", "fork", {"at": "1"}, 400, 'a fork needs "at", a step number'),
    ]
    for run_id, action, body, code, words in cases:
        status, _, doc = call("POST", f"/console/api/runs/{run_id}/{action}", body)
        assert (status, words in doc["error"]) == (code, True), (action, doc)
    text = call(
        "POST", "/console/api/runs/paused/cancel", "{}", headers={"Content-Type": "text/plain"}
    )
    assert text[0] == 415
    assert engine.store.get_run("paused").status == RunStatus.PAUSED
    assert engine.store.get_run("done").status == RunStatus.COMPLETED
    assert engine.queue is not None
    assert engine.queue.receive(10) == []


def test_cancel_and_fork_with_edits(engine: Engine) -> None:
    engine.start(REVIEW, {"topic": "cats"}, run_id="r", owner=ADA)
    status, _, doc = call(
        "POST", "/console/api/runs/r/fork", {"at": 1, "shared": {"topic": "dogs", "words": 2}}
    )
    assert status == 200
    forked = engine.store.get_run(doc["run_id"])
    assert forked.owner == ADA
    assert forked.attrs["edited"] == ["'draft'", "'topic'"]
    assert engine.state(doc["run_id"])[0] == {"topic": "dogs", "words": 2}
    rows = {row["run_id"]: row for row in call("GET", "/console/api/runs")[2]["runs"]}
    assert (rows[doc["run_id"]]["forked_from"], rows[doc["run_id"]]["forked_at"]) == ("r", 1)
    assert rows["r"]["forked_from"] is None
    bad = call("POST", "/console/api/runs/r/fork", {"at": 1, "shared": {"s": {"$pf": "nope"}}})
    assert bad[0] == 400
    status, _, doc = call("POST", "/console/api/runs/r/cancel", {})
    assert (status, doc["status"], doc["message"]) == (200, "cancelled", "cancelled")


def test_filters_and_paging(engine: Engine) -> None:
    for i in range(5):
        flow = REVIEW if i % 2 else "tests.flows.sample:loop"
        engine.start(flow, {"topic": "t", "limit": 1}, run_id=f"r{i}", owner=ADA)
    paused = call("GET", "/console/api/runs?status=paused")[2]["runs"]
    assert [r["run_id"] for r in paused] == ["r3", "r1"]
    first = call("GET", "/console/api/runs?limit=2")[2]
    second = call("GET", f"/console/api/runs?limit=2&token={first['next_token']}")[2]
    assert [r["run_id"] for r in first["runs"] + second["runs"]] == ["r4", "r3", "r2", "r1"]
    for query, words in [
        ("status=bogus", "status must be one of"),
        ("stalled=maybe", "stalled must be true or false"),
        ("limit=0", "limit must be between 1 and 200"),
        ("since=yesterday", "since must be a number"),
    ]:
        status, _, doc = call("GET", f"/console/api/runs?{query}")
        assert status == 400
        assert words in doc["error"]


def test_resume_hands_a_stalled_run_to_the_worker_and_refuses_a_driven_one(
    engine: Engine,
) -> None:
    from pflambda.aws.worker import Worker

    engine.start("tests.flows.sample:loop", {"limit": 3}, run_id="s", owner=ADA, max_steps=1)
    assert call("GET", "/console/api/runs?stalled=true")[2]["runs"][0]["run_id"] == "s"
    status, _, doc = call("POST", "/console/api/runs/s/resume", {})
    assert (status, doc["status"]) == (200, "running")
    assert engine.store.get_run("s").lease_owner == "queued"  # the queue holds it now
    assert engine.queue is not None
    (message,) = engine.queue.receive(10)
    Worker(engine).handle(json.loads(message.body))
    assert engine.store.get_run("s").status == RunStatus.COMPLETED

    engine.start("tests.flows.sample:loop", {"limit": 3}, run_id="d", owner=ADA, max_steps=1)
    now = engine.clock.now()
    engine.store.acquire_lease("d", "worker-7", now + 600, now=now)
    status, _, doc = call("POST", "/console/api/runs/d/resume", {})
    assert status == 409
    assert "its lease is live" in doc["error"]
    assert engine.store.get_run("d").lease_owner == "worker-7"
    assert engine.queue.receive(10) == []


def test_an_http_api_event_with_a_jwt_principal(engine: Engine) -> None:
    from pflambda.console.handler import handler

    engine.start(REVIEW, {"topic": "a"}, run_id="jwt-run", owner="user-42")
    engine.start(REVIEW, {"topic": "b"}, run_id="other", owner="user-7")
    event = load_event("apigw_http_get_card.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/console/api/runs"
    event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": "user-42"}, "scopes": None}}
    answer = handler(event, FakeContext())
    assert answer["statusCode"] == 200
    assert [r["run_id"] for r in json.loads(answer["body"])["runs"]] == ["jwt-run"]
