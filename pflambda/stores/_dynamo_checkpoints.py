"""Checkpoints in DynamoDB: one ``CKPT#<seq>`` item per committed step, loaded from the
newest snapshot on, and the markers that claim a step without a body (a cancel)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from pflambda.errors import CheckpointConflict, RetryableError
from pflambda.limits import MARKER_CANCEL, SNAPSHOT_EVERY
from pflambda.stores._dynamo_table import DynamoTable, S, translated
from pflambda.stores._item import (
    CKPT_PREFIX,
    MARKER,
    check_size,
    checkpoint_from_item,
    checkpoint_item,
    checkpoint_sk,
    info_from_item,
    is_marker,
    marker_item,
    run_pk,
)
from pflambda.stores.base import Checkpoint, CheckpointInfo

_LOAD_PAGE: Final = SNAPSHOT_EVERY + 1
"""Items per page when loading: one snapshot interval fits one page. Paging goes on
until a snapshot is found, so a run written with sparser snapshots still loads right."""
_INFO_FIELDS: Final = (
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
_CLAIM_TRIES: Final = 20


class CheckpointItems(DynamoTable):
    """The Store methods on a run's checkpoints (see :mod:`pflambda.stores.dynamodb`)."""

    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        """One conditional PutItem; CheckpointConflict if the step is already there."""
        item = checkpoint_item(checkpoint)
        what = f"checkpoint {checkpoint.seq} of run {checkpoint.run_id}"
        check_size(item, what)
        if not self._put_new(item, f"put {what}"):
            raise CheckpointConflict(f"run {checkpoint.run_id} already has {what}")

    def claim_step(self, run_id: str) -> int:
        """A Query for the newest step key, then a conditional PutItem of a marker on the
        step after it; a lost race (a step committed meanwhile) tries again."""
        for _ in range(_CLAIM_TRIES):
            with translated(f"find the newest step of run {run_id}"):
                response = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :ckpt)",
                    ExpressionAttributeValues={
                        ":pk": {S: run_pk(run_id)},
                        ":ckpt": {S: CKPT_PREFIX},
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
                ":pk": {S: run_pk(run_id)},
                ":lo": {S: lo},
                ":hi": {S: hi},
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
                ":pk": {S: run_pk(run_id)},
                ":lo": {S: checkpoint_sk(max(after + 1, 0))},
                ":hi": {S: f"{CKPT_PREFIX}{'9' * 12}"},
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
            "ExpressionAttributeValues": {":pk": {S: run_pk(run_id)}, ":lo": {S: CKPT_PREFIX}},
            "ProjectionExpression": ", ".join(f"#{name}" for name in _INFO_FIELDS),
            "ExpressionAttributeNames": {f"#{name}": name for name in _INFO_FIELDS},
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": 2,  # a cancel's marker may sit on top of the last checkpoint
        }
        with translated(f"read the last checkpoint of run {run_id}"):
            items = self._client.query(**request).get("Items", [])
        found = [item for item in items if not is_marker(item)]
        return info_from_item(found[0]) if found else None
