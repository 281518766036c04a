"""Service limits and tuning constants, in one place.

The AWS numbers are the services' documented hard limits; the in-memory twins
enforce the same ones, so a test that passes in memory does not fail on AWS.
"""

from __future__ import annotations

DYNAMODB_MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit (attribute names + values)."""

CHECKPOINT_BODY_BUDGET = 300 * 1024
"""Checkpoint bodies above this move their largest values to the blob store."""

INLINE_VALUE_LIMIT = 64 * 1024
"""A single shared value encoded larger than this always goes to the blob store."""

SQS_MAX_MESSAGE_BYTES = 256 * 1024
"""SQS's classic message size limit (we hold to it even where 1 MiB is allowed)."""

SQS_MAX_BATCH = 10
"""Messages per SendMessageBatch / DeleteMessageBatch call."""

SNAPSHOT_EVERY = 50
"""A full snapshot of shared is written at least every this many steps."""

SNAPSHOT_DELTA_BYTES = 256 * 1024
"""...or sooner, once the deltas since the last snapshot add up to this many bytes."""

DEADLINE_MARGIN_MS = 30_000
"""Stop starting nodes when the Lambda has less than this left, and continue elsewhere."""

DEFAULT_RUN_TTL_DAYS = 30
"""Runs and their checkpoints expire (DynamoDB TTL) this long after their last update."""
