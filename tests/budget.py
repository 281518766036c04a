"""How many examples a hypothesis test draws, scaled to the profile loaded in tests/conftest.py."""

from __future__ import annotations

from hypothesis import settings

CI_EXAMPLES = 100  # the ``ci`` profile's budget: each test's own number is given at this scale
DEEP_EXAMPLES = 20 * CI_EXAMPLES  # ``make test-deep``


def examples(at_ci: int) -> int:
    """``at_ci`` examples under the ``ci`` profile, proportionally more under ``deep``."""
    return max(1, at_ci * settings.default.max_examples // CI_EXAMPLES)
