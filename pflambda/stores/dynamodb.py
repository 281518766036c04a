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
run, a step with a status change, recording a chunk): nothing here scans.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, cast

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from pflambda.errors import (
    CheckpointConflict,
    ConfigError,
    RetryableError,
    RunExists,
    RunNotFound,
)
from pflambda.limits import LIST_SHARDS, MARKER_CANCEL, SNAPSHOT_EVERY
from pflambda.stores._dynamo_listing import count_items, list_items
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
from pflambda.stores._item import (
    CKPT_PREFIX,
    LEASE_PREFIX,
    LEASE_SHARDS,
    MARKER,
    Item,
    check_size,
    checkpoint_from_item,
    checkpoint_item,
    checkpoint_sk,
    info_from_item,
    is_marker,
    lease_sk,
    listed_from_item,
    marker_item,
    moved_keys,
    refused,
    run_from_item,
    run_item,
    run_key,
    run_pk,
    update_values,
)
from pflambda.stores._listing import INDEXES, PROJECTED, Scope, decode_token, encode_token
from pflambda.stores.base import (
    Checkpoint,
    CheckpointInfo,
    FanOut,
    ItemTooLarge,
    LeaseHeld,
    Page,
    RunRecord,
    RunStatus,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["TABLE_SCHEMA", "DynamoDBStore", "create_table"]

_S = "S"
TABLE_SCHEMA: Final[dict[str, Any]] = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": _S}
        for name in ("pk", "sk", "lpk", "lsk", "ssk", "cpk", "apk", "gsi3pk", "gsi3sk")
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(PROJECTED)},
        }
        for index, hash_key, range_key in INDEXES
    ]
    + [
        {
            "IndexName": "gsi3",
            "KeySchema": [
                {"AttributeName": "gsi3pk", "KeyType": "HASH"},
                {"AttributeName": "gsi3sk", "KeyType": "RANGE"},
            ],
            "Projection": {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": [
                    "run_id",
                    "flow",
                    "fingerprint",
                    "status",
                    "created_at",
                    "updated_at",
                    "owner",
                    "lease_owner",
                    "lease_until",
                ],
            },
        }
    ],
}
"""``CreateTable`` arguments, less ``TableName``; ``template.yaml`` mirrors them."""

TTL_ATTRIBUTE: Final = "ttl"

_CONDITION_FAILED = "ConditionalCheckFailedException"
_REASON_FAILED = "ConditionalCheckFailed"
_RETRYABLE_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
"""A transaction's cancellation reason for a condition that did not hold."""
_RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)
"""Error codes worth retrying. ``TransactionConflictException``: a plain write met an
item that a transaction (recording a chunk) held at that moment."""
_TTL_UNSUPPORTED = frozenset({"UnknownOperationException", "NotImplemented"})
_LOAD_PAGE = SNAPSHOT_EVERY + 1
"""Items per page when loading: one snapshot interval fits one page. Paging goes on
until a snapshot is found, so a run written with sparser snapshots still loads right."""
_GUARD_ATTEMPTS = 5
"""Tries of an update whose index keys depend on a field read just before."""
_INFO_FIELDS = (
    "seq",
    "node_id",
    "action",
    "snapshot",
    "size",
    "created_at",
    "ms",
    "retries",
    "position",
    MARKER,
)
_CLAIM_TRIES = 20


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the table with :data:`TABLE_SCHEMA` if it is missing, wait, enable TTL."""
    try:
        client.create_table(TableName=table_name, **TABLE_SCHEMA)
    except ClientError as err:
        if _code(err) != "ResourceInUseException":
            raise
    waiter = client.get_waiter("table_exists")
    waiter.wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    described = client.describe_time_to_live(TableName=table_name)
    if described["TimeToLiveDescription"].get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return
    try:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    except ClientError as err:  # an emulator without TTL: items just never expire
        if _code(err) not in _TTL_UNSUPPORTED:
            raise


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn throttling, 5xx and network failures into RetryableError, oversize into
    ItemTooLarge; let every other error through."""
    try:
        yield
    except ClientError as err:
        code, message = _code(err), str(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _RETRYABLE or status >= 500:
            raise RetryableError(f"DynamoDB {what}: {message}") from err
        if code == "ValidationException" and "item size" in message.lower():
            raise ItemTooLarge(f"DynamoDB {what}: {message}") from err
        raise
    except (BotoConnectionError, HTTPClientError) as err:
        raise RetryableError(f"DynamoDB {what}: {err}") from err


class DynamoDBStore:
    """A :class:`~pflambda.stores.base.Store` on one DynamoDB table (see module doc)."""

    def __init__(
        self, table_name: str, client: DynamoDBClient, *, shards: int = LIST_SHARDS
    ) -> None:
        """``shards``: partitions per owner in each listing index; every writer and
        reader of one table must agree on it (see :data:`~pflambda.limits.LIST_SHARDS`)."""
        if shards < 1:
            raise ConfigError(f"shards must be at least 1, not {shards}")
        self._table = table_name
        self._client = client
        self._shards = shards

    def _put_new(self, item: Item, what: str) -> bool:
        """PutItem only if the key is free; False if it was taken (one request)."""
        with _translated(what):
            try:
                self._client.put_item(
                    TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
                )
            except ClientError as err:
                if _code(err) != _CONDITION_FAILED:
                    raise
                return False
        return True

    def create_run(self, record: RunRecord) -> None:
        """Store a new run; :class:`~pflambda.errors.RunExists` if the id is taken."""
        item = run_item(record, self._shards)
        check_size(item, f"run {record.run_id}")
        if not self._put_new(item, f"create run {record.run_id}"):
            raise RunExists(f"run {record.run_id} already exists")

    def start_run(self, record: RunRecord, checkpoint: Checkpoint) -> None:
        """One TransactWriteItems: the ``META`` item and checkpoint 0, each if new."""
        item = run_item(record, self._shards)
        check_size(item, f"run {record.run_id}")
        step = checkpoint_item(checkpoint)
        check_size(step, f"checkpoint {checkpoint.seq} of run {record.run_id}")
        new = "attribute_not_exists(pk)"
        items = [
            {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": new}},
            {"Put": {"TableName": self._table, "Item": step, "ConditionExpression": new}},
        ]
        reasons = self._transact(items, f"start run {record.run_id}")
        if reasons is not None:
            raise RunExists(f"run {record.run_id} already exists")

    def _transact(self, items: list[dict[str, Any]], what: str) -> list[Mapping[str, Any]] | None:
        """One TransactWriteItems; ``None`` if it went through, else the reasons of a
        refusal by conditions (throttling and conflicts raise RetryableError)."""
        with _translated(what):
            try:
                self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            except ClientError as err:
                if _code(err) != "TransactionCanceledException":
                    raise
                reasons = list(
                    cast("Mapping[str, Any]", err.response).get("CancellationReasons", [])
                )
                codes = {str(reason.get("Code", "None")) for reason in reasons}
                if codes & _RETRYABLE_REASONS:
                    raise RetryableError(f"DynamoDB {what}: {sorted(codes)}") from err
                if _REASON_FAILED not in codes:
                    raise
                return reasons
        return None

    def get_run(self, run_id: str) -> RunRecord:
        """The run's record (strongly consistent); RunNotFound if there is none."""
        with _translated(f"get run {run_id}"):
            response = self._client.get_item(
                TableName=self._table, Key=run_key(run_id), ConsistentRead=True
            )
        if "Item" not in response:
            raise RunNotFound(f"no run {run_id}")
        return run_from_item(response["Item"])

    def update_run(
        self,
        run_id: str,
        changes: Mapping[str, Any],
        *,
        expect_status: Collection[RunStatus] | None = None,
    ) -> RunRecord:
        """One conditional UpdateItem of only the named fields; ``None`` removes one.

        A change of ``status`` or ``updated_at`` also moves the run's index sort keys,
        which need both: when one is neither given nor implied by ``expect_status``, it
        is read first and the write is conditional on it not having changed since.
        """
        values = update_values(run_id, changes)
        if not values or (expect_status is not None and not expect_status):
            record = self.get_run(run_id)
            if expect_status is not None and record.status not in expect_status:
                raise refused(run_id, record.status, expect_status)
            return record
        check_size({k: v for k, v in values.items() if v}, f"the changes to run {run_id}")
        for _ in range(_GUARD_ATTEMPTS):
            guard, moved = self._moved_keys(run_id, changes, expect_status)
            request = _update_request(values | moved, expect_status, guard)
            updated, current = self._update_run_item(run_id, request, f"update run {run_id}")
            if updated is not None:
                return updated
            if expect_status is None or current["status"]["S"] in expect_status:
                continue  # the guarded field moved under us: read and try again
            raise refused(run_id, current["status"]["S"], expect_status)
        raise RetryableError(f"update run {run_id}: it kept changing under the update")

    def _moved_keys(
        self, run_id: str, changes: Mapping[str, Any], expect: Collection[RunStatus] | None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """``(guard, keys)``: the index sort keys an update moves, and the attributes
        read to compute them that the write must find unchanged."""
        if "status" not in changes and "updated_at" not in changes:
            return {}, {}
        status = changes.get("status")
        if status is None and expect is not None and len(set(expect)) == 1:
            (status,) = set(expect)
        updated = changes.get("updated_at")
        guard: dict[str, dict[str, Any]] = {}
        if status is None or updated is None:
            current = self.get_run(run_id)
            if status is None:
                status = current.status
                guard["status"] = {_S: RunStatus(status).value}
            if updated is None:
                updated = current.updated_at
                guard["updated_at"] = {"N": repr(float(updated))}
        return guard, moved_keys(run_id, RunStatus(status).value, float(updated))

    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        """One conditional PutItem; CheckpointConflict if the step is already there."""
        item = checkpoint_item(checkpoint)
        what = f"checkpoint {checkpoint.seq} of run {checkpoint.run_id}"
        check_size(item, what)
        if not self._put_new(item, f"put {what}"):
            raise CheckpointConflict(f"run {checkpoint.run_id} already has {what}")

    def commit_step(
        self,
        checkpoint: Checkpoint,
        changes: Mapping[str, Any],
        *,
        expect_status: Collection[RunStatus],
    ) -> None:
        """One TransactWriteItems: the checkpoint if its step is free, the run's change if
        its status is as expected."""
        step = checkpoint_item(checkpoint)
        run_id = checkpoint.run_id
        what = f"checkpoint {checkpoint.seq} of run {run_id}"
        check_size(step, what)
        values = update_values(run_id, changes)
        check_size({k: v for k, v in values.items() if v}, f"the changes to run {run_id}")
        guard, moved = self._moved_keys(run_id, changes, expect_status)
        update = {
            "TableName": self._table,
            "Key": run_key(run_id),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **_update_request(values | moved, expect_status, guard),
        }
        items = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": step,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": update},
        ]
        reasons = self._transact(items, f"commit {what}")
        if reasons is None:
            return
        if reasons[0].get("Code") == _REASON_FAILED:
            raise CheckpointConflict(f"run {run_id} already has {what}")
        current = reasons[1].get("Item")
        if not current:
            raise RunNotFound(f"no run {run_id}")
        if guard and current["status"]["S"] in expect_status:
            raise RetryableError(f"commit {what}: the run changed under the commit")
        raise refused(run_id, current["status"]["S"], expect_status)

    def acquire_lease(
        self,
        run_id: str,
        owner: str,
        until: float,
        *,
        now: float,
        expect_status: Collection[RunStatus] = (RunStatus.RUNNING,),
        takeover: Collection[str] = (),
        changes: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """One conditional UpdateItem that sets the lease (and ``changes``), returning the
        new record: granted without a live lease, or to its holder, or over ``takeover``."""
        values = update_values(
            run_id, {**(changes or {}), "lease_owner": owner, "lease_until": until}
        )
        guard, moved = self._moved_keys(run_id, changes or {}, expect_status)
        request = _update_request(values | moved, expect_status, guard)
        owners = {f":holder{i}": {_S: name} for i, name in enumerate([owner, *takeover])}
        request["ConditionExpression"] += (
            " AND (attribute_not_exists(#lease_until) OR #lease_until <= :now"
            f" OR #lease_owner IN ({', '.join(owners)}))"
        )
        request["ExpressionAttributeNames"] |= {
            "#lease_until": "lease_until",
            "#lease_owner": "lease_owner",
        }
        request["ExpressionAttributeValues"] |= {":now": {"N": repr(float(now))}, **owners}
        updated, current = self._update_run_item(run_id, request, f"lease run {run_id}")
        if updated is not None:
            return updated
        holder = run_from_item(current)
        if holder.status not in expect_status:
            raise refused(run_id, holder.status, expect_status)
        if any(current.get(attr) != value for attr, value in guard.items()):
            raise RetryableError(f"lease run {run_id}: it changed meanwhile")
        raise LeaseHeld(run_id, holder.lease_owner, holder.lease_until, now)

    def _update_run_item(
        self, run_id: str, request: Mapping[str, Any], what: str
    ) -> tuple[RunRecord | None, Mapping[str, Any]]:
        """One conditional UpdateItem of the run's META item: ``(new record, {})`` when it
        applied, ``(None, the item as it was)`` when its condition failed;
        :class:`RunNotFound` when there is no such run."""
        with _translated(what):
            try:
                response = self._client.update_item(
                    TableName=self._table,
                    Key=run_key(run_id),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **request,
                )
            except ClientError as err:
                if _code(err) != _CONDITION_FAILED:
                    raise
                current = cast("Mapping[str, Any]", err.response).get("Item")
                if current is None:
                    raise RunNotFound(f"no run {run_id}") from None
                return None, current
        return run_from_item(response["Attributes"]), {}

    def claim_step(self, run_id: str) -> int:
        """A Query for the newest step key, then a conditional PutItem of a marker on the
        step after it; a lost race (a step committed meanwhile) tries again."""
        for _ in range(_CLAIM_TRIES):
            with _translated(f"find the newest step of run {run_id}"):
                response = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :ckpt)",
                    ExpressionAttributeValues={
                        ":pk": {_S: run_pk(run_id)},
                        ":ckpt": {_S: CKPT_PREFIX},
                    },
                    ProjectionExpression="#seq, #marker",
                    ExpressionAttributeNames={"#seq": "seq", "#marker": MARKER},
                    ScanIndexForward=False,
                    ConsistentRead=True,
                    Limit=1,
                )
            items = response.get("Items", [])
            if items and is_marker(items[0]):
                return int(items[0]["seq"]["N"])
            seq = int(items[0]["seq"]["N"]) + 1 if items else 0
            marker = marker_item(run_id, seq, MARKER_CANCEL, None)
            if self._put_new(marker, f"claim step {seq} of run {run_id}"):
                return seq
        raise RetryableError(f"run {run_id}: could not claim a step in {_CLAIM_TRIES} tries")

    def list_stalled(self, now: float, *, limit: int = 100) -> list[RunRecord]:
        """One Query per shard of ``gsi3``: leases that ended before ``now``."""
        found: list[Item] = []
        for shard in range(LEASE_SHARDS):
            with _translated("list stalled runs"):
                response = self._client.query(
                    TableName=self._table,
                    IndexName="gsi3",
                    KeyConditionExpression="gsi3pk = :shard AND gsi3sk < :cut",
                    ExpressionAttributeValues={
                        ":shard": {_S: f"{LEASE_PREFIX}{shard}"},
                        ":cut": {_S: lease_sk(now, "\uffff")},
                    },
                    Limit=limit,
                )
            found += response.get("Items", [])
        found.sort(key=lambda item: str(item["gsi3sk"]["S"]))
        return [run_from_item(item) for item in found[:limit]]

    def load_checkpoints(self, run_id: str, at: int | None = None) -> list[Checkpoint]:
        """The newest checkpoint up to ``at`` (a one-item Query, newest first), then the
        steps from the snapshot it names (``base``) to just before it, in one more Query:
        only the items returned are read, however long the history.

        Checkpoints written without ``base`` are found by paging back to a snapshot.
        """
        if at is not None and at < 0:
            return []
        top = checkpoint_sk(at) if at is not None else f"{CKPT_PREFIX}{'9' * 12}"
        what = f"load checkpoints of run {run_id}"
        found = self._newest(run_id, top, what)
        if found and is_marker(found):  # a cancel's marker on top of the last checkpoint
            found = self._newest(run_id, checkpoint_sk(int(found["seq"]["N"]) - 1), what)
        if not found:
            return []
        newest = checkpoint_from_item(run_id, found)
        if newest.snapshot or newest.seq == 0:
            return [newest]
        if newest.base is not None and 0 <= newest.base < newest.seq:
            lo, hi = checkpoint_sk(newest.base), checkpoint_sk(newest.seq - 1)
            request = self._range(run_id, lo, hi, newest_first=False)
            pages = self._pages(request, what)
            older = [checkpoint_from_item(run_id, i) for p in pages for i in p if not is_marker(i)]
            if older and older[0].seq == newest.base and older[0].snapshot:
                return [*older, newest]
        return self._load_back_to_snapshot(run_id, newest, what)

    def _newest(self, run_id: str, top: str, what: str) -> dict[str, Any] | None:
        """The item with the highest step key up to ``top`` (one item read)."""
        request = self._range(run_id, checkpoint_sk(0), top, newest_first=True)
        request["Limit"] = 1
        items = next(self._pages(request, what))
        return items[0] if items else None

    def _load_back_to_snapshot(
        self, run_id: str, newest: Checkpoint, what: str
    ) -> list[Checkpoint]:
        """Page back from ``newest`` until a snapshot (checkpoints without ``base``)."""
        request = self._range(
            run_id, checkpoint_sk(0), checkpoint_sk(newest.seq - 1), newest_first=True
        )
        request["Limit"] = _LOAD_PAGE
        newest_first = [newest]
        for items in self._pages(request, what):
            for item in items:
                if is_marker(item):
                    continue
                newest_first.append(checkpoint_from_item(run_id, item))
                if newest_first[-1].snapshot:
                    return newest_first[::-1]
        return newest_first[::-1]

    def _range(self, run_id: str, lo: str, hi: str, *, newest_first: bool) -> dict[str, Any]:
        """A strongly consistent Query of one run's checkpoints with sort keys in [lo, hi]."""
        return {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {_S: run_pk(run_id)},
                ":lo": {_S: lo},
                ":hi": {_S: hi},
            },
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }

    def list_checkpoints(self, run_id: str, after: int = -1) -> Iterator[CheckpointInfo]:
        """Every checkpoint with ``seq > after``, oldest first; bodies are not read."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {_S: run_pk(run_id)},
                ":lo": {_S: checkpoint_sk(max(after + 1, 0))},
                ":hi": {_S: f"{CKPT_PREFIX}{'9' * 12}"},
            },
            "ProjectionExpression": ", ".join(f"#{name}" for name in _INFO_FIELDS),
            "ExpressionAttributeNames": {f"#{name}": name for name in _INFO_FIELDS},
            "ConsistentRead": True,
        }
        for items in self._pages(request, f"list checkpoints of run {run_id}"):
            yield from (info_from_item(item) for item in items if not is_marker(item))

    def last_checkpoint(self, run_id: str) -> CheckpointInfo | None:
        """One Query, newest first, ``Limit`` 1, bodies not read."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :lo)",
            "ExpressionAttributeValues": {":pk": {_S: run_pk(run_id)}, ":lo": {_S: CKPT_PREFIX}},
            "ProjectionExpression": ", ".join(f"#{name}" for name in _INFO_FIELDS),
            "ExpressionAttributeNames": {f"#{name}": name for name in _INFO_FIELDS},
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": 2,  # a cancel's marker may sit on top of the last checkpoint
        }
        with _translated(f"read the last checkpoint of run {run_id}"):
            items = self._client.query(**request).get("Items", [])
        found = [item for item in items if not is_marker(item)]
        return info_from_item(found[0]) if found else None

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
            self._query, self._table, scope, limit=limit, after=after, shards=self._shards
        )
        token = encode_token(items[-1]["lsk"][_S]) if more else None
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
        return count_items(self._query, self._table, scope, self._shards)

    def _query(self, request: dict[str, Any]) -> dict[str, Any]:
        with _translated("list runs"):
            return dict(self._client.query(**request))

    def create_fanout(self, fanout: FanOut) -> FanOut:
        """One conditional PutItem; if the header is there, a consistent GetItem of it."""
        item = fanout_item(fanout)
        with _translated(f"create {fanout_name(fanout.run_id, fanout.seq)}"):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as err:
                if _code(err) != _CONDITION_FAILED:
                    raise
                return self.get_fanout(fanout.run_id, fanout.seq)
        return fanout_from_item(item)

    def get_fanout(self, run_id: str, seq: int) -> FanOut:
        """The header (strongly consistent); FanOutNotFound if there is none."""
        with _translated(f"get {fanout_name(run_id, seq)}"):
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
        with _translated(f"record chunk {chunk} of {fanout_name(run_id, seq)}"):
            try:
                self._client.transact_write_items(**record_request(self._table, run_id, seq, item))
            except ClientError as err:
                if _code(err) != "TransactionCanceledException":
                    raise
                reasons = cast("Mapping[str, Any]", err.response).get("CancellationReasons", [])
                try:
                    return cancelled(reasons, run_id, seq, chunk)
                except LookupError:
                    raise err from None
        return True

    def claim_fanin(self, run_id: str, seq: int) -> bool:
        """One conditional UpdateItem: ``claimed`` goes true once, when all chunks are done."""
        with _translated(f"claim the fan-in of {fanout_name(run_id, seq)}"):
            try:
                self._client.update_item(**claim_request(self._table, run_id, seq))
            except ClientError as err:
                if _code(err) != _CONDITION_FAILED:
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

    def _pages(self, request: dict[str, Any], what: str) -> Iterator[list[dict[str, Any]]]:
        """The items of a Query, page by page, fetched only as they are consumed."""
        while True:
            with _translated(what):
                response = self._client.query(**request)
            yield list(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            request = {**request, "ExclusiveStartKey": response["LastEvaluatedKey"]}


def _update_request(
    values: Mapping[str, dict[str, Any] | None],
    expect: Collection[RunStatus] | None,
    guard: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """UpdateExpression and friends: SET the given attributes, REMOVE the ``None`` ones;
    the run must exist, have an expected status, and hold the ``guard`` values."""
    names = {f"#{attr}": attr for attr in values}
    sets = [f"#{attr} = :{attr}" for attr, value in values.items() if value is not None]
    removes = [f"#{attr}" for attr, value in values.items() if value is None]
    bound = {f":{attr}": value for attr, value in values.items() if value is not None}
    condition = "attribute_exists(pk)"
    if expect is not None:
        wanted = {f":expect{i}": {_S: RunStatus(s).value} for i, s in enumerate(sorted(expect))}
        condition += f" AND #status IN ({', '.join(wanted)})"
        names["#status"] = "status"
        bound |= wanted
    for attr, value in (guard or {}).items():
        condition += f" AND #{attr} = :was_{attr}"
        names[f"#{attr}"] = attr
        bound[f":was_{attr}"] = value
    clauses = ([f"SET {', '.join(sets)}"] if sets else []) + (
        [f"REMOVE {', '.join(removes)}"] if removes else []
    )
    request: dict[str, Any] = {
        "UpdateExpression": " ".join(clauses),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
    }
    if bound:
        request["ExpressionAttributeValues"] = bound
    return request
