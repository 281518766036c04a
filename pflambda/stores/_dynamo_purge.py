"""Purging a run's partition from DynamoDB: keys-only Query pages, BatchWriteItem deletes.

What the reaper does once DynamoDB's TTL has deleted a run's ``META`` item: every item
under ``RUN#<id>`` goes, 25 per BatchWriteItem, unprocessed items retried with backoff.
Checkpoint 0 goes last: a new run with the same id cannot start while the purge is half
done, since starting one puts checkpoint 0 on condition that there is none. The Query
reads keys only (``pk``, ``sk``): a page of 1 MB holds thousands of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pflambda.clock import Clock, SystemClock
from pflambda.errors import RetryableError
from pflambda.stores._item import checkpoint_sk, run_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["BATCH", "purge"]

BATCH: Final = 25
"""Items per BatchWriteItem (DynamoDB's limit)."""
_TRIES: Final = 8
"""BatchWriteItem calls for one batch before its unprocessed items raise RetryableError."""
_FIRST_WAIT: Final = 0.05
"""Seconds before the first retry of unprocessed items; doubled each time (<= 1.6 s)."""

Key = dict[str, dict[str, str]]
Translate = Callable[[str], Any]


def purge(
    client: DynamoDBClient,
    table: str,
    run_id: str,
    translated: Translate,
    clock: Clock | None = None,
) -> int:
    """Delete every item of ``run_id``'s partition; how many there were.

    ``translated(what)`` is the store's error-translating context manager (throttling and
    5xx become :class:`~pflambda.errors.RetryableError`). Safe to repeat: a purge cut
    short is finished by the next one."""
    clock = clock or SystemClock()
    first = {"pk": {"S": run_pk(run_id)}, "sk": {"S": checkpoint_sk(0)}}
    delete = _Deleter(client, table, run_id, translated, clock)
    count, held_first = 0, False
    batch: list[Key] = []
    for key in _keys(client, table, run_id, translated):
        if key == first:
            held_first = True
            continue
        batch.append(key)
        if len(batch) == BATCH:
            count += delete(batch)
            batch = []
    if batch:
        count += delete(batch)
    if held_first:
        count += delete([first])
    return count


def _keys(client: DynamoDBClient, table: str, run_id: str, translated: Translate) -> Iterator[Key]:
    """The primary keys of the partition, page by page, strongly consistent."""
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": run_pk(run_id)}},
        "ProjectionExpression": "pk, sk",
        "ConsistentRead": True,
    }
    while True:
        with translated(f"list the items of run {run_id}"):
            response = client.query(**request)
        for item in response.get("Items", []):
            yield {"pk": {"S": item["pk"]["S"]}, "sk": {"S": item["sk"]["S"]}}
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


@dataclass
class _Deleter:
    """Deletes keys of one run: one BatchWriteItem per call, unprocessed items retried."""

    _client: DynamoDBClient
    table: str
    run_id: str
    translated: Translate
    clock: Clock

    def __call__(self, keys: list[Key]) -> int:
        pending: list[Any] = [{"DeleteRequest": {"Key": key}} for key in keys]
        wait = _FIRST_WAIT
        for _ in range(_TRIES):
            with self.translated(f"delete {len(pending)} item(s) of run {self.run_id}"):
                response = self._client.batch_write_item(RequestItems={self.table: pending})
            pending = list(response.get("UnprocessedItems", {}).get(self.table, []))
            if not pending:
                return len(keys)
            self.clock.sleep(wait)
            wait *= 2
        raise RetryableError(
            f"DynamoDB kept {len(pending)} delete(s) of run {self.run_id} unprocessed after "
            f"{_TRIES} tries (throttled): retry the purge"
        )
