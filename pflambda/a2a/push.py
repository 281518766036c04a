"""Push notifications, delivery side: POST a task to a client's webhook, safely, with retries.

The client picks the URL, so the agent must not become a proxy into its own network (SSRF):
only ``https`` URLs without userinfo whose host resolves to public addresses only are accepted
(``allow_private``, for local development, also lets ``http`` and private addresses through).

DNS rebinding: a public name may resolve to ``127.0.0.1`` later, so :class:`PushSender` checks
the host's addresses again right before every POST and connects to the address it checked (no
second lookup; TLS still verifies the certificate for the name). With an ``opener`` of your
own, pinning is the opener's job, or an egress firewall's (a Lambda outside any
VPC, or a VPC without routes to private networks). At-least-once delivery is the caller's loop:
:mod:`pflambda.a2a.notify` queues each push and lets the worker retry it.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import random
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from pflambda.clock import Clock, SystemClock

__all__ = ["PushConfigError", "PushResult", "PushSender", "PushTarget", "validate_push_url"]

log = logging.getLogger("pflambda.push")

MAX_URL_LENGTH = 2048
_FLAGS = ("loopback", "link_local", "unspecified", "multicast", "site_local", "reserved", "private")

Resolver = Callable[[str, int], Iterable[str]]
"""``(host, port) -> addresses``; the default asks ``socket.getaddrinfo``."""

Opener = Callable[[urllib.request.Request, float], tuple[int, Mapping[str, str]]]
"""``(request, timeout) -> (status, lower-cased headers)``; raises ``OSError`` if no response."""


class PushConfigError(ValueError):
    """A push URL the agent refuses to send to; the message says why (safe for the client)."""


@dataclass(frozen=True)
class PushTarget:
    """Where one push notification goes, and the secrets that go with it."""

    url: str
    token: str | None = None
    """Sent as ``X-A2A-Notification-Token`` so the client can tell our POSTs from forgeries."""
    authorization: str | None = None
    """The whole ``Authorization`` header, e.g. ``"Bearer xyz"`` (from the config's credentials)."""
    config_id: str | None = None


@dataclass(frozen=True)
class PushResult:
    """How one :meth:`PushSender.send` went: ``status`` is the last HTTP status received, if any;
    ``error`` says why the last attempt failed (it never holds the token or authorization)."""

    delivered: bool
    attempts: int
    status: int | None
    error: str | None
    retryable: bool = False
    """Whether the last failure may pass if tried later (timeouts, 5xx, 429, lookups)."""
    retry_after: float | None = None
    """Seconds the server asked us to wait (``Retry-After`` of a 429 or 503)."""


def validate_push_url(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> str:
    """Return ``url`` normalised, or raise :class:`PushConfigError` saying why it is refused."""
    normalised, host, port = _split(url, allow_private=allow_private)
    if not allow_private:
        try:
            _check_host(host, port, resolver or _getaddrinfo)
        except OSError as exc:
            raise PushConfigError(f"push URL host {host!r} does not resolve: {exc}") from None
    return normalised


def _split(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """Check the URL's shape; return it normalised, with its host and port."""
    if len(url) > MAX_URL_LENGTH:
        raise PushConfigError(f"push URL is longer than {MAX_URL_LENGTH} characters")
    if not url.isascii() or any(ch <= " " or ch == "\x7f" for ch in url):
        raise PushConfigError("push URL must be ASCII without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise PushConfigError(f"push URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_private):
        also = " (or http)" if allow_private else ""
        raise PushConfigError(f"push URL must use https{also}, not {scheme or 'no scheme'!r}")
    if "@" in parts.netloc:
        raise PushConfigError("push URL must not carry a user name or password")
    host = parts.hostname
    if not host:
        raise PushConfigError("push URL has no host")
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    normalised = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    return normalised, host, port or (443 if scheme == "https" else 80)


def _check_host(host: str, port: int, resolver: Resolver) -> list[str]:
    """``host``'s addresses; :class:`PushConfigError` unless every one is public."""
    try:
        addresses = [str(ipaddress.ip_address(host))]  # a literal IP: nothing to resolve
    except ValueError:
        addresses = list(resolver(host, port))
    if not addresses:
        raise PushConfigError(f"push URL host {host!r} resolves to no address")
    for address in addresses:
        reason = _not_public(address)
        if reason:
            raise PushConfigError(f"push URL host {host!r} has {reason} address {address}")
    return addresses


def _not_public(address: str) -> str | None:
    """Why ``address`` (or an IPv4 address embedded in it) is not public, else None."""
    ip = ipaddress.ip_address(address)
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):  # ::ffff:a.b.c.d, 6to4 and Teredo carry IPv4
        embedded = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        candidates += [v4 for v4 in embedded if v4 is not None]
    for candidate in candidates:
        for flag in _FLAGS:  # most specific first: Python calls most of them private too
            if getattr(candidate, f"is_{flag}", False):  # IPv4 has no is_site_local
                return flag.replace("_", "-")
        if not candidate.is_global:  # e.g. 100.64.0.0/10, carrier-grade NAT
            return "non-global"
    return None


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


def _urlopen(
    request: urllib.request.Request, timeout: float, address: str | None = None
) -> tuple[int, Mapping[str, str]]:
    """Plain urllib HTTP(S), without proxies or redirects; an https URL goes to ``address``
    when given (the checked address: no second DNS lookup for a rebinding to win)."""
    opener = urllib.request.OpenerDirector()  # no redirect handler: a 3xx is an HTTPError
    https = urllib.request.HTTPSHandler() if address is None else _PinnedHTTPSHandler(address)
    opener.add_handler(https)
    for handler in ("HTTPHandler", "HTTPDefaultErrorHandler", "HTTPErrorProcessor"):
        opener.add_handler(getattr(urllib.request, handler)())
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a fixed address; TLS (SNI, certificate) still for the name."""

    def __init__(self, host: str, *, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        tls = ssl.create_default_context()
        self.sock = tls.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's HTTPS handler, connecting to ``address`` whatever the name resolves to now."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, **kwargs: Any) -> _PinnedHTTPSConnection:
            return _PinnedHTTPSConnection(host, address=self.address, **kwargs)

        return self.do_open(connection, req)


class _Outcome(NamedTuple):
    status: int | None
    error: str | None  # None: delivered
    retry: bool = False
    retry_after: float | None = None


class PushSender:
    """POSTs JSON to push targets, retrying transient failures with backoff and full jitter."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        timeout: float = 5.0,
        clock: Clock | None = None,
        opener: Opener | None = None,
        resolver: Resolver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1 or base_delay < 0 or max_delay < 0 or timeout <= 0:
            raise ValueError("need max_attempts >= 1, delays >= 0 and timeout > 0")
        self.allow_private, self.max_attempts, self.timeout = allow_private, max_attempts, timeout
        self.base_delay, self.max_delay = base_delay, max_delay
        self.clock: Clock = clock or SystemClock()
        self._open: Opener = opener or self._open_pinned
        self._pinned = threading.local()
        """The address :meth:`_attempt` checked, for the default opener to connect to."""
        self._resolve: Resolver = resolver or _getaddrinfo
        self._rng = rng or random.Random()

    def send(self, target: PushTarget, payload: Mapping[str, Any]) -> PushResult:
        """POST ``payload``; failures come back in the result, only a bad URL raises."""
        url, host, port = _split(target.url, allow_private=self.allow_private)
        extra = {"X-A2A-Notification-Token": target.token, "Authorization": target.authorization}
        headers = {k: v for k, v in extra.items() if v is not None}
        if any(ch < " " or ch == "\x7f" for value in headers.values() for ch in value):
            return PushResult(False, 0, None, "token or authorization has control characters")
        headers |= {"Content-Type": "application/json", "User-Agent": "pflambda-push"}
        body = json.dumps(payload, separators=(",", ":")).encode()
        shown = urlunsplit(urlsplit(url)._replace(query=""))  # a query may hold secrets
        for attempt in range(1, self.max_attempts + 1):
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            outcome = self._attempt(request, host, port)
            if outcome.error is None:
                return PushResult(True, attempt, outcome.status, None)
            log.warning(
                "push to %s (config %s): attempt %d/%d failed: %s",
                shown, target.config_id, attempt, self.max_attempts, outcome.error,
            )  # fmt: skip
            if not outcome.retry or attempt == self.max_attempts:
                return PushResult(
                    False,
                    attempt,
                    outcome.status,
                    outcome.error,
                    outcome.retry,
                    outcome.retry_after,
                )
            self.clock.sleep(self._delay(attempt, outcome.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, request: urllib.request.Request, host: str, port: int) -> _Outcome:
        """One POST, after checking the host's addresses again (DNS may have changed)."""
        address = None
        if not self.allow_private:
            try:
                address = _check_host(host, port, self._resolve)[0]
            except PushConfigError as exc:
                return _Outcome(None, f"refused: {exc}")
            except OSError as exc:
                return _Outcome(None, f"cannot resolve {host!r}: {exc}", retry=True)
        self._pinned.address = address
        try:
            status, reply = self._open(request, self.timeout)
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, TimeoutError):
                return _Outcome(None, f"timed out after {self.timeout}s", retry=True)
            return _Outcome(None, f"connection failed: {reason!r}", retry=True)
        if 200 <= status < 300:
            return _Outcome(status, None)
        if 300 <= status < 400:
            return _Outcome(status, f"HTTP {status}: redirects are not followed")
        if status == 429 or status >= 500:
            wait = _retry_after(reply) if status in (429, 503) else None
            return _Outcome(status, f"HTTP {status}", retry=True, retry_after=wait)
        return _Outcome(status, f"HTTP {status}")

    def _open_pinned(
        self, request: urllib.request.Request, timeout: float
    ) -> tuple[int, Mapping[str, str]]:
        """The default opener, connecting to the address just checked (if any)."""
        return _urlopen(request, timeout, getattr(self._pinned, "address", None))

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """The server's ``Retry-After`` if it gave one, else full jitter; at most ``max_delay``."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 32))
        return self._rng.uniform(0, ceiling)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """A ``Retry-After`` in whole seconds (HTTP dates are ignored: backoff takes over)."""
    value = headers.get("retry-after", "").strip()
    return float(value) if value.isascii() and value.isdigit() else None
