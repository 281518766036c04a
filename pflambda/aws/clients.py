"""AWS clients, made lazily and once per process, so warm invocations reuse them.

Every AWS adapter takes its client as an argument; this is where the default ones come
from. The endpoint comes from the arguments or, when ``None``, from botocore's own
reading of ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` (the local emulator).

Clients come from a plain botocore session: boto3 adds nothing the adapters use
(resources, S3 transfers) and importing it costs a cold start tens of milliseconds.
:func:`lazy_client` defers even botocore's model loading to the first call, so a
request that only talks to DynamoDB never builds its S3 or SQS client.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Literal, overload

import botocore.session
from botocore.config import Config

from pflambda.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

__all__ = ["CLIENT_CONFIG", "client", "lazy_client", "reset_clients", "resolve_region"]

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,  # above SQS's longest long poll (20 s)
    tcp_keepalive=True,
    max_pool_connections=32,  # the local server runs a thread per connection
)
"""Retries with backoff for throttling and 5xx, and timeouts that fail fast in a Lambda."""

_lock = threading.Lock()
_session: botocore.session.Session | None = None
_clients: dict[tuple[str, str, str | None], Any] = {}


def resolve_region(region: str | None = None) -> str:
    """``region``, else ``AWS_REGION`` (set by Lambda), ``AWS_DEFAULT_REGION``, the profile's."""
    found = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not found:
        with _lock:
            found = _session_locked().get_config_variable("region")
    if not found:
        raise ConfigError(
            "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION (Lambda sets both), "
            "or configure one in your AWS profile"
        )
    return found


@overload
def client(
    service: Literal["dynamodb"], region: str | None = None, endpoint_url: str | None = None
) -> DynamoDBClient: ...
@overload
def client(
    service: Literal["sqs"], region: str | None = None, endpoint_url: str | None = None
) -> SQSClient: ...
@overload
def client(
    service: Literal["s3"], region: str | None = None, endpoint_url: str | None = None
) -> S3Client: ...
@overload
def client(service: str, region: str | None = None, endpoint_url: str | None = None) -> Any: ...
def client(service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """The process's client for ``service`` in ``region`` at ``endpoint_url``, made once.

    :class:`~pflambda.errors.ConfigError` if no region is given or configured.
    """
    key = (service, resolve_region(region), endpoint_url)
    with _lock:
        made = _clients.get(key)
        if made is None:
            made = _session_locked().create_client(
                service, region_name=key[1], endpoint_url=endpoint_url, config=CLIENT_CONFIG
            )
            _clients[key] = made
    return made


def reset_clients(*, session: bool = False) -> None:
    """Forget every client (tests that hook into clients or change endpoints).

    The botocore session, which holds the resolved credentials, profile and the loaded
    service models, lives on unless ``session`` is true: making a client on it costs
    about a tenth of making one on a new session.
    """
    global _session
    with _lock:
        _clients.clear()
        if session:
            _session = None


def _session_locked() -> botocore.session.Session:
    global _session
    if _session is None:
        _session = botocore.session.get_session()
    return _session


class _LazyClient:
    """Stands in for a client until something is asked of it, then is that client."""

    def __init__(self, service: str, region: str | None, endpoint_url: str | None) -> None:
        self._args = (service, region, endpoint_url)
        self._made: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._made is None:
            self._made = client(*self._args)
        return getattr(self._made, name)


@overload
def lazy_client(
    service: Literal["dynamodb"], region: str | None = None, endpoint_url: str | None = None
) -> DynamoDBClient: ...
@overload
def lazy_client(
    service: Literal["sqs"], region: str | None = None, endpoint_url: str | None = None
) -> SQSClient: ...
@overload
def lazy_client(
    service: Literal["s3"], region: str | None = None, endpoint_url: str | None = None
) -> S3Client: ...
def lazy_client(service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """:func:`client`, made on first use: building one loads the service's model."""
    return _LazyClient(service, region, endpoint_url)
