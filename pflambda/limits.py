"""Service limits and tuning constants, in one place.

The AWS numbers are the services' documented hard limits; the in-memory twins
enforce the same ones, so a test that passes in memory does not fail on AWS.
"""

from __future__ import annotations

DYNAMODB_MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit (attribute names + values)."""

CHECKPOINT_BODY_BUDGET = 300 * 1024
"""A checkpoint body larger than this (compressed) is stored in the blob store whole."""

INLINE_VALUE_LIMIT = 64 * 1024
"""A single shared value encoded larger than this always goes to the blob store."""

SQS_MAX_MESSAGE_BYTES = 256 * 1024
"""SQS's classic message size limit (we hold to it even where 1 MiB is allowed)."""

SQS_MAX_BATCH = 10
"""Messages per SendMessageBatch / DeleteMessageBatch call."""

SNAPSHOT_EVERY = 100
"""A full snapshot of shared is written at least every this many steps (bounds resume reads)."""

SNAPSHOT_READ_FACTOR = 4
"""...or sooner, once the deltas since the last snapshot add up to more than this many
times the snapshot (and to SNAPSHOT_DELTA_BYTES). The trade: a smaller factor reads less
on resume, a larger one writes fewer snapshots per step (the amortised cost of snapshots
is about 1/factor of the deltas' bytes)."""

SNAPSHOT_DELTA_BYTES = 4 * 1024
"""The deltas since a snapshot may always add up to this many bytes (a small state is
not re-snapshotted every few steps)."""

CHECKPOINT_ITEM_OVERHEAD = 200
"""Bytes a checkpoint costs beyond its body (keys, attributes), in the snapshot arithmetic."""

DEADLINE_MARGIN_MS = 30_000
"""Stop starting nodes when the Lambda has less than this left, and continue elsewhere."""

DEFAULT_RUN_TTL_DAYS = 30
"""A run -- its record and everything it owns -- is kept this long after its last status
change (and while it runs: after its last step, refreshed every half of it); then
DynamoDB's TTL deletes the record and the reaper the rest (docs/durability.md, "Retention")."""

DEFAULT_PAUSED_TTL_DAYS = 90
"""A run paused for input (``input-required``) is kept this long after it paused: a
human's answer may take weeks."""

MAX_RETENTION_DAYS = 365
"""The longest either retention may be: stored flow shapes (``shapes/``) live
:data:`SHAPE_LIFE_DAYS` after their last write, which must outlast any run."""

SHAPE_REFRESH_DAYS = 7
"""A process re-writes the shape of its flow when its last write is older than this."""

SHAPE_LIFE_DAYS = 400
"""The bucket's lifecycle rule deletes a ``shapes/`` object this long after its last write:
at least MAX_RETENTION_DAYS + SHAPE_REFRESH_DAYS, so a run never outlives its shape."""

ORPHAN_CHECK_SECONDS = 900
"""How long after a start that wrote blobs before its first write a worker checks that
the run got stored (SQS's longest delay); if not, those blobs are orphans and go."""

ORPHAN_DAYS = 1
"""Blobs under ``runs/<id>/`` of a run that never got a record (its start failed before
its first write) are deleted this long after they were written."""

API_MARGIN_MS = 10_000
"""An API request stops starting nodes this long before API Gateway's 29 s timeout and
hands the task to the worker (a node started later could outlive the request)."""

API_TIMEOUT_MS = 29_000
"""API Gateway's integration timeout."""

MARKER_CANCEL = "cancel"
"""The kind of step marker a cancel puts on a running run's next step."""

LEASE_GRACE_SECONDS = 10.0
"""A lease on Lambda ends this long after its invocation's own deadline."""

LEASE_SECONDS = 60.0
"""A lease outside Lambda (no deadline) lasts this long, renewed when half is gone."""

QUEUED_LEASE_SECONDS = 900.0
"""A run handed to the queue is the queue's for this long; past it the sweeper re-sends
its continuation (a lost message). 900 s is SQS's longest delay."""

VISIBILITY_GRACE_SECONDS = 15
"""A worker hides its message until this long after its own deadline (past its lease's
grace), so a crashed worker's message comes back as soon as its lease has lapsed."""

SWEEP_EVERY_SECONDS = 60
"""How often the sweeper looks for runs whose lease lapsed (the template's schedule)."""

INLINE_TEXT_BYTES = 8 * 1024
"""A question (or an A2A message) larger than this goes to the blob store by reference,
so a run's record stays small whatever people type."""

PUSH_CONFIGS_PER_TASK = 10
"""A task keeps at most this many push notification configs (they live on its run record)."""

PUSH_CONFIG_BYTES = 4 * 1024
"""One push config's stored form (URL, id, token, scheme, credentials as JSON) at most:
with :data:`PUSH_CONFIGS_PER_TASK`, 40 KB of the run record's 400 KB."""

RETRY_DELAY_SECONDS = 2
"""A run the API path left running after a retryable error goes to the queue, to be
continued this long after (the first step of the worker's own backoff)."""

RETRY_BACKOFF_MAX_SECONDS = 300
"""A continuation that failed for a retryable reason comes back after 2^n s, at most this."""

MAX_RECEIVES = 6
"""The work queue's RedrivePolicy ``maxReceiveCount`` (template.yaml, the emulator): a
message received this many times without success goes to the dead-letter queue. The
worker fails a fanned-out chunk itself on this receive (``Engine.max_attempts`` + 1)."""

LIST_SHARDS = 64
"""Default partitions per owner (and agent) in each listing index (``PFLAMBDA_LIST_SHARDS``,
the template's ``ListShards``): a run's index writes go to one of them by a hash of its
id, so one principal's runs spread over this many partitions (see docs/deploy.md for the
arithmetic); a listing merges this many Queries. A DynamoDB table records the largest
count any writer used and listings ask that many, so changing it either way hides no run
(:mod:`pflambda.stores._listing_shards`)."""

MAX_LIST_SHARDS = 1000
"""The most listing shards allowed: a listing sends one Query per shard."""
