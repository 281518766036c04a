"""``python -m pflambda.bundle``: a function's bundle is its handler, its flows and pflambda."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bundle(handler: str, dest: Path) -> set[str]:
    env = {**os.environ, "PFLAMBDA_STORE": "memory"}
    done = subprocess.run(
        [sys.executable, "-m", "pflambda.bundle", handler, str(dest)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "pflambda/" in done.stdout
    return {p.relative_to(dest).as_posix() for p in dest.rglob("*.py") if "pflambda" not in p.parts}


def test_an_agent_bundle_holds_its_handler_and_its_flow_only(tmp_path: Path) -> None:
    files = bundle("handlers/research.handler", tmp_path)
    assert files == {
        "flows/__init__.py",
        "flows/llm.py",
        "flows/research/__init__.py",
        "flows/research/flow.py",
        "flows/research/nodes.py",
        "flows/research/utils.py",
        "handlers/__init__.py",
        "handlers/research.py",
    }
    assert (tmp_path / "pflambda" / "__init__.py").is_file()
    assert not (tmp_path / "pflambda" / "scaffold_files").exists()
    assert not list(tmp_path.rglob("__pycache__"))


def test_the_worker_bundle_holds_every_agent_it_serves(tmp_path: Path) -> None:
    files = bundle("handlers/worker.handler", tmp_path)
    for agent in ("research", "approval", "summarise"):
        assert f"handlers/{agent}.py" in files
        assert f"flows/{agent}/flow.py" in files
    assert not any(f.startswith(("tests/", "bench/")) for f in files)
