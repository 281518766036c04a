"""The DynamoDB table: its schema, its creation, and the request plumbing every kind of
item shares (error translation, a put-if-new, a transaction, a paged Query).

:class:`DynamoTable` holds the client; the item kinds are its subclasses
(:mod:`pflambda.stores._dynamo_runs`, :mod:`pflambda.stores._dynamo_checkpoints`), and
:class:`~pflambda.stores.dynamodb.DynamoDBStore` joins them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, cast

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from pflambda.errors import RetryableError
from pflambda.limits import LIST_SHARDS
from pflambda.stores._item import Item
from pflambda.stores._listing import INDEXES, PROJECTED
from pflambda.stores._listing_shards import ShardCounts
from pflambda.stores.base import ItemTooLarge

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "CONDITION_FAILED",
    "REASON_FAILED",
    "TABLE_SCHEMA",
    "TTL_ATTRIBUTE",
    "DynamoTable",
    "S",
    "create_table",
    "error_code",
    "translated",
]

S: Final = "S"
TABLE_SCHEMA: Final[dict[str, Any]] = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": S}
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

CONDITION_FAILED = "ConditionalCheckFailedException"
REASON_FAILED = "ConditionalCheckFailed"
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


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the table with :data:`TABLE_SCHEMA` if it is missing, wait, enable TTL."""
    try:
        client.create_table(TableName=table_name, **TABLE_SCHEMA)
    except ClientError as err:
        if error_code(err) != "ResourceInUseException":
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
        if error_code(err) not in _TTL_UNSUPPORTED:
            raise


def error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn throttling, 5xx and network failures into RetryableError, oversize into
    ItemTooLarge; let every other error through."""
    try:
        yield
    except ClientError as err:
        code, message = error_code(err), str(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _RETRYABLE or status >= 500:
            raise RetryableError(f"DynamoDB {what}: {message}") from err
        if code == "ValidationException" and "item size" in message.lower():
            raise ItemTooLarge(f"DynamoDB {what}: {message}") from err
        raise
    except (BotoConnectionError, HTTPClientError) as err:
        raise RetryableError(f"DynamoDB {what}: {err}") from err


class DynamoTable:
    """One table and the client that reaches it; the requests every item kind makes."""

    def __init__(
        self, table_name: str, client: DynamoDBClient, *, shards: int = LIST_SHARDS
    ) -> None:
        """``shards``: partitions per owner in each listing index for the runs this store
        creates; listings ask as many as any writer of the table used
        (:mod:`pflambda.stores._listing_shards`)."""
        self._table = table_name
        self._client = client
        self._shards = ShardCounts(client, table_name, shards, translated)

    def _put_new(self, item: Item, what: str) -> bool:
        """PutItem only if the key is free; False if it was taken (one request)."""
        with translated(what):
            try:
                self._client.put_item(
                    TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
                )
            except ClientError as err:
                if error_code(err) != CONDITION_FAILED:
                    raise
                return False
        return True

    def _transact(self, items: list[dict[str, Any]], what: str) -> list[Mapping[str, Any]] | None:
        """One TransactWriteItems; ``None`` if it went through, else the reasons of a
        refusal by conditions (throttling and conflicts raise RetryableError)."""
        with translated(what):
            try:
                self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            except ClientError as err:
                if error_code(err) != "TransactionCanceledException":
                    raise
                reasons = list(
                    cast("Mapping[str, Any]", err.response).get("CancellationReasons", [])
                )
                codes = {str(reason.get("Code", "None")) for reason in reasons}
                if codes & _RETRYABLE_REASONS:
                    raise RetryableError(f"DynamoDB {what}: {sorted(codes)}") from err
                if REASON_FAILED not in codes:
                    raise
                return reasons
        return None

    def _pages(self, request: dict[str, Any], what: str) -> Iterator[list[dict[str, Any]]]:
        """The items of a Query, page by page, fetched only as they are consumed."""
        while True:
            with translated(what):
                response = self._client.query(**request)
            yield list(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            request = {**request, "ExclusiveStartKey": response["LastEvaluatedKey"]}

    def _query(self, request: dict[str, Any]) -> dict[str, Any]:
        with translated("list runs"):
            return dict(self._client.query(**request))
