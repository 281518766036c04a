"""Push delivery connects to the address it checked: DNS cannot rebind in between."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from pflambda.a2a.push import PushSender, PushTarget


def test_the_post_goes_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []
    connects: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["93.184.216.34"]  # public when checked

    def rebinding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the host was resolved a second time")

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        connects.append(address)
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    sender = PushSender(max_attempts=1, resolver=resolver)
    result = sender.send(PushTarget("https://rebind.example:8443/hook", token="t"), {"a": 1})
    assert not result.delivered
    assert "connection failed" in (result.error or "")
    assert lookups == ["rebind.example"]
    assert connects == [("93.184.216.34", 8443)]


def test_private_addresses_are_never_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    def create_connection(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("connected to a private address")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    sender = PushSender(max_attempts=1, resolver=lambda host, port: ["10.0.0.7"])
    result = sender.send(PushTarget("https://inside.example/hook"), {})
    assert not result.delivered
    assert "private" in (result.error or "")
