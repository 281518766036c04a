"""JSON logs with run/node/step on every line, and EMF metrics per node (Powertools)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from pflambda.aws import observe
from pflambda.aws.config import Settings, reset_memory_ports


@pytest.fixture
def json_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PFLAMBDA_LOG_FORMAT", "json")
    monkeypatch.setenv("PFLAMBDA_METRICS", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "pflambda-test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "research")
    reset_memory_ports()
    logger = logging.getLogger("pflambda")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved
    reset_memory_ports()


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_every_log_line_names_run_node_and_step(json_env: None, capsys: Any) -> None:
    engine = Settings(backend="memory").engine()
    outcome = engine.start("tests.flows.sample:loop", {"limit": 3})
    records = lines(capsys.readouterr().out)
    logs = [r for r in records if "_aws" not in r]
    steps = [r for r in logs if r.get("message", "").startswith("step ")]
    assert len(steps) == 4  # Count, Other, Count, Finish
    assert all(r["run_id"] == outcome.run_id for r in logs)
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert [r["node"] for r in steps] == ["Count", "Other", "Count", "Finish"]
    assert all(r["service"] == "research" and r["level"] == "INFO" for r in steps)


def test_each_step_emits_emf_metrics_per_node(json_env: None, capsys: Any) -> None:
    engine = Settings(backend="memory").engine()
    engine.start("tests.flows.sample:loop", {"limit": 3})
    emf = [r for r in lines(capsys.readouterr().out) if "_aws" in r]
    assert [r["node"] for r in emf] == ["Count", "Other", "Count", "Finish"]
    spec = emf[0]["_aws"]["CloudWatchMetrics"][0]
    assert spec["Namespace"] == "pflambda-test"
    assert sorted(m["Name"] for m in spec["Metrics"]) == [
        "CheckpointBytes",
        "NodeDuration",
        "NodeRetries",
    ]
    assert emf[0]["CheckpointBytes"][0] > 0


def test_fan_out_items_metric(json_env: None, capsys: Any) -> None:
    engine = Settings(backend="memory").engine()
    engine.start("tests.flows.batch:squares", {"items": list(range(25))})
    emf = [r for r in lines(capsys.readouterr().out) if "_aws" in r]
    assert emf[-1]["node"] == "Square"
    assert emf[-1]["FanOutItems"] == [25.0]


def test_retries_are_counted(json_env: None, capsys: Any) -> None:
    engine = Settings(backend="memory").engine()
    engine.start("tests.flows.flaky:flaky", {})
    emf = [r for r in lines(capsys.readouterr().out) if "_aws" in r]
    assert emf[0]["NodeRetries"] == [2.0]


def test_off_by_default_outside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PFLAMBDA_LOG_FORMAT", "PFLAMBDA_METRICS", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    reset_memory_ports()
    engine = Settings(backend="memory").engine()
    assert engine.step_listeners == []
    assert observe.setup_logging() is False
