"""Fault tests run on the functional tests' moto stack."""

from tests.functional.conftest import aws  # noqa: F401  (the fixture)
