"""``pflambda init``: the generated project depends on pflambda and passes its own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PFLAMBDA_", "BEDROCK_"))}
    for key in ("PYTEST_ADDOPTS", "PYTHONPATH", "HYPOTHESIS_PROFILE"):
        env.pop(key, None)
    return env


def _init(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pflambda", "init", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(),
        check=False,
        timeout=30,
    )


def _pytest(project: Path, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        cwd=project,
        env=_env(),
        check=False,
        timeout=120,
    )


EXPECTED = (
    "flows/__init__.py",
    "flows/demo_agent/__init__.py",
    "flows/demo_agent/__main__.py",
    "flows/demo_agent/flow.py",
    "flows/demo_agent/nodes.py",
    "flows/demo_agent/utils.py",
    "handlers/__init__.py",
    "handlers/demo_agent.py",
    "handlers/worker.py",
    "events/send_message.json",
    "events/shared.json",
    "template.yaml",
    "requirements.txt",
    "layer-requirements.txt",
    "Makefile",
    "README.md",
    "pytest.ini",
    "tests/test_demo_agent.py",
)


def test_init_makes_a_project_that_depends_on_pflambda_and_passes_its_tests(
    tmp_path: Path,
) -> None:
    project = tmp_path / "somewhere"
    made = _init("demo-agent", "--dir", str(project))
    assert made.returncode == 0, made.stderr
    assert "make test" in made.stdout
    assert "make local" in made.stdout
    for name in EXPECTED:
        assert (project / name).is_file(), name
        assert name in made.stdout
    assert not (project / "pflambda").exists(), "pflambda's source was copied in"
    assert not (project / "demo-agent").exists(), "--dir D means the project is D"
    requirement = (project / "requirements.txt").read_text().strip().splitlines()[-1]
    assert requirement.startswith("pflambda")
    handler = (project / "handlers/demo_agent.py").read_text()
    assert 'name="demo-agent"' in handler
    assert 'flow="flows.demo_agent.flow:create_flow"' in handler
    template = (project / "template.yaml").read_text()
    assert "{{" not in template
    assert "handlers/demo_agent.handler" in template
    assert "DemoAgentFunction" in template
    assert "AWS::Serverless::LayerVersion" in template
    makefile = (project / "Makefile").read_text()
    for target in ("build-DemoAgentFunction:", "build-WorkerFunction:", "build-DepsLayer:"):
        assert target in makefile
    readme = (project / "README.md").read_text()
    assert "make test" in readme
    assert "make local" in readme

    tests = _pytest(project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout

    lint = subprocess.run(
        [str(BIN / "cfn-lint"), str(project / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr

    # the tests check behaviour, not words: another model's answers still pass ...
    utils = project / "flows/demo_agent/utils.py"
    original = utils.read_text()
    utils.write_text(
        original.replace('f"You asked: {question}"', 'f"{question} -- a fine question."')
    )
    assert _pytest(project).returncode == 0
    # ... and a flow that stops answering fails them
    utils.write_text(original.replace('return f"You asked: {question}"', 'return ""'))
    assert _pytest(project).returncode == 1

    again = _init("demo-agent", "--dir", str(project))
    assert again.returncode == 2
    assert again.stdout == ""
    assert "not empty" in again.stderr


def test_init_without_dir_creates_the_project_under_its_name(tmp_path: Path) -> None:
    made = _init("demo-agent", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "demo-agent" / "handlers" / "demo_agent.py").is_file()


def test_init_writes_the_requirement_it_is_given(tmp_path: Path) -> None:
    wheel = "pflambda @ file:///wheels/pflambda-9.9.9-py3-none-any.whl"
    made = _init("demo", "--dir", str(tmp_path / "p"), "--pflambda", wheel)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "p" / "requirements.txt").read_text().strip().endswith(wheel)
    bad = _init("demo", "--dir", str(tmp_path / "q"), "--pflambda", "requests")
    assert bad.returncode == 2
    assert "--pflambda must be one requirement for pflambda" in bad.stderr


def test_init_refuses_a_bad_name(tmp_path: Path) -> None:
    for name in ("Demo", "1agent", "demo_agent", "worker", "a" * 42):
        bad = _init(name, "--dir", str(tmp_path / "x"))
        assert bad.returncode == 2, name
        assert "invalid agent name" in bad.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_project_made_from_the_installed_wheel_depends_on_that_wheel(tmp_path: Path) -> None:
    """Build the wheel, install it alone into a new venv, init a project there, test it.

    The venv sees this one's site-packages (a .pth line) for the dependencies and test
    tools, so nothing is downloaded; pflambda itself comes from the wheel only.
    """
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("pflambda-*-py3-none-any.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(ours + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
        check=True,
        timeout=120,
        env=_env(),
    )
    where = subprocess.run(
        [python, "-c", "import pflambda; print(pflambda.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert where.startswith(site), where  # the wheel's copy, not the source tree
    version = subprocess.run(
        [str(venv / "bin" / "pflambda"), "--version"], check=True, capture_output=True, text=True
    )
    assert version.stdout.startswith("pflambda ")

    project = tmp_path / "agent"
    made = subprocess.run(
        [str(venv / "bin" / "pflambda"), "init", "demo-agent", "--dir", str(project)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        check=False,
    )
    assert made.returncode == 0, made.stderr
    requirement = (project / "requirements.txt").read_text().strip().splitlines()[-1]
    assert requirement == f"pflambda @ {wheel.resolve().as_uri()}"
    tests = _pytest(project, python)
    assert tests.returncode == 0, tests.stdout + tests.stderr
