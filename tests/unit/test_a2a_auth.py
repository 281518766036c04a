"""Who may see what: API keys as principals, bearer tokens checked before anything is read."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pflambda.a2a.auth import BearerAuth
from tests.unit.test_a2a_dispatcher import V1, make_agent, msg_v1, request

EVENT = json.loads((Path(__file__).parents[1] / "events" / "apigw_rest_post.json").read_text())


def apikey_event(key_id: str, body: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    event["requestContext"].pop("authorizer")
    event["requestContext"]["identity"] |= {"apiKey": "secret-" + key_id, "apiKeyId": key_id}
    event["headers"] = {**event["headers"], "A2A-Version": "1.0"}
    event["multiValueHeaders"] = None
    event["body"] = json.dumps(body)
    return event


def call(agent: Any, key_id: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = agent.api_handler(apikey_event(key_id, body), None)
    assert response["statusCode"] == 200
    return json.loads(response["body"])  # type: ignore[no-any-return]


def test_each_api_key_is_its_own_principal() -> None:
    agent = make_agent()
    task = call(agent, "key-a", "SendMessage", {"message": msg_v1("hi")})["result"]["task"]
    assert call(agent, "key-a", "GetTask", {"id": task["id"]})["result"]["id"] == task["id"]
    other = call(agent, "key-b", "GetTask", {"id": task["id"]})
    assert other["error"]["code"] == -32001
    assert call(agent, "key-b", "ListTasks", {})["result"]["tasks"] == []
    record = agent.engine.store.get_run(task["id"])
    assert record.owner == "apikey:key-a"  # the key's id, never the key itself


def test_bearer_auth_refuses_before_reading_the_body() -> None:
    agent = make_agent(auth=BearerAuth(tokens=["s3cret"]))
    for body in (b"{not json", b'{"jsonrpc": "2.0", "id": 1, "method": "GetTask"}', b"[]"):
        resp = agent.dispatcher.handle(request(body, V1))
        assert resp.status == 401, body
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    big = agent.dispatcher.handle(request(b"x" * (agent.max_body_bytes + 1)))
    assert big.status == 401
    wrong = agent.dispatcher.handle(request(b"{", {"authorization": "Bearer nope"}))
    assert wrong.status == 401
    ok = agent.dispatcher.handle(request(b"{", {"authorization": "Bearer s3cret"}))
    assert ok.status == 200
    assert json.loads(ok.body)["error"]["code"] == -32700  # type: ignore[arg-type]
