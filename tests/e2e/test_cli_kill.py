"""A real ``kill -9`` of ``pflambda run`` against ``pflambda emulator``, then ``resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pflambda.local.emulator import free_port

ROOT = Path(__file__).resolve().parents[2]
PFLAMBDA = [sys.executable, "-m", "pflambda"]


@pytest.fixture(scope="module")
def emulator_env() -> Iterator[dict[str, str]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.Popen(
        [*PFLAMBDA, "emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    exports: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if line.strip().startswith("export "):
            key, _, value = line.strip()[len("export ") :].partition("=")
            exports[key] = value
            if key == "PFLAMBDA_QUEUE_URL":
                break
        assert time.monotonic() < deadline, "emulator did not start"
    assert "AWS_ENDPOINT_URL" in exports, "emulator printed no settings"
    try:
        yield {**env, **exports}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PFLAMBDA, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def last_json(stdout: str) -> dict[str, object]:
    return json.loads(stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_killed_run_resumes_to_the_same_end(emulator_env: dict[str, str]) -> None:
    shared = json.dumps({"limit": 40})
    clean = cli(emulator_env, "run", "tests.flows.sample:slow", "--shared", shared)
    assert clean.returncode == 0, clean.stderr
    expected = last_json(clean.stdout)["shared"]

    proc = subprocess.Popen(
        [*PFLAMBDA, "run", "tests.flows.sample:slow", "--shared", shared, "--run-id", "killed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=emulator_env,
        cwd=ROOT,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip().startswith("step   10"):
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    shown = cli(emulator_env, "runs", "show", "killed")
    assert shown.returncode == 0, shown.stderr
    assert "running" in shown.stdout.splitlines()[0]

    held = cli(emulator_env, "resume", "killed")  # the killed process's lease still stands
    assert held.returncode != 0
    assert "pflambda resume --force" in held.stderr
    assert len(held.stderr.strip().splitlines()) == 1

    resumed = cli(emulator_env, "resume", "killed", "--force")
    assert resumed.returncode == 0, resumed.stderr
    result = last_json(resumed.stdout)
    assert result["status"] == "completed"
    assert result["shared"] == expected

    listed = cli(emulator_env, "runs", "list")
    assert "killed" in listed.stdout


def test_paused_run_exit_code_and_reply(emulator_env: dict[str, str]) -> None:
    paused = cli(emulator_env, "run", "tests.flows.sample:approval", "--run-id", "ask")
    assert paused.returncode == 3, paused.stderr
    assert "approve the plan?" in paused.stderr
    done = cli(emulator_env, "resume", "ask", "--reply", "yes")
    assert done.returncode == 0, done.stderr
    assert last_json(done.stdout)["shared"]["decision"] == "go"  # type: ignore[index]


def test_fork_and_graph(emulator_env: dict[str, str]) -> None:
    cli(
        emulator_env,
        "run",
        "tests.flows.sample:loop",
        "--shared",
        '{"limit": 4}',
        "--run-id",
        "orig",
    )
    forked = cli(emulator_env, "fork", "orig", "--at", "2")
    assert forked.returncode == 0, forked.stderr
    assert last_json(forked.stdout)["shared"]["n"] == 4  # type: ignore[index]
    graph = cli(emulator_env, "graph", "tests.flows.sample:loop")
    assert graph.stdout.startswith("flowchart TD")


def test_errors_are_one_line_and_nonzero(emulator_env: dict[str, str]) -> None:
    missing = cli(emulator_env, "resume", "no-such-run")
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0
    bad = cli(emulator_env, "run", "tests.flows.sample:loop", "--shared", "[1]")
    assert bad.returncode == 2
    failed = cli(emulator_env, "run", "tests.flows.sample:failing", "--shared", '{"limit": 1}')
    assert failed.returncode == 1
    assert "kaboom" in failed.stderr


def test_cancel_a_paused_run(emulator_env: dict[str, str]) -> None:
    paused = cli(emulator_env, "run", "tests.flows.sample:approval", "--run-id", "to-cancel")
    assert paused.returncode == 3, paused.stderr
    cancelled = cli(emulator_env, "cancel", "to-cancel")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stdout
    again = cli(emulator_env, "resume", "to-cancel", "--reply", "yes")
    assert again.returncode == 1
    assert "cancelled" in again.stderr
