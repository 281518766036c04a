"""A console to drive in a real browser: a local server on memory ports, its worker polling.

Chromium comes from Debian (``apt-get install chromium``, /usr/bin/chromium), driven
by Playwright for Python; Playwright's own browser download is not used. Without
Chromium the browser tests FAIL (they never skip silently): ``make test`` and
``.ci/run`` install it when missing; set ``PFLAMBDA_SKIP_BROWSER=1`` to skip them
on purpose on a machine that cannot have it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from pflambda.aws.config import Settings, reset_memory_ports
from pflambda.aws.worker import Worker
from pflambda.console.app import EVERYONE, Console
from pflambda.engine.runner import Engine
from pflambda.local.emulator import free_port
from pflambda.local.server import LocalServer, SqsPoller

CHROMIUM = os.environ.get("PFLAMBDA_CHROMIUM", "/usr/bin/chromium")


def chromium_path() -> str:
    """Debian's Chromium, or a loud failure that says how to get it."""
    if os.environ.get("PFLAMBDA_SKIP_BROWSER") == "1":
        pytest.skip("PFLAMBDA_SKIP_BROWSER=1: browser tests skipped on purpose")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `apt-get install -y chromium` (make test does "
            "it as root), or set PFLAMBDA_SKIP_BROWSER=1 to skip the browser tests"
        )
    return CHROMIUM


@dataclass
class Stack:
    """The engine the console reads and acts through, and the console's URL."""

    engine: Engine
    server: LocalServer

    @property
    def url(self) -> str:
        return self.server.console_url()

    def start(self, *args: Any, **kw: Any) -> Any:
        """``engine.start`` -- in a thread: Playwright's sync API owns this thread's loop."""
        return _in_thread(self.engine.start, *args, **kw)

    def resume(self, *args: Any, **kw: Any) -> Any:
        """``engine.resume``, in a thread."""
        return _in_thread(self.engine.resume, *args, **kw)


def _in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kw).result()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for key in ("PFLAMBDA_TOKEN", "PFLAMBDA_TOKEN_SECRET", "PFLAMBDA_TOKEN_PARAMETER"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PFLAMBDA_STORE", "memory")
    reset_memory_ports()
    engine = Settings.from_env().engine()
    assert engine.queue is not None
    poller = SqsPoller(engine.queue, Worker(engine), wait_seconds=0.2)
    console = Console(engine, operators={EVERYONE})
    server = LocalServer({}, "127.0.0.1", free_port(), poller=poller, console=console).start()
    try:
        yield Stack(engine, server)
    finally:
        server.stop()
        reset_memory_ports()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # CSP bypassed: the HTML-injection test must prove the rendering safe on its own
    # (the console's CSP forbids inline script too; tests/functional checks the header).
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"the page raised: {errors}"
