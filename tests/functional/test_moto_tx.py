"""The emulator's moto rolls a refused transaction back item by item, without copying
tables: the same outcome for the transaction's items, nothing else touched."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pflambda.local import moto_tx


@pytest.fixture
def ddb() -> Iterator[Any]:
    moto_tx.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield client


def key(pk: str, sk: str = "META") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def get(ddb: Any, pk: str, sk: str = "META") -> dict[str, Any] | None:
    item: dict[str, Any] | None = ddb.get_item(TableName="t", Key=key(pk, sk)).get("Item")
    return item


def refused(ddb: Any) -> list[str]:
    """A transaction that writes three items and then fails its last condition."""
    items = [
        {"Put": {"TableName": "t", "Item": {**key("new"), "v": {"S": "1"}}}},
        {"Put": {"TableName": "t", "Item": {**key("old", "CKPT"), "v": {"S": "overwritten"}}}},
        {
            "Update": {
                "TableName": "t",
                "Key": key("old"),
                "UpdateExpression": "SET v = :v",
                "ExpressionAttributeValues": {":v": {"S": "changed"}},
            }
        },
        {
            "ConditionCheck": {
                "TableName": "t",
                "Key": key("missing"),
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ]
    with pytest.raises(ClientError) as caught:
        ddb.transact_write_items(TransactItems=items)
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    return [r["Code"] for r in caught.value.response["CancellationReasons"]]


def test_a_refused_transaction_leaves_its_items_as_they_were(ddb: Any) -> None:
    ddb.put_item(TableName="t", Item={**key("old"), "v": {"S": "0"}})
    ddb.put_item(TableName="t", Item={**key("old", "CKPT"), "v": {"S": "kept"}})
    ddb.put_item(TableName="t", Item={**key("bystander"), "v": {"S": "b"}})
    assert refused(ddb) == ["None", "None", "None", "ConditionalCheckFailed"]
    assert get(ddb, "new") is None
    assert get(ddb, "old") == {**key("old"), "v": {"S": "0"}}
    assert get(ddb, "old", "CKPT") == {**key("old", "CKPT"), "v": {"S": "kept"}}
    assert get(ddb, "bystander") == {**key("bystander"), "v": {"S": "b"}}
    scanned = ddb.scan(TableName="t")["Items"]
    assert sorted(i["pk"]["S"] + i["sk"]["S"] for i in scanned) == [
        "bystanderMETA",
        "oldCKPT",
        "oldMETA",
    ]


def test_a_refused_transaction_leaves_no_stream_records(ddb: Any) -> None:
    from moto.dynamodb.models import dynamodb_backends

    ddb.put_item(TableName="t", Item={**key("old"), "v": {"S": "0"}})
    tables = dynamodb_backends["123456789012"]["us-east-1"].tables
    before = len(tables["t"].stream_shard.items)
    refused(ddb)
    assert len(tables["t"].stream_shard.items) == before


def test_an_accepted_transaction_applies_and_copies_no_table(
    ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    real, copied = copy.deepcopy, []

    def spy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            copied.append(value.name)
        return real(value, memo)

    monkeypatch.setattr(copy, "deepcopy", spy)
    for n in range(50):
        ddb.put_item(TableName="t", Item={**key(f"run{n}"), "v": {"S": "x" * 100}})
    new = "attribute_not_exists(pk)"
    items = [
        {
            "Put": {
                "TableName": "t",
                "Item": {**key("a"), "v": {"S": "1"}},
                "ConditionExpression": new,
            }
        },
        {
            "Put": {
                "TableName": "t",
                "Item": {**key("a", "CKPT"), "v": {"S": "2"}},
                "ConditionExpression": new,
            }
        },
    ]
    ddb.transact_write_items(TransactItems=items)
    refused(ddb)
    assert get(ddb, "a") == {**key("a"), "v": {"S": "1"}}
    assert get(ddb, "a", "CKPT") == {**key("a", "CKPT"), "v": {"S": "2"}}
    assert copied == []  # moto alone copies the whole table for each transaction
