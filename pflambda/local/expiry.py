"""The local twin of DynamoDB's TTL and the reaper, run by ``pflambda local``'s sweep.

On AWS, DynamoDB's TTL deletes an expired run's record and the table's stream hands
that deletion to ReaperFunction. Locally nothing does: moto keeps expired items and has
no TTL stream records, and the embedded stores have no TTL at all. So each sweep:

- embedded stores (memory, SQLite): :func:`pflambda.engine.retention.prune`;
- the embedded moto emulator: does the TTL's part -- reads the ``META`` items whose
  ``ttl`` passed (a Scan: this is the emulator standing in for the TTL service, never
  the store's access path), deletes each on condition that it is still expired -- and
  hands the deletions, as stream records shaped like the service's
  (``infra/events/dynamodb_ttl_remove.json``), to the reaper's own handler, through
  its filter.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pflambda.aws.reaper import FILTER, TTL_PRINCIPAL, Reaper, matches
from pflambda.engine import retention

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from pflambda.engine.runner import Engine

__all__ = ["expire", "expire_table", "stream_record"]

log = logging.getLogger("pflambda.sweeper")


def expire(engine: Engine, table: str | None = None, client: DynamoDBClient | None = None) -> int:
    """Expire what is due now: an embedded store's runs, or (``table`` and ``client``
    given) the emulator's through the reaper. How many runs went."""
    store: Any = engine.store
    if hasattr(store, "list_expired"):
        return retention.prune(store, engine.blobs, engine.clock.now())
    if table is None or client is None:
        return 0
    return expire_table(engine, client, table)


def expire_table(engine: Engine, client: DynamoDBClient, table: str, limit: int = 100) -> int:
    """The TTL service's part on an emulated table, then the reaper's: how many went."""
    now = int(engine.clock.now())
    deleted = [
        run_id for run_id in _due(client, table, now, limit) if _delete(client, table, run_id, now)
    ]
    if not deleted:
        return 0
    event = {"Records": [stream_record(run_id, n, table) for n, run_id in enumerate(deleted)]}
    event["Records"] = [r for r in event["Records"] if matches(FILTER, r)]
    answer = Reaper(engine)(event, None)
    failed = answer.get("batchItemFailures", [])
    if failed:  # their records are gone: the next sweep finds nothing; say so loudly
        log.error("local reaper failed on %d expired run(s): %s", len(failed), failed)
    log.info("expired %d run(s) (emulated TTL + reaper)", len(deleted))
    return len(deleted) - len(failed)


def stream_record(run_id: str, n: int, table: str) -> dict[str, Any]:
    """The stream record DynamoDB writes when its TTL deletes ``run_id``'s record."""
    return {
        "eventID": f"local-{n}",
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "META"}},
            "SequenceNumber": str(10**20 + n),
            "SizeBytes": 40,
            "StreamViewType": "KEYS_ONLY",
        },
        "userIdentity": {"type": "Service", "principalId": TTL_PRINCIPAL},
        "eventSourceARN": f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/local",
    }


def _due(client: DynamoDBClient, table: str, now: int, limit: int) -> list[str]:
    """Ids of runs whose record's ``ttl`` is at or before ``now`` (the TTL service's read)."""
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :meta AND #ttl <= :now",
        "ExpressionAttributeNames": {"#ttl": "ttl"},
        "ExpressionAttributeValues": {":meta": {"S": "META"}, ":now": {"N": str(now)}},
        "ProjectionExpression": "pk",
    }
    found: list[str] = []
    while len(found) < limit:
        page = client.scan(**request)
        found += [item["pk"]["S"].removeprefix("RUN#") for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found[:limit]


def _delete(client: DynamoDBClient, table: str, run_id: str, now: int) -> bool:
    """Delete the record if it is still expired (a run refreshed meanwhile stays)."""
    try:
        client.delete_item(
            TableName=table,
            Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "META"}},
            ConditionExpression="#ttl <= :now",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
