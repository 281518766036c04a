"""Screenshots of the run console for docs/console.md, taken in Debian's Chromium.

Starts the console on a local server over the in-memory store (its worker polling the
memory queue), makes a few runs of the example agents and the console test flows --
completed, paused for a reply, failed, forked, stalled -- and saves both pages as PNGs:

- docs/img/console-runs.png: the runs page;
- docs/img/console-run.png: a run paused inside a nested flow, step 1 selected.

Run: ``.venv/bin/python bench/console_screenshots.py`` (a few seconds; needs
/usr/bin/chromium and the ``playwright`` package from the dev extras).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pflambda.aws.config import Settings
from pflambda.aws.worker import Worker
from pflambda.clock import FakeClock
from pflambda.console.app import EVERYONE, Console
from pflambda.console.views import STALL_AFTER
from pflambda.engine.runner import Engine
from pflambda.local.emulator import free_port
from pflambda.local.server import LocalServer, SqsPoller

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
CHROMIUM = os.environ.get("PFLAMBDA_CHROMIUM", "/usr/bin/chromium")


def make_runs(engine: Any) -> None:
    """A handful of runs in every state the runs page shows."""
    clock = engine.clock
    engine.start(
        "flows.research.flow:create_flow",
        {"question": "What is a durable agent?"},
        agent="research",
        attrs={"a2a": {"agent": "research"}},
        owner="ada",
    )
    engine.start("tests.flows.sample:failing", {"limit": 2}, run_id="3f1c-failed", owner="grace")
    # a run that stopped (its driver "died") longer than STALL_AFTER ago: started on an
    # engine whose clock is that far back, over the same store
    past = Engine(engine.store, engine.blobs, clock=FakeClock(clock.now() - STALL_AFTER - 60))
    past.start(
        "tests.flows.sample:loop", {"limit": 40}, run_id="9a7e-stalled", max_steps=3, owner="ada"
    )
    engine.start(
        "tests.flows.sample:nested",
        {"items": [1, 2, 3], "files": ["a.txt", "b.txt"]},
        run_id="c44d-nested",
        owner="grace",
    )
    engine.fork("c44d-nested", 2, new_run_id="d81a-forked", update={"files": ["c.txt"]})
    engine.resume("d81a-forked")
    engine.start(
        "tests.flows.console:review",
        {"topic": "durable agents on Lambda"},
        run_id="7b2e-review",
        agent="approval",
        attrs={"a2a": {"agent": "approval"}},
        owner="ada",
    )


def main() -> None:
    from playwright.sync_api import sync_playwright

    os.environ["PFLAMBDA_STORE"] = "memory"
    engine = Settings.from_env().engine()
    assert engine.queue is not None
    poller = SqsPoller(engine.queue, Worker(engine), wait_seconds=0.2)
    console = Console(engine, operators={EVERYONE})
    server = LocalServer({}, "127.0.0.1", free_port(), poller=poller, console=console).start()
    try:
        with ThreadPoolExecutor(1) as pool:  # the engine's own loop, not Playwright's
            pool.submit(make_runs, engine).result()
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1360, "height": 760})
            page.goto(server.console_url())
            page.wait_for_selector('tr[data-run="7b2e-review"]')
            page.screenshot(path=str(OUT / "console-runs.png"))
            page.set_viewport_size({"width": 1360, "height": 1180})
            page.goto(server.console_url() + "runs/7b2e-review")
            page.wait_for_selector("svg .node.cursor")
            page.click('#timeline tbody tr[data-seq="1"]')
            page.wait_for_function("document.getElementById('diff').children.length > 0")
            page.screenshot(path=str(OUT / "console-run.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    for name in ("console-runs.png", "console-run.png"):
        print(f"{OUT / name}  {(OUT / name).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
