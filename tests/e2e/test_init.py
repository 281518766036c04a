"""``pflambda init``: the generated project passes its own tests and cfn-lint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(pythonpath: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PFLAMBDA_", "BEDROCK_"))}
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONPATH"] = str(pythonpath)
    return env


def _init(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pflambda", "init", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(ROOT),
        check=False,
        timeout=30,
    )


def test_init_makes_a_project_that_tests_and_lints(tmp_path: Path) -> None:
    made = _init("demo-agent", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    project = tmp_path / "demo-agent"
    assert "make test" in made.stdout
    for name in (
        "flows/__init__.py",
        "flows/demo_agent/__init__.py",
        "flows/demo_agent/flow.py",
        "flows/demo_agent/nodes.py",
        "flows/demo_agent/utils.py",
        "handlers/__init__.py",
        "handlers/demo_agent.py",
        "handlers/worker.py",
        "template.yaml",
        "requirements.txt",
        "Makefile",
        "README.md",
        "pytest.ini",
        "tests/test_demo_agent.py",
        "pflambda/__init__.py",
        "pflambda/a2a/agent.py",
    ):
        assert (project / name).is_file(), name
        assert name in made.stdout or name.startswith("pflambda/")
    assert not (project / "pflambda" / "scaffold_files").exists()
    assert not list(project.rglob("__pycache__"))
    handler = (project / "handlers/demo_agent.py").read_text()
    assert 'name="demo-agent"' in handler
    assert 'flow="flows.demo_agent.flow:create_flow"' in handler
    template = (project / "template.yaml").read_text()
    assert "{{" not in template
    assert "handlers/demo_agent.handler" in template
    assert "DemoAgentFunction" in template
    makefile = (project / "Makefile").read_text()
    assert "build-%Function:" in makefile
    assert "sam-build:" in makefile

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project / "tests")],
        capture_output=True,
        text=True,
        cwd=project,
        env=_env(project),
        check=False,
        timeout=60,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout

    lint = subprocess.run(
        [str(BIN / "cfn-lint"), str(project / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr

    again = _init("demo-agent", "--dir", str(tmp_path))
    assert again.returncode == 2
    assert again.stdout == ""
    assert len(again.stderr.strip().splitlines()) == 1
    assert "not empty" in again.stderr


def test_init_refuses_a_bad_name(tmp_path: Path) -> None:
    for name in ("Demo", "1agent", "demo_agent", "worker", "a" * 42):
        bad = _init(name, "--dir", str(tmp_path))
        assert bad.returncode == 2, name
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert "invalid agent name" in bad.stderr
    assert not any(tmp_path.iterdir())
