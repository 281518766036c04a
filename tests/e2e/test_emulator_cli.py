"""``pflambda emulator``: quiet by default (its exports stay visible), request logs on --verbose."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from pflambda.local.emulator import free_port

ROOT = Path(__file__).resolve().parents[2]


def serve_and_call(*flags: str) -> tuple[str, str]:
    """Start the emulator, make 3 requests, stop it: what it printed before and after them."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pflambda", "emulator", "--port", str(port), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if line.strip().startswith("export PFLAMBDA_QUEUE_URL="):
            break
    try:
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for _ in range(3):
            dynamodb.list_tables()
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    return "".join(printed), rest


@pytest.mark.slow
def test_the_emulator_prints_its_exports_and_no_request_lines() -> None:
    started, served = serve_and_call()
    assert "export AWS_ENDPOINT_URL=" in started
    assert "HTTP/1.1" not in started + served, started + served


@pytest.mark.slow
def test_verbose_shows_one_line_per_request() -> None:
    _, served = serve_and_call("--verbose")
    assert served.count('"POST / HTTP/1.1" 200') == 3, served
