"""Logs and metrics on Lambda: Powertools' JSON logs and EMF metrics per node.

- **Logs**: on Lambda (or with ``PFLAMBDA_LOG_FORMAT=json``) the ``pflambda`` loggers
  write one JSON object per line, each carrying ``run_id``, ``task_id``, ``node`` and
  ``step`` (see :mod:`pflambda.observe`); level from ``LOG_LEVEL`` (default INFO).
- **Metrics**: on Lambda (or with ``PFLAMBDA_METRICS=1``) every committed step emits an
  EMF record in namespace ``POWERTOOLS_METRICS_NAMESPACE`` (default ``pflambda``) with
  dimensions ``service`` and ``node``: ``NodeDuration`` (ms), ``NodeRetries``,
  ``CheckpointBytes`` and, for a fanned-out node, ``FanOutItems``. CloudWatch turns
  them into metrics with no API call.
- **Tracing** is opt-in at the function level: the template's ``Tracing=Active`` turns on
  Lambda's own X-Ray tracing. No tracing SDK is imported (its cold-start cost), so there
  are no per-node subsegments.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pflambda.observe import ContextFilter

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine, StepEvent
    from pflambda.stores.base import RunRecord

__all__ = ["StepMetrics", "install", "setup_logging"]

_HANDLER_NAME = "pflambda-json"


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").lower() in ("1", "true", "yes", "json")


def setup_logging(env: Mapping[str, str] | None = None) -> bool:
    """JSON logs with run context on the ``pflambda`` loggers; once per process."""
    env = os.environ if env is None else env
    wanted = bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) or _flag(env, "PFLAMBDA_LOG_FORMAT")
    logger = logging.getLogger("pflambda")
    if not wanted or any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        return False
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    service = env.get("POWERTOOLS_SERVICE_NAME", "pflambda")
    handler.setFormatter(LambdaPowertoolsFormatter(service=service))
    handler.addFilter(ContextFilter())
    logger.addHandler(handler)
    logger.setLevel(env.get("LOG_LEVEL", "INFO").upper())
    logger.propagate = False
    return True


class StepMetrics:
    """An engine step listener that writes one EMF record per committed step."""

    def __init__(self, namespace: str, service: str) -> None:
        self.namespace, self.service = namespace, service

    def __call__(self, record: RunRecord, event: StepEvent) -> None:
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        metrics = EphemeralMetrics(namespace=self.namespace, service=self.service)
        metrics.add_dimension(name="node", value=event.node_id or "(input)")
        metrics.add_metric(
            name="NodeDuration", unit=MetricUnit.Milliseconds, value=event.duration_ms
        )
        metrics.add_metric(name="NodeRetries", unit=MetricUnit.Count, value=event.retries)
        metrics.add_metric(name="CheckpointBytes", unit=MetricUnit.Bytes, value=event.size)
        if event.fan_out_items:
            metrics.add_metric(name="FanOutItems", unit=MetricUnit.Count, value=event.fan_out_items)
        metrics.flush_metrics()


def install(engine: Engine, env: Mapping[str, str] | None = None) -> Engine:
    """Turn on JSON logs and step metrics for ``engine`` where the environment wants them."""
    env = os.environ if env is None else env
    setup_logging(env)
    on_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
    if on_lambda or _flag(env, "PFLAMBDA_METRICS"):
        namespace = env.get("POWERTOOLS_METRICS_NAMESPACE", "pflambda")
        service = env.get("POWERTOOLS_SERVICE_NAME", "pflambda")
        engine.step_listeners.append(StepMetrics(namespace, service))
    return engine
