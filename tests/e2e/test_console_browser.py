"""The run console in Debian's Chromium, driven by Playwright: list, filters, graph, steps,
reply, fork -- and no HTML from user data ever runs (see console_kit for the browser)."""

# ruff: noqa: F811  (the fixtures are imported from console_kit by name)
from __future__ import annotations

import json
import re
from typing import Any

from pflambda.stores.base import RunStatus
from tests.e2e.console_kit import Stack, browser, page, stack  # noqa: F401  (fixtures)
from tests.flows.console import HOSTILE, HOSTILE_NAME, as_agent

REVIEW = "tests.flows.console:review"


def wait_for_status(stack: Stack, run_id: str, status: RunStatus) -> None:
    """The worker finishes runs in its poller thread: wait for it (no timed assert)."""
    import time

    for _ in range(400):
        if stack.engine.store.get_run(run_id).status == status:
            return
        time.sleep(0.025)
    assert stack.engine.store.get_run(run_id).status == status


def test_runs_page_lists_runs_and_filters_them(stack: Stack, page: Any) -> None:
    stack.start(REVIEW, {"topic": "cats"}, run_id="paused-run", **as_agent("writer"))
    stack.start("tests.flows.sample:loop", {"limit": 2}, run_id="done-run")
    stack.start("tests.flows.sample:failing", {"limit": 1}, run_id="failed-run")
    page.goto(stack.url)
    rows = page.locator("#runs tbody tr")
    rows.first.wait_for()
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.run)")) == [
        "done-run",
        "failed-run",
        "paused-run",
    ]
    paused = page.locator('tr[data-run="paused-run"]')
    assert paused.locator("td").nth(1).text_content() == "writer"
    assert paused.locator(".status").text_content() == "paused"
    assert paused.locator("td.node").text_content() == "Editing/Review"

    page.select_option("#filters select[name=status]", "failed")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 1")
    assert rows.first.get_attribute("data-run") == "failed-run"
    assert "status=failed" in page.url

    page.select_option("#filters select[name=status]", "")
    page.fill("#filters input[name=agent]", "writer")
    page.press("#filters input[name=agent]", "Enter")
    page.wait_for_function(
        "[...document.querySelectorAll('#runs tbody tr')].map(r => r.dataset.run).join() === 'paused-run'"
    )

    page.check("#filters input[name=stalled]")
    page.wait_for_selector("#empty:not([hidden])")


def test_runs_page_updates_live(stack: Stack, page: Any) -> None:
    page.goto(stack.url)
    page.wait_for_selector("#empty:not([hidden])")
    stack.start("tests.flows.sample:loop", {"limit": 1}, run_id="new-run")
    page.wait_for_selector('tr[data-run="new-run"]')  # no reload: the page polls


def test_run_page_shows_graph_cursor_step_and_diff(stack: Stack, page: Any) -> None:
    stack.start(REVIEW, {"topic": "cats", "big": "z" * 70_000}, run_id="r1")
    page.goto(stack.url + "runs/r1")
    page.wait_for_selector("svg .node.cursor")
    # the graph: nested flow as a group holding its node; the cursor on the paused node
    assert page.locator('svg g.flow[data-node="Editing"]').count() == 1
    assert page.locator("svg .node.cursor").get_attribute("data-node") == "Editing/Review"
    assert "active" in page.locator('svg g[data-node="Editing"]').get_attribute("class")
    assert page.locator('svg g[data-node="Draft"] .visits').text_content() == "\u00d71"
    assert page.locator("#prompt").text_content() == "Publish the draft?"
    # the timeline and the latest step's shared and diff
    assert page.locator("#timeline tbody tr").count() == 2
    page.wait_for_function("document.getElementById('shared').textContent.includes('About cats')")
    shared = json.loads(page.locator("#shared").text_content())
    assert shared == {"topic": "cats", "draft": "About cats", "words": 2}
    diff = page.locator("#diff li").all_text_contents()
    assert any("added" in d and "draft" in d and "About cats" in d for d in diff)
    # the large value: by size, loaded on demand
    large = page.locator('.offloaded[data-key="big"]')
    assert "68.4 KB of JSON" in large.text_content()
    large.locator("button").click()
    page.wait_for_selector('.offloaded[data-key="big"] pre:not([hidden])')
    assert json.loads(large.locator("pre").text_content()) == "z" * 70_000
    # step 0: the initial state, nothing but the topic
    page.click('#timeline tbody tr[data-seq="0"]')
    page.wait_for_function("!document.getElementById('shared').textContent.includes('draft')")
    assert json.loads(page.locator("#shared").text_content()) == {"topic": "cats"}
    assert page.locator('.offloaded[data-key="big"]').count() == 1


def test_reply_to_a_paused_run_completes_it(stack: Stack, page: Any) -> None:
    stack.start(REVIEW, {"topic": "dogs"}, run_id="r2")
    page.goto(stack.url + "runs/r2")
    page.wait_for_selector("#prompt-box:not([hidden])")
    page.fill("#reply-form textarea", "yes")
    page.click("#reply-form button")
    page.wait_for_selector("dialog[open]")
    assert page.locator("#dialog-text").text_content() == "yes"
    page.click("#dialog-ok")
    wait_for_status(stack, "r2", RunStatus.COMPLETED)
    page.wait_for_selector("#status.completed")
    assert stack.engine.state("r2")[0]["published"] == "ABOUT DOGS"
    # the reply is a step of its own in the timeline
    page.wait_for_selector('#timeline tbody tr[data-seq="2"]')
    assert page.locator('#timeline tbody tr[data-seq="2"] td').nth(1).text_content() == "(reply)"


def test_a_refused_action_says_why(stack: Stack, page: Any) -> None:
    stack.start(REVIEW, {"topic": "owls"}, run_id="r3")
    stack.engine.cancel("r3")
    page.goto(stack.url + "runs/r3")
    page.wait_for_selector("#status.cancelled")
    assert page.locator("#cancel").is_disabled()
    assert page.locator("#resume").is_disabled()
    # the server refuses too, with its reason on the page (forced through the API)
    status = page.evaluate(
        "fetch('../api/runs/r3/resume', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: '{}'}).then(async r => [r.status, (await r.json()).error])"
    )
    assert status[0] == 409
    assert "cancelled" in status[1]


def test_fork_from_a_step_with_edited_shared(stack: Stack, page: Any) -> None:
    stack.start(REVIEW, {"topic": "cats"}, run_id="r4")
    stack.resume("r4", reply="yes")
    page.goto(stack.url + "runs/r4")
    page.wait_for_selector("#status.completed")
    page.click('#timeline tbody tr[data-seq="1"]')
    page.wait_for_function("document.getElementById('step-no').textContent === '1'")
    page.click("#fork")
    page.wait_for_selector("dialog[open]")
    edited = json.loads(page.locator("#dialog-json").input_value())
    assert edited == {"topic": "cats", "draft": "About cats", "words": 2}
    edited["draft"] = "About birds"
    page.fill("#dialog-json", json.dumps(edited))
    page.click("#dialog-ok")
    page.wait_for_selector("#fork-link")
    message = page.locator("#message").text_content()
    new_id = re.search(r"as (\S+) with 1 key", message).group(1)
    record = stack.engine.store.get_run(new_id)
    assert record.attrs["forked_from"] == "r4"
    assert record.attrs["forked_at"] == 1
    wait_for_status(stack, new_id, RunStatus.PAUSED)  # it went on, to the question
    shared = stack.engine.state(new_id)[0]
    assert shared == {"topic": "cats", "draft": "About birds", "words": 2}
    page.click("#fork-link")
    page.wait_for_selector("#status.paused")
    assert page.locator("#run-id").text_content() == new_id


def test_user_data_is_never_rendered_as_html(stack: Stack, page: Any) -> None:
    stack.start(
        "tests.flows.console:hostile",
        {"topic": HOSTILE, "ask": HOSTILE, HOSTILE: HOSTILE},
        run_id="evil",
        owner=HOSTILE,
        **as_agent(HOSTILE),
    )
    page.goto(stack.url)
    page.wait_for_selector('tr[data-run="evil"]')
    assert page.locator('tr[data-run="evil"] td').nth(1).text_content() == HOSTILE
    page.goto(stack.url + "runs/evil")
    page.wait_for_selector("svg .node.cursor")
    page.wait_for_function("document.getElementById('shared').textContent.length > 2")
    assert page.locator("#prompt").text_content() == HOSTILE
    labels = page.locator("svg .label").all_text_contents()
    assert HOSTILE_NAME in labels
    shown = json.loads(page.locator("#shared").text_content())
    assert shown["topic"] == HOSTILE
    assert shown[HOSTILE] == HOSTILE
    # nothing ran, and no element came from the data
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img, main script, svg img").count() == 0


def test_the_pages_work_under_their_own_content_security_policy(stack: Stack, browser: Any) -> None:
    stack.start(REVIEW, {"topic": "csp"}, run_id="c1")
    context = browser.new_context()  # CSP enforced, as a user's browser does
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(stack.url)
        page.wait_for_selector('tr[data-run="c1"]')
        page.goto(stack.url + "runs/c1")
        page.wait_for_selector("svg .node.cursor")
        page.wait_for_selector("#diff li")
    finally:
        context.close()
    assert errors == []
