"""The sending rules both queues share: size checks, argument ranges, batch planning.

They live here so that the in-memory queue refuses, and batches, exactly what SQS would.
"""

from __future__ import annotations

from collections.abc import Sequence

from pflambda.limits import SQS_MAX_BATCH, SQS_MAX_MESSAGE_BYTES
from pflambda.queues.base import MessageTooLarge

MAX_DELAY_SECONDS = 900
"""SQS's longest ``DelaySeconds``."""
MAX_VISIBILITY_TIMEOUT = 43_200
"""SQS's longest visibility timeout (12 hours)."""
MAX_WAIT_SECONDS = 20
"""SQS's longest long poll."""


def plan_batches(bodies: Sequence[str], delay_seconds: int) -> list[list[str]]:
    """Split ``bodies`` into SendMessageBatch calls, refusing the whole send up front.

    A call holds at most :data:`~pflambda.limits.SQS_MAX_BATCH` messages and at most
    :data:`~pflambda.limits.SQS_MAX_MESSAGE_BYTES` in total, as SQS requires.
    :class:`MessageTooLarge` names the first body over the limit; nothing is sent then.
    """
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be 0..{MAX_DELAY_SECONDS}, not {delay_seconds}")
    batches: list[list[str]] = []
    batch_bytes = 0
    for index, body in enumerate(bodies):
        size = len(body.encode("utf-8"))
        if size > SQS_MAX_MESSAGE_BYTES:
            raise MessageTooLarge(
                f"message {index} of {len(bodies)} is {size} bytes; "
                f"the limit is {SQS_MAX_MESSAGE_BYTES}; nothing was sent"
            )
        if (
            not batches
            or len(batches[-1]) == SQS_MAX_BATCH
            or batch_bytes + size > SQS_MAX_MESSAGE_BYTES
        ):
            batches.append([])
            batch_bytes = 0
        batches[-1].append(body)
        batch_bytes += size
    return batches


def check_receive(max_messages: int, wait_seconds: float, visibility_timeout: int) -> None:
    """Refuse what SQS's ReceiveMessage would refuse."""
    if not 1 <= max_messages <= SQS_MAX_BATCH:
        raise ValueError(f"max_messages must be 1..{SQS_MAX_BATCH}, not {max_messages}")
    if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        raise ValueError(f"wait_seconds must be 0..{MAX_WAIT_SECONDS}, not {wait_seconds}")
    if not 0 <= visibility_timeout <= MAX_VISIBILITY_TIMEOUT:
        raise ValueError(
            f"visibility_timeout must be 0..{MAX_VISIBILITY_TIMEOUT}, not {visibility_timeout}"
        )
