"""The deployed handlers, called as Lambda calls them: API Gateway events in, under moto."""

from __future__ import annotations

import base64
import importlib
import json
from typing import Any

import pytest

from tests.functional.conftest import FakeContext, load_event


@pytest.fixture
def research(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PFLAMBDA_LLM", "offline")
    import handlers.research

    module = importlib.reload(handlers.research)  # a fresh Agent, built from this env
    return module


def body_of(response: dict[str, Any]) -> Any:
    raw = response["body"]
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw)


@pytest.mark.parametrize("fixture", ["apigw_rest_post.json", "apigw_http_post.json"])
def test_a2a_send_through_api_gateway_events(research: Any, fixture: str) -> None:
    response = research.handler(load_event(fixture), FakeContext())
    assert response["statusCode"] == 200
    result = body_of(response)["result"]
    assert result["kind"] == "task"
    assert result["status"]["state"] == "completed"
    assert result["artifacts"][0]["parts"][0]["text"]
    # the task lives in DynamoDB (moto) and its owner is the authorizer's principal
    record = research.agent.engine.store.get_run(result["id"])
    assert record.owner
    assert record.owner != "anonymous"


def test_the_card_through_api_gateway(research: Any) -> None:
    response = research.handler(load_event("apigw_rest_get_card.json"), FakeContext())
    assert response["statusCode"] == 200
    card = body_of(response)
    assert card["name"] == "research"
    assert card["supportedInterfaces"][0]["url"].startswith("https://")
    assert "url" not in card  # the 1.0 card; the 0.3 card is at agent.json
    assert response["headers"]["Cache-Control"] == "public, max-age=300"


def test_a_streaming_call_is_buffered_into_one_response(research: Any) -> None:
    event = load_event("apigw_rest_post.json")
    doc = json.loads(event["body"])
    doc["method"] = "message/stream"
    event["body"] = json.dumps(doc)
    response = research.handler(event, FakeContext())
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "text/event-stream"
    frames = [f for f in response["body"].split("\n\n") if f.startswith("data: ")]
    last = json.loads(frames[-1][len("data: ") :])["result"]
    assert last["kind"] == "status-update"
    assert last["final"] is True
    assert last["status"]["state"] == "completed"


def test_garbage_events_get_a_clean_error(research: Any) -> None:
    response = research.handler({"hello": "world"}, FakeContext())
    assert response["statusCode"] in (400, 500)
    assert "Traceback" not in json.dumps(response)


def test_http_json_routes_through_api_gateway(research: Any) -> None:
    event = load_event("apigw_rest_post.json")
    event["path"] = "/agents/research/message:send"
    event["requestContext"]["path"] = "/prod/agents/research/message:send"
    event["headers"] = {**event["headers"], "A2A-Version": "1.0"}
    event["multiValueHeaders"] = None
    message = {"messageId": "m-rest", "role": "ROLE_USER", "parts": [{"text": "What is A2A?"}]}
    event["body"] = json.dumps({"message": message})
    response = research.handler(event, FakeContext())
    assert response["statusCode"] == 200
    task = body_of(response)["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    get = load_event("apigw_rest_get_card.json")
    get["path"] = f"/agents/research/tasks/{task['id']}"
    get["requestContext"]["path"] = f"/prod/agents/research/tasks/{task['id']}"
    get["requestContext"]["authorizer"] = load_event("apigw_rest_post.json")["requestContext"][
        "authorizer"
    ]
    got = research.handler(get, FakeContext())
    assert got["statusCode"] == 200, got
    assert body_of(got)["id"] == task["id"]
