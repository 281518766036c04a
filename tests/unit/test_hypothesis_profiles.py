"""The hypothesis profiles: CI is deterministic, ``deep`` explores more."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from tests.budget import CI_EXAMPLES, DEEP_EXAMPLES, examples


@pytest.mark.skipif("HYPOTHESIS_PROFILE" in os.environ, reason="a profile was chosen explicitly")
def test_the_default_profile_is_derandomized_with_no_example_database() -> None:
    assert settings.get_current_profile_name() == "ci"
    assert settings.default.derandomize
    assert settings.default.database is None


def test_ci_draws_the_same_examples_every_run() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize
    assert ci.database is None
    assert ci.max_examples == CI_EXAMPLES


def test_deep_draws_fresh_examples_and_many_more() -> None:
    deep = settings.get_profile("deep")
    assert not deep.derandomize
    assert deep.database is None
    assert deep.max_examples == DEEP_EXAMPLES > CI_EXAMPLES


def test_each_test_budget_scales_with_the_loaded_profile() -> None:
    current = settings.get_current_profile_name()
    try:
        settings.load_profile("deep")
        assert examples(300) == 300 * DEEP_EXAMPLES // CI_EXAMPLES
        settings.load_profile("ci")
        assert examples(300) == 300
    finally:
        settings.load_profile(current)


def test_dev_draws_fresh_examples_at_ci_budget() -> None:
    dev = settings.get_profile("dev")
    assert not dev.derandomize
    assert dev.database is None
    assert dev.max_examples == CI_EXAMPLES
