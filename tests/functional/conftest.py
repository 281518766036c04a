"""Functional tests: handlers called as Lambda calls them, with real event JSON, under moto."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> dict[str, Any]:
    """A fixture event from tests/events/ (a fresh copy each time)."""
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


@dataclass
class FakeContext:
    """What Lambda passes as ``context``, with a remaining time the test controls."""

    remaining_ms: int = 600_000
    function_name: str = "pflambda-worker"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:pflambda-worker"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "6f7e1c1a-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/pflambda-worker"
    log_stream_name: str = "2026/11/23/[$LATEST]0000"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, with pflambda's table, bucket and queues, and env pointing at them."""
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "PFLAMBDA_STORE": "dynamodb",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        from pflambda.aws.clients import reset_clients
        from pflambda.aws.config import Settings
        from pflambda.blobs.s3 import create_bucket
        from pflambda.queues.sqs import create_queue
        from pflambda.stores.dynamodb import create_table

        reset_clients()
        settings = Settings.from_env()
        create_table(boto3.client("dynamodb"), settings.table)
        create_bucket(boto3.client("s3"), settings.bucket)
        sqs = boto3.client("sqs")
        create_queue(sqs, settings.queue_name + "-dlq")
        url = create_queue(sqs, settings.queue_name, dlq_name=settings.queue_name + "-dlq")
        monkeypatch.setenv("PFLAMBDA_QUEUE_URL", url)
        yield
        reset_clients()
