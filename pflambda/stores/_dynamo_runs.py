"""Run records in DynamoDB: the ``META`` item, its leases, and the transactions that
write it together with a checkpoint (starting a run, committing a step).

Index sort keys move with ``status`` and ``updated_at`` (see
:func:`pflambda.stores._item.moved_keys`); an update that changes one without the other
reads the other first and writes only if it is unchanged.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final, cast

from botocore.exceptions import ClientError

from pflambda.errors import CheckpointConflict, RetryableError, RunExists, RunNotFound
from pflambda.stores._dynamo_table import (
    CONDITION_FAILED,
    REASON_FAILED,
    DynamoTable,
    S,
    error_code,
    translated,
)
from pflambda.stores._item import (
    LEASE_PREFIX,
    LEASE_SHARDS,
    Item,
    check_size,
    checkpoint_item,
    lease_sk,
    moved_keys,
    refused,
    run_from_item,
    run_item,
    run_key,
    update_values,
)
from pflambda.stores.base import Checkpoint, LeaseHeld, RunRecord, RunStatus

_GUARD_ATTEMPTS: Final = 5
"""Tries of an update whose index keys depend on a field read just before."""


class RunItems(DynamoTable):
    """The Store methods on a run's ``META`` item (see :mod:`pflambda.stores.dynamodb`)."""

    def create_run(self, record: RunRecord) -> None:
        """Store a new run; :class:`~pflambda.errors.RunExists` if the id is taken."""
        item = run_item(record, self._shards.for_writes())
        check_size(item, f"run {record.run_id}")
        if not self._put_new(item, f"create run {record.run_id}"):
            raise RunExists(f"run {record.run_id} already exists")

    def start_run(self, record: RunRecord, checkpoint: Checkpoint) -> None:
        """One TransactWriteItems: the ``META`` item and checkpoint 0, each if new."""
        item = run_item(record, self._shards.for_writes())
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

    def get_run(self, run_id: str) -> RunRecord:
        """The run's record (strongly consistent); RunNotFound if there is none."""
        with translated(f"get run {run_id}"):
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
                guard["status"] = {S: RunStatus(status).value}
            if updated is None:
                updated = current.updated_at
                guard["updated_at"] = {"N": repr(float(updated))}
        return guard, moved_keys(run_id, RunStatus(status).value, float(updated))

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
        if reasons[0].get("Code") == REASON_FAILED:
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
        owners = {f":holder{i}": {S: name} for i, name in enumerate([owner, *takeover])}
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
        with translated(what):
            try:
                response = self._client.update_item(
                    TableName=self._table,
                    Key=run_key(run_id),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **request,
                )
            except ClientError as err:
                if error_code(err) != CONDITION_FAILED:
                    raise
                current = cast("Mapping[str, Any]", err.response).get("Item")
                if current is None:
                    raise RunNotFound(f"no run {run_id}") from None
                return None, current
        return run_from_item(response["Attributes"]), {}

    def list_stalled(self, now: float, *, limit: int = 100) -> list[RunRecord]:
        """One Query per shard of ``gsi3``: leases that ended before ``now``."""
        found: list[Item] = []
        for shard in range(LEASE_SHARDS):
            with translated("list stalled runs"):
                response = self._client.query(
                    TableName=self._table,
                    IndexName="gsi3",
                    KeyConditionExpression="gsi3pk = :shard AND gsi3sk < :cut",
                    ExpressionAttributeValues={
                        ":shard": {S: f"{LEASE_PREFIX}{shard}"},
                        ":cut": {S: lease_sk(now, "\uffff")},
                    },
                    Limit=limit,
                )
            found += response.get("Items", [])
        found.sort(key=lambda item: str(item["gsi3sk"]["S"]))
        return [run_from_item(item) for item in found[:limit]]


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
        wanted = {f":expect{i}": {S: RunStatus(s).value} for i, s in enumerate(sorted(expect))}
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
