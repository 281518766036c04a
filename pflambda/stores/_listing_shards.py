"""How many listing shards a DynamoDB table's runs are spread over, then and now.

A run's listing partitions are chosen once, when it is created: its shard is a hash of
its id modulo the writer's shard count (``PFLAMBDA_LIST_SHARDS``; see
:mod:`pflambda.stores._listing`); later writes move it within its partition only. So a
listing must ask every shard any writer ever used, not only its own count: after a
change from 64 to 100, older runs live in shards 0-63 and newer ones in 0-99; after a
change from 100 to 64, older runs still live in shards 64-99.

The table therefore remembers the largest count any writer used, in one item
(``pk = LISTING``, ``sk = SHARDS``): a writer raises it (one conditional UpdateItem per
process, before its first run is created), and a listing asks
``max(own count, recorded)`` shards (one strongly consistent GetItem per listing).
Because a writer records before it writes, no listing misses a run written under a
larger count, even while a deployment is half updated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from pflambda.limits import MAX_LIST_SHARDS
from pflambda.stores._listing import check_shards

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["SHARDS_KEY", "ShardCounts"]

SHARDS_KEY: Final = {"pk": {"S": "LISTING"}, "sk": {"S": "SHARDS"}}
"""The item that records the largest shard count any writer of the table used."""

Translated = Callable[[str], AbstractContextManager[None]]
"""The store's error translation (throttling -> RetryableError...), for one request."""


class ShardCounts:
    """The count one process creates runs with, and the count its listings ask."""

    def __init__(
        self, client: DynamoDBClient, table: str, shards: int, translated: Translated
    ) -> None:
        self.shards = check_shards(shards)
        self._client, self._table, self._translated = client, table, translated
        self._recorded = False
        self._lock = threading.Lock()

    def for_writes(self) -> int:
        """This process's count, recorded in the table first (once per process)."""
        if not self._recorded:
            with self._lock:
                if not self._recorded:
                    self._record()
                    self._recorded = True
        return self.shards

    def for_reads(self) -> int:
        """How many shards a listing asks: the most any writer has used, or ours."""
        with self._translated("read the listing shard count"):
            got = self._client.get_item(TableName=self._table, Key=SHARDS_KEY, ConsistentRead=True)
        recorded = int(got.get("Item", {}).get("shards", {}).get("N", "0"))
        return max(self.shards, min(recorded, MAX_LIST_SHARDS))

    def _record(self) -> None:
        """Raise the recorded count to ours (never lower it)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": SHARDS_KEY,
            "UpdateExpression": "SET shards = :n",
            "ConditionExpression": "attribute_not_exists(shards) OR shards < :n",
            "ExpressionAttributeValues": {":n": {"N": str(self.shards)}},
        }
        with self._translated("record the listing shard count"):
            try:
                self._client.update_item(**request)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
