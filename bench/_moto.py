"""What the benches on DynamoDB + S3 share: moto in-process, and request counting."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def moto_clients(table: str = "bench", bucket: str = "bench") -> Iterator[tuple[Any, Any]]:
    """DynamoDB and S3 clients on moto (never real AWS), with ``table`` and ``bucket`` made."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    from pflambda.blobs.s3 import create_bucket
    from pflambda.stores.dynamodb import create_table

    with mock_aws():
        ddb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        create_table(ddb, table)
        create_bucket(s3, bucket)
        yield ddb, s3


def count_requests(ddb: Any, s3: Any) -> Counter[str]:
    """Every request the two clients send, by operation (S3's prefixed ``S3 ``)."""
    calls: Counter[str] = Counter()
    ddb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )
    s3.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.update([f"S3 {model.name}"])
    )
    return calls
