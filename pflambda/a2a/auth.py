"""Who is calling: API Gateway authorizer claims, or a bearer token the app checks itself.

With an authorizer in front (JWT, IAM, Lambda), API Gateway has already said no to
strangers and tells us the principal; :class:`BearerAuth` is for local and simple
deployments. Either way every task is owned by the principal that created it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pflambda.errors import ConfigError
from pflambda.http import HttpRequest

__all__ = ["ANONYMOUS", "BearerAuth", "Unauthorized", "principal_of"]

ANONYMOUS = "anonymous"
"""The principal of unauthenticated callers when the agent requires no auth."""


class Unauthorized(Exception):
    """The request carries no acceptable credentials (HTTP 401)."""


@dataclass
class BearerAuth:
    """Accept ``Authorization: Bearer <token>`` for one of a set of tokens.

    Tokens come from ``tokens``, else the ``PFLAMBDA_TOKEN`` variable (comma-separated),
    else a Secrets Manager secret (``PFLAMBDA_TOKEN_SECRET``) or an SSM SecureString
    parameter (``PFLAMBDA_TOKEN_PARAMETER``), fetched once per container and cached by
    Powertools' parameters utility.
    """

    tokens: Sequence[str] = ()
    env: str = "PFLAMBDA_TOKEN"
    secret: str | None = field(default_factory=lambda: os.environ.get("PFLAMBDA_TOKEN_SECRET"))
    parameter: str | None = field(
        default_factory=lambda: os.environ.get("PFLAMBDA_TOKEN_PARAMETER")
    )
    fetch: Callable[[], str] | None = None
    """Overrides where tokens come from (tests)."""

    def _tokens(self) -> list[str]:
        if self.tokens:
            return list(self.tokens)
        raw = os.environ.get(self.env, "")
        if not raw and self.fetch is not None:
            raw = self.fetch()
        elif not raw and (self.secret or self.parameter):
            raw = _fetch_remote(self.secret, self.parameter)
        tokens = [t.strip() for t in raw.split(",") if t.strip()]
        if not tokens:
            raise ConfigError(
                f"bearer auth is on but no token is configured: set {self.env}, "
                "PFLAMBDA_TOKEN_SECRET or PFLAMBDA_TOKEN_PARAMETER"
            )
        return tokens

    def authenticate(self, request: HttpRequest) -> str:
        """The principal for a valid token; :class:`Unauthorized` otherwise."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token")
        for known in self._tokens():
            if hmac.compare_digest(token.strip().encode(), known.encode()):
                return "bearer:" + hashlib.sha256(known.encode()).hexdigest()[:16]
        raise Unauthorized("invalid bearer token")


def _fetch_remote(secret: str | None, parameter: str | None) -> str:
    from aws_lambda_powertools.utilities import parameters

    if secret:
        return str(parameters.get_secret(secret, max_age=300))
    return str(parameters.get_parameter(parameter or "", decrypt=True, max_age=300))


def principal_of(request: HttpRequest, auth: BearerAuth | None) -> str:
    """The caller: the authorizer's principal, else the bearer token's, else anonymous."""
    if request.principal:
        return str(request.principal)
    if auth is not None:
        return auth.authenticate(request)
    return ANONYMOUS
