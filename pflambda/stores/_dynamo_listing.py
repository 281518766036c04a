"""Listing runs on DynamoDB: one Query per shard partition, merged in update-time order.

A page asks every partition of its plan (see :mod:`pflambda.stores._listing`) for a few
items -- about the page size divided by the number of partitions, since a hash spreads
runs evenly -- and fetches more only from a partition the merge has drained. So a page
costs one Query per partition plus a few, and reads about ``limit`` items more than it
returns at most per partition; nothing it reads belongs to another owner or agent unless
the plan is the operator's ``ALL`` index.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

from pflambda.stores._listing import Plan, Scope, plan

__all__ = ["count_items", "list_items"]

Query = Callable[[dict[str, Any]], dict[str, Any]]
"""Runs one Query request (errors already translated) and returns the response."""

_S = "S"
_PARALLEL = 16
"""Partitions queried at once for a page's first round."""
_MAX_BATCH = 200


def list_items(
    query: Query, table: str, scope: Scope, *, limit: int, after: str | None, shards: int
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` index items after ``after``, newest first, and whether more follow."""
    steps = plan(scope, shards)
    requests = [_request(table, steps, part, prefix, after) for part, prefix in steps.partitions]
    batch = min(_MAX_BATCH, -(-(limit + 1) // len(requests)) + 1)
    for request in requests:
        request["Limit"] = batch
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(requests))) as pool:
        firsts = list(pool.map(query, requests))
    streams = [
        _stream(query, request, first, after)
        for request, first in zip(requests, firsts, strict=True)
    ]
    merged = heapq.merge(*streams, key=lambda item: str(item["lsk"][_S]), reverse=True)
    found = list(islice(merged, limit + 1))
    return found[:limit], len(found) > limit


def count_items(query: Query, table: str, scope: Scope, shards: int) -> int:
    """How many items the plan's partitions hold in scope (``Select=COUNT``, paged)."""
    steps = plan(scope, shards)
    requests = [_request(table, steps, part, prefix, None) for part, prefix in steps.partitions]

    def one(request: dict[str, Any]) -> int:
        request = {**request, "Select": "COUNT"}
        total = 0
        while True:
            response = query(request)
            total += int(response.get("Count", 0))
            if "LastEvaluatedKey" not in response:
                return total
            request = {**request, "ExclusiveStartKey": response["LastEvaluatedKey"]}

    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(requests))) as pool:
        return sum(pool.map(one, requests))


def _stream(
    query: Query, request: dict[str, Any], response: dict[str, Any], after: str | None
) -> Iterator[dict[str, Any]]:
    """One partition's items, newest first, fetching further pages only when drained."""
    while True:
        for item in response.get("Items", []):
            if "lsk" not in item:  # the status index keys by ssk = <status>#<lsk>
                item["lsk"] = {_S: str(item["ssk"][_S]).split("#", 1)[1]}
            if after is None or str(item["lsk"][_S]) < after:
                yield item
        if "LastEvaluatedKey" not in response:
            return
        request = {
            **request,
            "ExclusiveStartKey": response["LastEvaluatedKey"],
            "Limit": min(_MAX_BATCH, int(request["Limit"]) * 2),
        }
        response = query(request)


def _request(
    table: str, steps: Plan, partition: str, prefix: str, after: str | None
) -> dict[str, Any]:
    """The Query of one partition: its key, the range before ``after``, the filter."""
    names = {"#part": steps.partition_attr, "#sort": steps.sort_attr}
    values: dict[str, Any] = {":part": {_S: partition}}
    condition = "#part = :part"
    if prefix and after is not None:
        condition += " AND #sort BETWEEN :lo AND :hi"
        values |= {":lo": {_S: prefix}, ":hi": {_S: prefix + after}}
    elif prefix:
        condition += " AND begins_with(#sort, :lo)"
        values[":lo"] = {_S: prefix}
    elif after is not None:
        condition += " AND #sort < :hi"
        values[":hi"] = {_S: after}
    else:
        del names["#sort"]
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": steps.index,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
    }
    clauses = []
    for i, (attr, wanted) in enumerate(sorted(steps.filters.items())):
        names[f"#f{i}"] = attr
        if isinstance(wanted, frozenset):
            keys = [f":f{i}_{j}" for j in range(len(wanted))]
            values |= {k: {_S: str(v)} for k, v in zip(keys, sorted(wanted), strict=True)}
            clauses.append(f"#f{i} IN ({', '.join(keys)})")
        else:
            values[f":f{i}"] = {_S: wanted}
            clauses.append(f"#f{i} = :f{i}")
    if clauses:
        request["FilterExpression"] = " AND ".join(clauses)
    return request
