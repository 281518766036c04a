"""pflambda.aws.clients: one cached client per (service, region, endpoint), and clear errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pflambda.aws.clients import CLIENT_CONFIG, client, reset_clients, resolve_region
from pflambda.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/pflambda-test-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/pflambda-test-credentials")
    reset_clients(session=True)
    yield
    reset_clients(session=True)


def test_the_same_arguments_give_the_same_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    first = client("sqs")
    assert client("sqs") is first
    assert client("sqs", region="eu-west-1") is first
    assert client("sqs", region="us-east-1") is not first
    assert client("dynamodb") is not first
    assert client("sqs", endpoint_url="http://127.0.0.1:5000") is not first


def test_reset_forgets_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    first = client("s3")
    reset_clients()
    assert client("s3") is not first


def test_region_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert client("dynamodb").meta.region_name == "us-west-2"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert client("dynamodb").meta.region_name == "eu-central-1"
    assert client("dynamodb", region="ap-south-1").meta.region_name == "ap-south-1"


def test_missing_region_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="AWS_REGION"):
        client("dynamodb")
    with pytest.raises(ConfigError):
        resolve_region()


def test_endpoint_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert client("sqs", endpoint_url="http://127.0.0.1:4566").meta.endpoint_url == (
        "http://127.0.0.1:4566"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    reset_clients()
    assert client("sqs").meta.endpoint_url == "http://127.0.0.1:5000"


def test_clients_retry_in_standard_mode_with_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    config = client("dynamodb").meta.config
    assert config.retries["mode"] == "standard"
    assert config.connect_timeout == CLIENT_CONFIG.connect_timeout
    assert config.read_timeout > 20  # longer than an SQS long poll
