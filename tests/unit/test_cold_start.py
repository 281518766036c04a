"""Cold start: what is built at import on Lambda, and what waits for its first use."""

from __future__ import annotations

import pytest

from pflambda.a2a.agent import REGISTRY, Agent
from pflambda.aws import clients
from pflambda.aws.config import reset_memory_ports
from pflambda.aws.worker import Worker


@pytest.fixture
def memory_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFLAMBDA_STORE", "memory")
    reset_memory_ports()


def test_on_lambda_an_agent_builds_its_engine_at_import(
    memory_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "agent-fn")
    agent = Agent("warm-agent", "tests.flows.sample:loop", auth=None)
    REGISTRY.pop("warm-agent", None)
    assert "engine" in agent.__dict__
    assert "dispatcher" in agent.__dict__
    worker = Worker()
    assert worker._engine is not None


def test_elsewhere_nothing_is_built_at_import(
    memory_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    agent = Agent("cold-agent", "tests.flows.sample:loop", auth=None)
    REGISTRY.pop("cold-agent", None)
    assert "engine" not in agent.__dict__
    assert Worker()._engine is None


def test_a_failing_prewarm_is_left_to_the_first_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "agent-fn")
    monkeypatch.setenv("PFLAMBDA_STORE", "nonsense")
    agent = Agent("broken-agent", "tests.flows.sample:loop", auth=None)
    REGISTRY.pop("broken-agent", None)
    assert "engine" not in agent.__dict__
    with pytest.raises(Exception, match="PFLAMBDA_STORE"):
        _ = agent.engine


def test_a_lazy_client_is_made_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clients.reset_clients()
    lazy = clients.lazy_client("s3")
    assert clients._clients == {}
    assert lazy.meta.service_model.service_name == "s3"
    assert list(clients._clients) == [("s3", "us-east-1", None)]
    clients.reset_clients()
