"""Push delivery: which URLs are refused (SSRF), what a webhook receives, and when we retry.

The delivery tests POST to a real ``http.server`` on 127.0.0.1 (hence ``allow_private``);
backoff sleeps go through a FakeClock, so only the timeout test waits (about 0.4 s).
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pflambda.a2a.push import PushConfigError, PushSender, PushTarget, validate_push_url
from pflambda.clock import FakeClock

PUBLIC = "93.184.216.34"
PAYLOAD = {"id": "task-1", "status": {"state": "completed"}, "note": "naïve ✓"}


def public(host: str, port: int) -> list[str]:
    return [PUBLIC]


def resolving_to(*addresses: str) -> Any:
    return lambda host, port: list(addresses)


# -- URL validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/hook", "https://example.com/hook"),
        ("HTTPS://Example.COM", "https://example.com/"),
        ("https://example.com:8443/a?b=1#frag", "https://example.com:8443/a?b=1"),
        (f"https://{PUBLIC}/x", f"https://{PUBLIC}/x"),
        ("https://[2606:4700::1]/x", "https://[2606:4700::1]/x"),
    ],
)
def test_public_https_urls_are_accepted_and_normalised(url: str, expected: str) -> None:
    assert validate_push_url(url, allow_private=False, resolver=public) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "must use https"),
        ("ftp://example.com/hook", "must use https"),
        ("example.com/hook", "must use https"),
        ("https:///hook", "no host"),
        ("https://user:pass@example.com/", "user name or password"),
        ("https://user@example.com/", "user name or password"),
        ("https://example.com/" + "a" * 2048, "longer than 2048"),
        ("https://exa mple.com/", "control characters"),
        ("https://exämple.com/", "ASCII"),
        ("https://example.com:99999/", "malformed"),
        ("https://[::1/", "malformed"),
        ("https://10.0.0.1/", "private"),
        ("https://192.168.1.20/", "private"),
        ("https://127.0.0.1/", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("https://240.0.0.1/", "reserved"),
        ("https://100.64.0.1/", "non-global"),
        ("https://[::1]/", "loopback"),
        ("https://[::]/", "unspecified"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fc00::1]/", "private"),
        ("https://[fec0::1]/", "site-local"),
        ("https://[ff02::1]/", "multicast"),
        ("https://[::ffff:127.0.0.1]/", "127.0.0.1"),
        ("https://[::ffff:10.0.0.1]/", "10.0.0.1"),
        ("https://[2002:7f00:1::]/", "address 2002:7f00:1::"),
    ],
)
def test_unsafe_urls_are_refused(url: str, reason: str) -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return [PUBLIC]

    with pytest.raises(PushConfigError, match=reason):
        validate_push_url(url, allow_private=False, resolver=resolver)
    assert calls == []  # literal IPs are checked as they are, never resolved


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.1.2.3"], "private address 10.1.2.3"),
        ([PUBLIC, "192.168.0.7"], "private address 192.168.0.7"),  # any one is enough
        (["::1"], "loopback"),
        (["::ffff:127.0.0.1"], "127.0.0.1"),
        ([], "no address"),
    ],
)
def test_names_resolving_to_unsafe_addresses_are_refused(addresses: list[str], reason: str) -> None:
    resolver = resolving_to(*addresses)
    with pytest.raises(PushConfigError, match=reason):
        validate_push_url("https://hooks.example.com/", allow_private=False, resolver=resolver)


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(PushConfigError, match="does not resolve"):
        validate_push_url("https://nowhere.invalid/", allow_private=False, resolver=resolver)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "https://10.0.0.1/", "http://localhost/", "http://[::1]/"]
)
def test_allow_private_lets_http_and_private_addresses_through(url: str) -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise AssertionError("allow_private does not resolve")

    assert validate_push_url(url, allow_private=True, resolver=resolver)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http://u:p@127.0.0.1/", "http:///x"])
def test_allow_private_still_checks_the_url_shape(url: str) -> None:
    with pytest.raises(PushConfigError):
        validate_push_url(url, allow_private=True)


# -- a real webhook ---------------------------------------------------------------------


@dataclass
class Webhook:
    """What the local server received, and what it answers next: (status, headers, delay)."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    hook: Webhook

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left: writing to it may fail


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        hook = self.server.hook
        hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status, headers, delay = hook.script.pop(0) if hook.script else (200, {}, 0.0)
        if delay:
            hook.release.wait(delay)
        self.send_response(status)
        for name, value in {**headers, "Content-Length": "0"}.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hook = hook = Webhook(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield hook
    finally:
        hook.release.set()
        server.shutdown()
        thread.join()
        server.server_close()


def local_sender(clock: FakeClock, **kwargs: Any) -> PushSender:
    options: dict[str, Any] = {"timeout": 2.0, "rng": random.Random(7)} | kwargs
    return PushSender(allow_private=True, clock=clock, **options)


def test_the_webhook_receives_the_json_and_the_secrets(webhook: Webhook) -> None:
    target = PushTarget(webhook.url, token="tok-123", authorization="Bearer xyz", config_id="c1")
    result = local_sender(FakeClock()).send(target, PAYLOAD)
    assert (result.delivered, result.attempts, result.status, result.error) == (True, 1, 200, None)
    [(headers, body)] = webhook.received
    assert json.loads(body) == PAYLOAD
    assert headers["content-type"] == "application/json"
    assert headers["x-a2a-notification-token"] == "tok-123"
    assert headers["authorization"] == "Bearer xyz"


def test_no_secret_headers_without_secrets(webhook: Webhook) -> None:
    assert local_sender(FakeClock()).send(PushTarget(webhook.url), PAYLOAD).delivered
    [(headers, _)] = webhook.received
    assert "x-a2a-notification-token" not in headers
    assert "authorization" not in headers


def test_503_is_retried_with_jittered_backoff(webhook: Webhook) -> None:
    webhook.script = [(503, {}, 0.0), (503, {}, 0.0)]
    clock = FakeClock()
    result = local_sender(clock, base_delay=0.5).send(PushTarget(webhook.url), PAYLOAD)
    assert (result.delivered, result.attempts, result.status) == (True, 3, 200)
    assert len(webhook.received) == 3
    assert len(clock.slept) == 2
    assert 0 <= clock.slept[0] <= 0.5
    assert 0 <= clock.slept[1] <= 1.0


def test_429_retry_after_is_honoured(webhook: Webhook) -> None:
    webhook.script = [(429, {"Retry-After": "2"}, 0.0)]
    clock = FakeClock()
    result = local_sender(clock).send(PushTarget(webhook.url), PAYLOAD)
    assert (result.delivered, result.attempts) == (True, 2)
    assert clock.slept == [2.0]


def test_404_is_not_retried(webhook: Webhook) -> None:
    webhook.script = [(404, {}, 0.0)]
    clock = FakeClock()
    result = local_sender(clock).send(PushTarget(webhook.url), PAYLOAD)
    assert (result.delivered, result.attempts, result.status) == (False, 1, 404)
    assert result.error == "HTTP 404"
    assert clock.slept == []


def test_a_redirect_is_not_followed(webhook: Webhook) -> None:
    webhook.script = [(302, {"Location": webhook.url + "/elsewhere"}, 0.0)]
    result = local_sender(FakeClock()).send(PushTarget(webhook.url), PAYLOAD)
    assert (result.delivered, result.attempts, result.status) == (False, 1, 302)
    assert len(webhook.received) == 1


def test_connection_refused_is_retried_until_max_attempts() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed at once: nothing listens there
    clock = FakeClock()
    result = local_sender(clock, max_attempts=4).send(PushTarget(f"http://127.0.0.1:{port}/"), {})
    assert (result.delivered, result.attempts, result.status) == (False, 4, None)
    assert result.error is not None
    assert "connection failed" in result.error
    assert len(clock.slept) == 3


def test_a_slow_webhook_times_out_and_is_retried(webhook: Webhook) -> None:
    webhook.script = [(200, {}, 3.0), (200, {}, 3.0)]
    sender = local_sender(FakeClock(), timeout=0.2, max_attempts=2)
    result = sender.send(PushTarget(webhook.url), PAYLOAD)
    assert (result.delivered, result.attempts, result.error) == (False, 2, "timed out after 0.2s")


# -- retries and safety, with a stub opener -------------------------------------------


class StubOpener:
    """Answers from a list of (status, headers) and remembers the requests."""

    def __init__(self, answers: Iterable[tuple[int, Mapping[str, str]]]) -> None:
        self.answers = list(answers)
        self.requests: list[urllib.request.Request] = []

    def __call__(
        self, request: urllib.request.Request, timeout: float
    ) -> tuple[int, Mapping[str, str]]:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else (200, {})


def stub_sender(opener: StubOpener, clock: FakeClock, **kwargs: Any) -> PushSender:
    return PushSender(clock=clock, opener=opener, resolver=public, **kwargs)


HTTPS = PushTarget("https://hooks.example.com/a2a?sig=secret-q", "tok-secret", "Bearer auth-secret")


def test_retry_after_is_capped_at_max_delay() -> None:
    clock = FakeClock()
    opener = StubOpener([(503, {"retry-after": "100"})])
    assert stub_sender(opener, clock, max_delay=8.0).send(HTTPS, {}).delivered
    assert clock.slept == [8.0]


def test_a_date_retry_after_falls_back_to_backoff() -> None:
    clock = FakeClock()
    opener = StubOpener([(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})])
    assert stub_sender(opener, clock, base_delay=0.5).send(HTTPS, {}).delivered
    assert 0 <= clock.slept[0] <= 0.5


def test_backoff_grows_is_capped_and_is_seedable() -> None:
    def sleeps() -> list[float]:
        clock = FakeClock()
        opener = StubOpener([(500, {})] * 10)
        sender = stub_sender(opener, clock, max_attempts=8, max_delay=4.0, rng=random.Random(3))
        result = sender.send(HTTPS, {})
        assert (result.delivered, result.attempts, result.status) == (False, 8, 500)
        return clock.slept

    first = sleeps()
    assert first == sleeps()
    assert len(first) == 7
    assert all(0 <= s <= min(4.0, 0.5 * 2**i) for i, s in enumerate(first))


def test_dns_rebinding_is_refused_at_send_time() -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    resolver = lambda host, port: next(answers)  # noqa: E731
    validate_push_url(HTTPS.url, allow_private=False, resolver=resolver)
    opener = StubOpener([])
    sender = PushSender(clock=FakeClock(), opener=opener, resolver=resolver)
    result = sender.send(HTTPS, {})
    assert (result.delivered, result.attempts) == (False, 1)
    assert result.error is not None
    assert result.error.startswith("refused:")
    assert opener.requests == []


def test_a_failed_lookup_at_send_time_is_retried() -> None:
    calls: list[str] = []

    def flaky(host: str, port: int) -> list[str]:
        calls.append(host)
        if len(calls) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [PUBLIC]

    sender = PushSender(clock=FakeClock(), opener=StubOpener([]), resolver=flaky)
    assert sender.send(HTTPS, {}).attempts == 2


def test_send_raises_only_for_a_bad_url() -> None:
    sender = PushSender(clock=FakeClock(), opener=StubOpener([]), resolver=public)
    with pytest.raises(PushConfigError, match="https"):
        sender.send(PushTarget("http://hooks.example.com/"), {})


def test_header_injection_is_not_sent() -> None:
    opener = StubOpener([])
    target = PushTarget(HTTPS.url, token="tok\r\nX-Evil: 1")
    result = stub_sender(opener, FakeClock()).send(target, {})
    assert (result.delivered, result.attempts) == (False, 0)
    assert opener.requests == []


def test_failed_attempts_are_logged_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    opener = StubOpener([(500, {}), (401, {})])
    with caplog.at_level(logging.WARNING, logger="pflambda.push"):
        result = stub_sender(opener, FakeClock()).send(HTTPS, {})
    assert (result.delivered, result.attempts, result.status) == (False, 2, 401)
    assert len(caplog.records) == 2
    assert "HTTP 500" in caplog.text
    assert "hooks.example.com" in caplog.text
    for secret in ("tok-secret", "auth-secret", "secret-q"):
        assert secret not in caplog.text
        assert secret not in (result.error or "")
    sent = opener.requests[0]
    assert sent.get_header("X-a2a-notification-token") == "tok-secret"
    assert sent.get_header("Authorization") == "Bearer auth-secret"
    assert sent.get_method() == "POST"
