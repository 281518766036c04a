"""DynamoDBStore: runs and checkpoints in one DynamoDB table.

Layout (see DESIGN.md §4; items are built in :mod:`pflambda.stores._item`):

========================  ==================  =========================================
pk                        sk                  holds
========================  ==================  =========================================
``RUN#<id>``              ``META``            the run; ``lpk``/``lsk``/``ssk``/``apk``
                                              (and ``cpk``) index it for listing
``RUN#<id>``              ``CKPT#<seq:012d>`` one committed step; ``size`` = body length
``RUN#<id>``              ``FAN#<seq:012d>``  a fan-out header; ``done`` counts chunks
``RUN#<id>``              ``FAN#<seq>#CHUNK#  one chunk's results (see
                          <chunk:08d>``       :mod:`pflambda.stores._fanout_items`)
========================  ==================  =========================================

Four indexes list runs by owner and agent (by status, by context) or all of them, each
sharded and sorted by last update (see :mod:`pflambda.stores._listing`); they project
the run without ``attrs``. ``gsi3`` is the sparse lease index: ``gsi3pk`` = ``LEASE#<shard>``,
``gsi3sk`` = lease end + ``#`` + id, present only while a run is leased, so the sweeper
reads only runs whose lease lapsed. A ``CKPT#`` item with a ``marker`` attribute only
claims its step (a cancel): loads and timelines skip it. ``ttl`` holds ``expires_at``.
Every access is a GetItem, PutItem, UpdateItem, Query or TransactWriteItems (starting a
run, a step with a status change, recording a chunk), or BatchWriteItem deletes (the
reaper's purge of an expired run, :mod:`pflambda.stores._dynamo_purge`): nothing here scans,
but the operator's one-off :meth:`DynamoDBStore.backfill_listing`.

The store is assembled from one class per kind of item, each on
:class:`~pflambda.stores._dynamo_table.DynamoTable` (the table, its schema, the shared
request plumbing): :mod:`~pflambda.stores._dynamo_runs` (the run record, its leases, the
transactions that write it with a checkpoint), :mod:`~pflambda.stores._dynamo_checkpoints`
(steps and markers); fan-out requests are built in :mod:`pflambda.stores._fanout_items`
and listing in :mod:`pflambda.stores._dynamo_listing`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, cast

from botocore.exceptions import ClientError

from pflambda.clock import Clock, SystemClock
from pflambda.errors import ConfigError
from pflambda.stores._dynamo_checkpoints import CheckpointItems
from pflambda.stores._dynamo_listing import count_items, list_items
from pflambda.stores._dynamo_purge import purge
from pflambda.stores._dynamo_runs import RunItems
from pflambda.stores._dynamo_table import (
    CONDITION_FAILED,
    TABLE_SCHEMA,
    TTL_ATTRIBUTE,
    S,
    create_table,
    error_code,
    translated,
)
from pflambda.stores._fanout_items import (
    cancelled,
    chunk_from_item,
    chunk_item,
    chunks_query,
    claim_request,
    fanout_from_item,
    fanout_item,
    fanout_key,
    fanout_name,
    not_found,
    record_request,
)
from pflambda.stores._item import listed_from_item
from pflambda.stores._listing import Scope, decode_token, encode_token
from pflambda.stores._listing_backfill import Backfill, Progress
from pflambda.stores._listing_dynamo_backfill import backfill_dynamodb
from pflambda.stores.base import FanOut, Page, RunStatus

__all__ = ["TABLE_SCHEMA", "TTL_ATTRIBUTE", "DynamoDBStore", "create_table"]


class DynamoDBStore(RunItems, CheckpointItems):
    """A :class:`~pflambda.stores.base.Store` on one DynamoDB table (see module doc)."""

    clock: Clock = SystemClock()
    """What a retry of throttled deletes waits on (a fake clock in tests)."""

    def purge_run(self, run_id: str) -> int:
        """Keys-only Query pages of the partition, deleted 25 per BatchWriteItem
        (checkpoint 0 last); see :mod:`pflambda.stores._dynamo_purge`."""
        return purge(self._client, self._table, run_id, translated, self.clock)

    def list_runs(
        self,
        *,
        limit: int = 50,
        next_token: str | None = None,
        context_id: str | None = None,
        owner: str | None = None,
        agent: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
    ) -> Page:
        """One Query per shard partition of the chosen index, merged by update time
        (see :mod:`pflambda.stores._dynamo_listing`)."""
        if limit < 1:
            raise ConfigError(f"list_runs limit must be at least 1, not {limit}")
        after = decode_token(next_token)
        scope = Scope.of(owner, agent, context_id, status)
        items, more = list_items(
            self._query,
            self._table,
            scope,
            limit=limit,
            after=after,
            shards=self._shards.for_reads(),
        )
        token = encode_token(items[-1]["lsk"][S]) if more else None
        return Page([listed_from_item(item) for item in items], token)

    def count_runs(
        self,
        *,
        context_id: str | None = None,
        owner: str | None = None,
        agent: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
    ) -> int:
        """A ``Select=COUNT`` Query per shard partition, paged: reads every match."""
        scope = Scope.of(owner, agent, context_id, status)
        return count_items(self._query, self._table, scope, self._shards.for_reads())

    def backfill_listing(
        self, *, page_size: int = 500, progress: Progress | None = None
    ) -> Backfill:
        """Give listing keys to runs created before the listing indexes existed (paged
        Scans, conditional writes: safe while live and to re-run; see
        :mod:`pflambda.stores._listing_dynamo_backfill`). The operator's one scan."""
        return backfill_dynamodb(
            self._client,
            self._table,
            self._shards.for_writes(),
            translated,
            page_size=page_size,
            progress=progress,
        )

    def create_fanout(self, fanout: FanOut) -> FanOut:
        """One conditional PutItem; if the header is there, a consistent GetItem of it."""
        item = fanout_item(fanout)
        with translated(f"create {fanout_name(fanout.run_id, fanout.seq)}"):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as err:
                if error_code(err) != CONDITION_FAILED:
                    raise
                return self.get_fanout(fanout.run_id, fanout.seq)
        return fanout_from_item(item)

    def get_fanout(self, run_id: str, seq: int) -> FanOut:
        """The header (strongly consistent); FanOutNotFound if there is none."""
        with translated(f"get {fanout_name(run_id, seq)}"):
            response = self._client.get_item(
                TableName=self._table, Key=fanout_key(run_id, seq), ConsistentRead=True
            )
        if "Item" not in response:
            raise not_found(run_id, seq)
        return fanout_from_item(response["Item"])

    def record_chunk(
        self, run_id: str, seq: int, chunk: int, body: bytes, *, expires_at: int | None = None
    ) -> bool:
        """One TransactWriteItems: put the chunk if new, ``ADD done 1`` on the header."""
        item = chunk_item(run_id, seq, chunk, body, expires_at)
        with translated(f"record chunk {chunk} of {fanout_name(run_id, seq)}"):
            try:
                self._client.transact_write_items(**record_request(self._table, run_id, seq, item))
            except ClientError as err:
                if error_code(err) != "TransactionCanceledException":
                    raise
                reasons = cast("Mapping[str, Any]", err.response).get("CancellationReasons", [])
                try:
                    return cancelled(reasons, run_id, seq, chunk)
                except LookupError:
                    raise err from None
        return True

    def claim_fanin(self, run_id: str, seq: int) -> bool:
        """One conditional UpdateItem: ``claimed`` goes true once, when all chunks are done."""
        with translated(f"claim the fan-in of {fanout_name(run_id, seq)}"):
            try:
                self._client.update_item(**claim_request(self._table, run_id, seq))
            except ClientError as err:
                if error_code(err) != CONDITION_FAILED:
                    raise
                if cast("Mapping[str, Any]", err.response).get("Item") is None:
                    raise not_found(run_id, seq) from None
                return False
        return True

    def load_chunks(self, run_id: str, seq: int) -> list[tuple[int, bytes]]:
        """One Query (pages aside) of the chunk items, in sort-key (= chunk) order."""
        request = chunks_query(self._table, run_id, seq)
        pages = self._pages(request, f"load the chunks of {fanout_name(run_id, seq)}")
        return [chunk_from_item(item) for items in pages for item in items]
