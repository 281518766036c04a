"""Throw malformed envelopes, wrong types, huge strings and unicode at the dispatcher:
it must always answer JSON-RPC, never raise, and store nothing for a rejected call."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pflambda.a2a.dispatcher import METHODS
from tests.budget import examples
from tests.unit.test_a2a_dispatcher import make_agent, request

AGENT = make_agent()

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
methods = st.sampled_from(sorted(METHODS)) | st.text(max_size=30)
huge = st.sampled_from(["x" * 200_000, "\u2603" * 50_000, "\x00\ud7ff\U0001f600" * 1000])


def message_like() -> st.SearchStrategy[Any]:
    part = st.fixed_dictionaries(
        {},
        optional={
            "text": st.text() | huge | json_scalars,
            "kind": st.sampled_from(["text", "data", "file", "x"]) | json_scalars,
            "type": st.sampled_from(["text", "data"]),
            "data": json_values,
            "file": st.fixed_dictionaries(
                {}, optional={"bytes": json_scalars, "uri": json_scalars}
            ),
            "raw": json_scalars,
            "url": json_scalars,
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "messageId": st.text(max_size=200) | json_scalars,
            "role": st.sampled_from(["user", "ROLE_USER", "agent"]) | json_scalars,
            "parts": st.lists(part, max_size=3) | json_scalars,
            "taskId": st.text(max_size=20) | json_scalars,
            "contextId": st.text(max_size=20) | json_scalars,
            "kind": st.just("message"),
        },
    )


params = st.fixed_dictionaries(
    {},
    optional={
        "message": message_like() | json_values,
        "configuration": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "historyLength": json_scalars,
                "blocking": json_scalars,
                "returnImmediately": json_scalars,
                "pushNotificationConfig": json_values,
            },
        ),
        "id": st.text(max_size=40) | json_scalars,
        "taskId": json_scalars,
        "historyLength": json_scalars,
        "pageSize": json_scalars,
        "status": json_scalars,
        "url": json_scalars,
    },
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_scalars,
        "id": json_scalars | st.lists(json_scalars, max_size=2),
        "method": methods | json_scalars,
        "params": params | json_values,
    },
)
bodies = (
    envelopes.map(lambda e: json.dumps(e).encode())
    | st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | json_values.map(lambda v: json.dumps(v).encode())
)
headers = st.fixed_dictionaries(
    {}, optional={"a2a-version": st.sampled_from(["1.0", "0.3", "2.0", "", "abc", "1"])}
)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, hdrs=headers)
def test_dispatcher_never_raises_and_rejected_calls_store_nothing(
    body: bytes, hdrs: dict[str, str]
) -> None:
    before = len(AGENT.engine.store.list_runs(limit=1000).runs)
    resp = AGENT.dispatcher.handle(request(body, hdrs))
    assert resp.status == 200
    if isinstance(resp.body, bytes):
        doc = json.loads(resp.body)
        assert set(doc) >= {"jsonrpc", "id"}
        assert ("error" in doc) != ("result" in doc)
        if "error" in doc:
            assert isinstance(doc["error"]["code"], int)
            assert "Traceback" not in doc["error"]["message"]
            assert "pflambda." not in doc["error"]["message"]
            assert len(AGENT.engine.store.list_runs(limit=1000).runs) == before
    else:
        frames = b"".join(resp.body).decode().split("\n\n")
        for frame in filter(None, frames):
            if frame.startswith("data: "):
                assert "jsonrpc" in json.loads(frame[len("data: ") :])


@settings(max_examples=examples(60), deadline=None)
@given(text=st.text(min_size=1) | huge, version=st.sampled_from(["1.0", "0.3"]))
def test_any_text_round_trips_through_a_real_task(text: str, version: str) -> None:
    if version == "1.0":
        msg = {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": text}]}
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": msg}}
    else:
        msg = {
            "kind": "message",
            "messageId": "m",
            "role": "user",
            "parts": [{"kind": "text", "text": text}],
        }
        body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": msg}}
    resp = AGENT.dispatcher.handle(request(json.dumps(body).encode(), {"a2a-version": version}))
    doc = json.loads(resp.body)  # type: ignore[arg-type]
    if any("\ud800" <= c <= "\udfff" for c in text):
        assert "error" in doc  # lone surrogates cannot be stored: a clear error, not a crash
        return
    result = doc["result"]["task"] if version == "1.0" else doc["result"]
    assert result["artifacts"][0]["parts"][0]["text"] == f"echo: {text}"
