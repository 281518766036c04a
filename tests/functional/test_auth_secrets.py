"""Bearer tokens from Secrets Manager and SSM (moto), via Powertools' parameters utility."""

from __future__ import annotations

import boto3
import pytest

from pflambda.a2a.auth import BearerAuth, Unauthorized
from pflambda.http import HttpRequest


def req(token: str | None) -> HttpRequest:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return HttpRequest("POST", "/", headers, {}, b"")


def test_token_from_secrets_manager(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("secretsmanager").create_secret(Name="pflambda-token", SecretString="s1,s2")
    monkeypatch.delenv("PFLAMBDA_TOKEN", raising=False)
    auth = BearerAuth(secret="pflambda-token", parameter=None)
    assert auth.authenticate(req("s2")).startswith("bearer:")
    with pytest.raises(Unauthorized):
        auth.authenticate(req("nope"))


def test_token_from_ssm(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("ssm").put_parameter(Name="/pflambda/token", Value="p1", Type="SecureString")
    monkeypatch.delenv("PFLAMBDA_TOKEN", raising=False)
    auth = BearerAuth(secret=None, parameter="/pflambda/token")
    assert auth.authenticate(req("p1")).startswith("bearer:")


def test_no_token_configured_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pflambda.errors import ConfigError

    monkeypatch.delenv("PFLAMBDA_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="no token is configured"):
        BearerAuth(secret=None, parameter=None).authenticate(req("x"))
