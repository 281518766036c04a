"""flows.llm: the offline model is deterministic and useful; Bedrock is called as Converse."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

import flows.llm as llm
from flows.llm import DEFAULT_MODEL_ID, LLMThrottled, call_llm, search_web, use_bedrock
from pflambda.errors import RetryableError


@pytest.fixture(autouse=True)
def offline_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LLM configuration from the developer's shell, and no default client left over."""
    for name in ("PFLAMBDA_LLM", "BEDROCK_MODEL_ID", "BEDROCK_REGION"):
        monkeypatch.delenv(name, raising=False)
    llm.set_client(None)
    yield
    llm.set_client(None)


@pytest.fixture
def no_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the offline model must not make an AWS client")

    monkeypatch.setattr(boto3, "client", refuse)


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real bedrock-runtime client with fake credentials (every call goes to a Stubber)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/pflambda-test-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/pflambda-test-credentials")
    return boto3.client("bedrock-runtime", region_name="us-east-1")


def converse_response(*texts: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": t} for t in texts]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
        "metrics": {"latencyMs": 42},
    }


# -- choosing the model -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"BEDROCK_MODEL_ID": "amazon.nova-lite-v1:0"}, True),
        ({"PFLAMBDA_LLM": "bedrock"}, True),
        ({"PFLAMBDA_LLM": "Bedrock"}, True),
        ({"PFLAMBDA_LLM": "offline", "BEDROCK_MODEL_ID": "amazon.nova-lite-v1:0"}, False),
    ],
)
def test_bedrock_only_when_configured(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert use_bedrock() is expected


# -- the offline model ----------------------------------------------------------------------


@pytest.mark.usefixtures("no_boto3")
def test_offline_is_deterministic_and_varies_with_the_prompt() -> None:
    prompts = [f"Question: {q}\n\nResearch:\n- {q} is well covered." for q in ("tides", "sky")]
    first = [call_llm(p) for p in prompts]
    assert [call_llm(p) for p in prompts] == first
    assert first[0] != first[1]
    assert all(isinstance(a, str) and a for a in first)


@pytest.mark.usefixtures("no_boto3")
def test_offline_fills_a_yaml_template_searching_first() -> None:
    template = "```yaml\naction: search | answer\nreason: <why>\nsearch_query: <query>\n```"
    reply = call_llm(f"Question: How do tides work?\n\nReturn this format:\n\n{template}")
    assert reply.startswith("```yaml\n")
    assert reply.endswith("\n```")
    fields = dict(re.findall(r"^(\w+): (.*)$", reply, re.MULTILINE))
    assert fields["action"] == "search"  # no evidence in the prompt yet
    assert "tides" in fields["search_query"]
    assert "work" in fields["search_query"]
    assert fields["reason"].startswith('"')


@pytest.mark.usefixtures("no_boto3")
def test_offline_choices_vary_once_there_is_evidence() -> None:
    template = "```yaml\naction: search | answer\n```"
    actions = {
        re.search(r"action: (\w+)", call_llm(prompt)).group(1)  # type: ignore[union-attr]
        for n in range(12)
        for prompt in [
            f"Question: q{n}\n\nContext:\n- fact (https://example.com/{n})\n\n### NEXT\n{template}"
        ]
    }
    assert actions == {"search", "answer"}


@pytest.mark.usefixtures("no_boto3")
def test_offline_plan_keeps_the_steps_and_adds_the_feedback() -> None:
    draft = call_llm("Draft a short numbered plan.\nRequest: Ship the release")
    steps = draft.splitlines()
    assert 3 <= len(steps) <= 5
    assert all(re.match(rf"{n}\. \S", s) for n, s in enumerate(steps, 1))
    assert "Ship the release" in steps[0]
    revised = call_llm(
        "Revise the numbered plan.\nRequest: Ship the release\nFeedback: add tests\n\n"
        f"Current plan:\n{draft}\n"
    )
    assert revised.splitlines()[:-1] == steps
    assert revised.splitlines()[-1] == f"{len(steps) + 1}. Address the feedback: add tests"


@pytest.mark.usefixtures("no_boto3")
def test_offline_summary_is_extractive() -> None:
    text = (
        "The tide rises and falls twice a day because of the pull of the Moon. The Sun matters too."
    )
    summary = call_llm(f"Summarise the text below.\n\nText:\n{text}\n")
    assert summary == "The tide rises and falls twice a day because of the pull of the Moon."
    combined = call_llm("Summarise these.\n\nSummaries:\n- One. Two.\n- Three. Four.\n")
    assert combined == "One. Three."


@pytest.mark.usefixtures("no_boto3")
def test_offline_answer_cites_the_material_and_respects_max_tokens() -> None:
    prompt = (
        "Answer the question.\nQuestion: What are tides?\n\nResearch:\n"
        "- Tides are driven by the Moon. (source: A, https://example.com/a)\n"
    )
    answer = call_llm(prompt)
    assert "Tides are driven by the Moon." in answer
    assert "https://example.com/a" in answer
    assert len(call_llm(prompt, max_tokens=3).split()) == 3


def test_search_web_is_deterministic_and_offline() -> None:
    results = search_web("tallest  mountain")
    assert results == search_web("tallest mountain")
    assert len(results) == 3
    assert {tuple(r) for r in results} == {("title", "url", "snippet")}
    assert all(r["url"].startswith("https://example.com/") for r in results)
    assert len({r["url"] for r in results}) == 3
    assert all("tallest mountain" in r["snippet"] for r in results)
    assert search_web("   ") == []


# -- Bedrock ------------------------------------------------------------------------------


def test_bedrock_converse_request_and_reply(bedrock: Any) -> None:
    expected = {
        "modelId": DEFAULT_MODEL_ID,
        "messages": [{"role": "user", "content": [{"text": "Hello?"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 64},
    }
    with Stubber(bedrock) as stub:
        stub.add_response("converse", converse_response("Hi", " there."), expected)
        reply = call_llm("Hello?", system="Be brief.", max_tokens=64, client=bedrock)
        stub.assert_no_pending_responses()
    assert reply == "Hi there."


def test_bedrock_default_client_and_model_from_env(
    bedrock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEDROCK_MODEL_ID", "amazon.nova-lite-v1:0")
    llm.set_client(bedrock)
    expected = {
        "modelId": "amazon.nova-lite-v1:0",
        "messages": [{"role": "user", "content": [{"text": "Hello?"}]}],
        "inferenceConfig": {"maxTokens": 512},
    }
    with Stubber(bedrock) as stub:
        stub.add_response("converse", converse_response("Hi."), expected)
        assert call_llm("Hello?") == "Hi."
        stub.assert_no_pending_responses()


def test_bedrock_throttling_is_retryable(bedrock: Any) -> None:
    with Stubber(bedrock) as stub:
        stub.add_client_error(
            "converse", service_error_code="ThrottlingException", http_status_code=429
        )
        with pytest.raises(LLMThrottled, match="throttled") as caught:
            call_llm("Hello?", client=bedrock)
    assert isinstance(caught.value, RetryableError)
    assert isinstance(caught.value.__cause__, ClientError)


def test_bedrock_other_errors_propagate(bedrock: Any) -> None:
    with Stubber(bedrock) as stub:
        stub.add_client_error(
            "converse", service_error_code="ValidationException", http_status_code=400
        )
        with pytest.raises(ClientError, match="ValidationException"):
            call_llm("Hello?", client=bedrock)


def test_the_default_client_is_made_lazily_once(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    class FakeClient:
        def converse(self, **request: Any) -> dict[str, Any]:
            return converse_response(request["messages"][0]["content"][0]["text"].upper())

    def fake_client(service: str, **kwargs: Any) -> FakeClient:
        made.append({"service": service, **kwargs})
        return FakeClient()

    monkeypatch.setattr(boto3, "client", fake_client)
    monkeypatch.setenv("PFLAMBDA_LLM", "bedrock")
    monkeypatch.setenv("BEDROCK_REGION", "eu-central-1")
    assert call_llm("one") == "ONE"
    assert call_llm("two") == "TWO"
    assert made == [{"service": "bedrock-runtime", "region_name": "eu-central-1"}]
