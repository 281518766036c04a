"""The hello flow: Draft -> Review."""

from __future__ import annotations

from pflambda import Flow

from .nodes import Draft, Review


def create_flow() -> Flow:
    """Draft (retried up to 3 times) then Review."""
    draft = Draft(max_retries=3, wait=1)
    draft - "review" >> Review()
    return Flow(start=draft)
