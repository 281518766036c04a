"""The listing backfill on DynamoDB (see :mod:`pflambda.stores._listing_backfill`).

Pages through the table with ``Scan`` (only ``META`` items without ``apk`` come back) and
gives each run its keys with a conditional ``UpdateItem``: only if it still has no keys
and still has the status and update time they were computed from. A run that changed
meanwhile is read again (strongly consistent) and retried, so a live system's newer
status is never overwritten by stale keys; running it again, or twice at once, only
finds less (or nothing) left to do.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pflambda.errors import RetryableError
from pflambda.stores._item import META
from pflambda.stores._listing_backfill import Backfill, Progress, keyed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["backfill_dynamodb"]

Translated = Callable[[str], AbstractContextManager[None]]
"""The store's error translation (throttling -> RetryableError...), for one request."""

_READ = ("pk", "sk", "run_id", "owner", "agent", "context_id", "status", "updated_at", "attrs")
_TRIES = 5
_GUARD = (
    "attribute_exists(pk) AND attribute_not_exists(apk) "
    "AND #status = :status AND #updated_at = :updated"
)


def backfill_dynamodb(
    client: DynamoDBClient,
    table: str,
    shards: int,
    translated: Translated,
    *,
    page_size: int = 500,
    progress: Progress | None = None,
) -> Backfill:
    """Add listing keys to every run of ``table`` without them; see the module doc."""
    keyer = _Keyer(client, table, shards, translated)
    names = {f"#{name}": name for name in _READ}
    request: dict[str, Any] = {
        "TableName": table,
        "Limit": page_size,
        "FilterExpression": "#sk = :meta AND attribute_not_exists(apk)",
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":meta": {"S": META}},
    }
    while True:
        with translated("scan for runs without listing keys"):
            page = client.scan(**request)
        keyer.done.pages += 1
        for item in page.get("Items", []):
            keyer.done.found += 1
            keyer.key(item)
        if progress is not None:
            progress(keyer.done)
        if "LastEvaluatedKey" not in page:
            return keyer.done
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class _Keyer:
    """Gives runs their keys, counting what happened in :attr:`done`."""

    def __init__(
        self, client: DynamoDBClient, table: str, shards: int, translated: Translated
    ) -> None:
        self.client, self.table, self.shards, self.translated = client, table, shards, translated
        self.done = Backfill()

    def key(self, item: dict[str, Any]) -> None:
        """Give one run its keys, guarded on what they are computed from (re-read on a race)."""
        key = {"pk": item["pk"], "sk": item["sk"]}
        what = f"run {item['run_id']['S']}"
        for _ in range(_TRIES):
            if self._write(key, item, what):
                self.done.added += 1
                return
            with self.translated(f"read {what} again"):
                fresh = self.client.get_item(
                    TableName=self.table, Key=key, ConsistentRead=True
                ).get("Item")
            if fresh is None:
                self.done.gone += 1
                return
            if "apk" in fresh:
                self.done.raced += 1
                return
            item = fresh
        raise RetryableError(f"{what} kept changing while its listing keys were added: run again")

    def _write(self, key: dict[str, Any], item: dict[str, Any], what: str) -> bool:
        """One conditional UpdateItem; False if the run changed since ``item`` was read."""
        gain = keyed(item, self.shards)
        names = {f"#{name}": name for name in [*gain, "status", "updated_at"]}
        values = {f":{name}": value for name, value in gain.items()}
        values |= {":status": item["status"], ":updated": item["updated_at"]}
        with self.translated(f"add listing keys to {what}"):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET " + ", ".join(f"#{n} = :{n}" for n in gain),
                    ConditionExpression=_GUARD,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                return False
        return True
