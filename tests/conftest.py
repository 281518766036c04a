"""Suite-wide setup: the in-memory store by default, and the hypothesis profiles.

Outside Lambda pflambda's default is the embedded SQLite store in ``.pflambda/`` of the
working directory; a test that builds an Agent or Settings without saying which store
would otherwise write there. Tests of the embedded store set ``PFLAMBDA_STORE`` (or pass
an ``env``) themselves.

Hypothesis profiles, chosen with ``HYPOTHESIS_PROFILE``: ``ci`` (the default, used by
``make test`` and .ci/run) is derandomized: every run draws the same examples, so a failure
reproduces by re-running and a green CI stays green; it keeps no ``.hypothesis`` example
database, so nothing replays from a previous run's failures. ``deep`` (``make test-deep``)
draws fresh random examples, 20 times as many per test, and prints how to reproduce what it
finds (``@reproduce_failure``). ``dev`` is random like ``deep`` but at CI's budget.
"""

from __future__ import annotations

import os

from hypothesis import settings

from tests.budget import CI_EXAMPLES, DEEP_EXAMPLES

os.environ.setdefault("PFLAMBDA_STORE", "memory")

settings.register_profile(
    "ci", max_examples=CI_EXAMPLES, derandomize=True, database=None, print_blob=True
)
# Each profile says every setting it relies on: a profile inherits what it does not set from
# the settings current at registration, and when the ``CI`` variable is set Hypothesis's own
# "ci" profile (derandomized) is current -- ``dev`` and ``deep`` would silently stop drawing
# fresh examples on a CI machine.
settings.register_profile(
    "dev", max_examples=CI_EXAMPLES, derandomize=False, database=None, print_blob=True
)
settings.register_profile(
    "deep", max_examples=DEEP_EXAMPLES, derandomize=False, database=None, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
