"""The README's example works as the README says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from flows.hello.flow import create_flow
from pflambda.graph import to_mermaid

ROOT = Path(__file__).resolve().parents[2]


def test_hello_in_process() -> None:
    shared = {"topic": "tides"}
    assert create_flow().run(shared) is None
    assert shared == {"topic": "tides", "draft": "A short note on tides.", "approved": True}


def test_hello_durably_from_the_cli() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pflambda",
            "run",
            "flows.hello.flow:create_flow",
            "--shared",
            '{"topic": "tides"}',
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PFLAMBDA_STORE": "memory", "PYTHONPATH": str(ROOT)},
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "step    1  Draft -> 'review'" in proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["status"] == "completed"
    assert last["shared"]["approved"] is True


def test_hello_graph() -> None:
    assert '-->|"review"|' in to_mermaid(create_flow())
