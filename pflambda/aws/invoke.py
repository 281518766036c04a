"""Handing a run to the code it is pinned to: the invoker port and its Lambda adapter.

A run records where the code that admitted it is deployed (``RunRecord.pinned``: a
Lambda ``function:version``, or ``local:<id>`` for the local twin). When the deployed
flow refuses the run (its cursor does not map, :mod:`pflambda.engine.compat`), the
worker and the API hand it to that version instead:

- a continuation or a fan-out chunk as an asynchronous invocation (``Event``) of an
  *internal event* (:func:`internal_event`), which the agent's API handler recognises;
- a reply as the same API Gateway event, invoked synchronously (``RequestResponse``),
  so the caller gets the pinned version's answer; it carries the ``x-pflambda-hops``
  header, so the pinned version never hands it on again.

:class:`Invoker` is the port: :class:`LambdaInvoker` on AWS, the local twin
(:mod:`pflambda.local.twin`) in ``pflambda local``. A version that cannot be invoked
(deleted) is :class:`PinGone`: callers fall back to the refusal that names
``pflambda migrate``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from pflambda.errors import ConfigError, PflambdaError, RetryableError

__all__ = [
    "HOPS_HEADER",
    "INTERNAL",
    "Invoker",
    "LambdaInvoker",
    "PinFailed",
    "PinGone",
    "default_invoker",
    "hops_of",
    "install",
    "internal_event",
    "internal_of",
    "site_from_env",
    "split_site",
    "targets",
    "with_hops",
]

log = logging.getLogger("pflambda.invoke")

INTERNAL = "pflambda"
"""The key of an internal event: ``{"pflambda": {"kind": ..., "hops": 1, ...}}``."""
HOPS_HEADER = "x-pflambda-hops"
"""Header of an API event handed to a pinned version (how many times it was handed)."""
KINDS = ("continue", "chunk")
_GONE = frozenset({"ResourceNotFoundException"})
_RETRYABLE = frozenset(
    {
        "TooManyRequestsException",
        "ServiceException",
        "ResourceConflictException",
        "ResourceNotReadyException",
        "EC2ThrottledException",
    }
)


class PinGone(PflambdaError):
    """The pinned version cannot be invoked (deleted, or never existed here)."""


class PinFailed(PflambdaError):
    """The pinned version was invoked but raised (a crash, a timeout)."""


class Invoker(Protocol):
    """Invokes deployed code by site (``function:version`` or ``local:<id>``)."""

    def send(self, target: str, event: Mapping[str, Any]) -> None:
        """Invoke ``target`` with ``event`` and do not wait (at-least-once).

        :class:`PinGone` if it cannot be invoked; :class:`RetryableError` if throttled."""
        ...

    def call(self, target: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """Invoke ``target`` with ``event`` and return its answer.

        :class:`PinGone` if it cannot be invoked; :class:`PinFailed` if it raised."""
        ...


def internal_event(kind: str, hops: int, **fields: Any) -> dict[str, Any]:
    """An internal event of ``kind`` (``continue``, ``chunk``) handed on ``hops`` times."""
    if kind not in KINDS:
        raise ValueError(f"internal event kind must be one of {KINDS}, got {kind!r}")
    return {INTERNAL: {"kind": kind, "hops": hops, **fields}}


def internal_of(event: Any) -> dict[str, Any] | None:
    """The internal event's body, or ``None`` for anything else (an API Gateway event)."""
    if not isinstance(event, Mapping) or set(event) != {INTERNAL}:
        return None
    body = event[INTERNAL]
    if not isinstance(body, dict) or body.get("kind") not in KINDS:
        raise ConfigError(f"malformed internal event: {json.dumps(event, default=str)[:200]}")
    if not isinstance(body.get("run_id"), str) or not isinstance(body.get("hops"), int):
        raise ConfigError("an internal event needs a run_id string and a hops number")
    return body


def hops_of(event: Mapping[str, Any]) -> int:
    """How many times an API event was handed to a pinned version (0: straight from a client)."""
    for headers in (event.get("headers"), event.get("multiValueHeaders")):
        if not isinstance(headers, Mapping):
            continue
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == HOPS_HEADER:
                text = value[-1] if isinstance(value, list) and value else value
                try:
                    return max(int(str(text)), 1)
                except ValueError:
                    return 1
    return 0


def with_hops(event: Mapping[str, Any], hops: int) -> dict[str, Any]:
    """``event`` with the hop header set (in both header maps, as API Gateway gives them)."""
    out = dict(event)
    headers = {
        k: v for k, v in dict(event.get("headers") or {}).items() if str(k).lower() != HOPS_HEADER
    }
    out["headers"] = {**headers, HOPS_HEADER: str(hops)}
    if isinstance(event.get("multiValueHeaders"), Mapping):
        multi = {
            k: v
            for k, v in dict(event["multiValueHeaders"]).items()
            if str(k).lower() != HOPS_HEADER
        }
        out["multiValueHeaders"] = {**multi, HOPS_HEADER: [str(hops)]}
    return out


def site_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """Where this process's code is deployed, as runs record it: ``PFLAMBDA_SITE`` if set
    (the local twin), else ``function:version`` on a published Lambda version, followed by
    ``|`` and the worker version deployed with it when ``PFLAMBDA_WORKER_VERSION`` names
    one (the template sets it on the agent functions). ``None`` on ``$LATEST`` (it moves
    with every deploy) and off Lambda."""
    env = os.environ if env is None else env
    if env.get("PFLAMBDA_SITE"):
        return env["PFLAMBDA_SITE"]
    name, version = env.get("AWS_LAMBDA_FUNCTION_NAME"), env.get("AWS_LAMBDA_FUNCTION_VERSION")
    if not name or not version or version == "$LATEST":
        return None
    worker = env.get("PFLAMBDA_WORKER_VERSION", "")
    return f"{name}:{version}" + (f"{SITE_SEP}{worker}" if worker else "")


SITE_SEP = "|"
"""Separates a pin's API site from its worker's (``api-fn:3|arn:...:worker-fn:7``)."""


def targets(pinned: str) -> tuple[str, str]:
    """A pin's (API site, worker site): replies go to the first, continuations and chunks
    to the second -- the API site again when no worker version was recorded."""
    api, _, worker = pinned.partition(SITE_SEP)
    return api, worker or api


class LambdaInvoker:
    """:class:`Invoker` on AWS Lambda: ``Invoke`` with the site's version as ``Qualifier``."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        """The Lambda client (the process's shared one unless given)."""
        if self._client is None:
            from pflambda.aws.clients import client

            self._client = client("lambda")
        return self._client

    def send(self, target: str, event: Mapping[str, Any]) -> None:
        """``Invoke(InvocationType="Event")``: Lambda queues it and retries it twice."""
        self._invoke(target, event, "Event")

    def call(self, target: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """``Invoke(InvocationType="RequestResponse")``: the version's answer, decoded."""
        response = self._invoke(target, event, "RequestResponse")
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            raise PinFailed(f"{target} raised: {payload[:300]!r}")
        answer = json.loads(payload)
        if not isinstance(answer, dict):
            raise PinFailed(f"{target} answered {payload[:200]!r}, not an object")
        return answer

    def _invoke(self, target: str, event: Mapping[str, Any], kind: str) -> Any:
        from botocore.exceptions import ClientError

        name, qualifier = split_site(target)
        try:
            return self.client.invoke(
                FunctionName=name,
                Qualifier=qualifier,
                InvocationType=kind,
                Payload=json.dumps(event, separators=(",", ":")).encode(),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _GONE:
                raise PinGone(f"{target} cannot be invoked ({code}): it was deleted") from exc
            if (
                code in _RETRYABLE
                or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
            ):
                raise RetryableError(f"invoking {target}: {code}") from exc
            raise PinFailed(f"invoking {target}: {code}: {exc}") from exc


def split_site(target: str) -> tuple[str, str]:
    """``function:version`` (the function by name or ARN) -> (function, version);
    :class:`PinGone` for anything else."""
    name, sep, version = target.rpartition(":")
    if not sep or not name or name == "local" or not version or version == "$LATEST":
        raise PinGone(f"{target!r} names no published Lambda version")
    return name, version


_default: Invoker | None = None
_lock = threading.Lock()


def install(invoker: Invoker | None) -> None:
    """Make ``invoker`` this process's default (``pflambda local`` installs its twin;
    ``None`` goes back to Lambda's)."""
    global _default
    with _lock:
        _default = invoker


def default_invoker() -> Invoker:
    """The invoker installed for this process, else a :class:`LambdaInvoker`."""
    global _default
    with _lock:
        if _default is None:
            _default = LambdaInvoker()
        return _default
