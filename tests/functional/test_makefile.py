"""The Makefile's targets say what they run (``make -n``), so a changed recipe shows up here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def dry_run(*args: str) -> str:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_local_takes_a_port() -> None:
    assert "pflambda local --host 127.0.0.1 --port 9123" in dry_run("local", "PORT=9123")
    assert "--port 8080" in dry_run("local")


def test_make_test_deep_runs_the_property_tests_with_the_deep_profile() -> None:
    recipe = dry_run("test-deep")
    assert "HYPOTHESIS_PROFILE=deep" in recipe
    assert "-m hypothesis" in recipe


def test_make_install_says_what_it_does_and_lets_pip_show_progress() -> None:
    recipe = dry_run("-B", "install")
    assert "Setting up" in recipe
    (install,) = [line for line in recipe.splitlines() if "-e '.[dev]'" in line]
    assert "--quiet" not in install


def test_make_dist_builds_a_wheel_and_an_sdist_without_downloading() -> None:
    assert "-m build --no-isolation --outdir dist ." in dry_run("-B", "dist")
