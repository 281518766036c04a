"""Configuration from the environment: defaults, and clear errors for bad values."""

from __future__ import annotations

import pytest

from pflambda.aws.config import Settings
from pflambda.errors import ConfigError


def test_defaults_outside_and_on_lambda() -> None:
    assert Settings.from_env({}).backend == "memory"
    on_lambda = Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f"})
    assert on_lambda.backend == "dynamodb"
    assert (on_lambda.table, on_lambda.bucket, on_lambda.queue_name) == (
        "pflambda-runs",
        "pflambda-state",
        "pflambda-work",
    )


def test_values_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "PFLAMBDA_STORE": "dynamodb",
            "PFLAMBDA_TABLE": "t",
            "PFLAMBDA_BUCKET": "b",
            "PFLAMBDA_QUEUE_URL": "https://sqs/q",
            "PFLAMBDA_MARGIN_MS": "5000",
            "PFLAMBDA_TTL_DAYS": "7",
            "PFLAMBDA_ALLOW_PRIVATE_PUSH": "1",
        }
    )
    assert settings == Settings(
        "dynamodb", "t", "b", "pflambda-work", "https://sqs/q", 5000, 7, True
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PFLAMBDA_STORE": "redis"}, "PFLAMBDA_STORE must be one of memory, dynamodb"),
        ({"PFLAMBDA_MARGIN_MS": "soon"}, "PFLAMBDA_MARGIN_MS must be a whole number"),
        ({"PFLAMBDA_TTL_DAYS": "0"}, "PFLAMBDA_TTL_DAYS > 0"),
    ],
)
def test_bad_values_are_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
