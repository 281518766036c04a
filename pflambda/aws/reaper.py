"""The reaper Lambda: deletes what a run left once DynamoDB's TTL deleted its record.

The table's stream (``KEYS_ONLY``) feeds it, filtered in the event source mapping by
:data:`FILTER` -- ``REMOVE`` events of a ``META`` item made by the TTL service (user
identity ``dynamodb.amazonaws.com``) -- so it is invoked only for expired runs, never for
the reaper's own deletes. For each it calls :func:`pflambda.engine.retention.reap`: the
run's blobs (``runs/<id>/``), then every other item of its partition. A record that
fails is reported in a partial batch response (Lambda retries from it, the batch is
bisected, and after the retries the event source sends it to the on-failure queue);
reaping twice is harmless.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from pflambda.aws.config import Settings
from pflambda.engine import retention

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = ["FILTER", "TTL_PRINCIPAL", "Reaper", "expired_run", "handler", "matches"]

log = logging.getLogger("pflambda.reaper")

TTL_PRINCIPAL: Final = "dynamodb.amazonaws.com"
"""The ``userIdentity.principalId`` of a stream record of an item DynamoDB's TTL deleted."""

FILTER: Final[Mapping[str, Any]] = {
    "eventName": ["REMOVE"],
    "userIdentity": {"type": ["Service"], "principalId": [TTL_PRINCIPAL]},
    "dynamodb": {"Keys": {"sk": {"S": ["META"]}}},
}
"""The event source mapping's filter pattern (template.yaml carries it as JSON; the
template test compares them): only TTL deletions of run records reach the reaper."""

_RUN_PREFIX: Final = "RUN#"


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` matches an event-filter ``pattern`` of exact values (a list of
    allowed values per leaf, nested objects per key) -- the subset :data:`FILTER` uses,
    so the local stack filters as the event source mapping does."""
    for key, wanted in pattern.items():
        value = event.get(key) if isinstance(event, Mapping) else None
        if isinstance(wanted, Mapping):
            if not isinstance(value, Mapping) or not matches(wanted, value):
                return False
        elif value not in wanted:
            return False
    return True


def expired_run(raw: Mapping[str, Any]) -> str | None:
    """The id of the run whose record a stream record says the TTL deleted, or ``None``
    for any other record (the filter should have kept those out)."""
    if not matches(FILTER, raw):
        return None
    pk = raw["dynamodb"]["Keys"].get("pk", {}).get("S", "")
    if not isinstance(pk, str) or not pk.startswith(_RUN_PREFIX) or len(pk) == len(_RUN_PREFIX):
        return None
    return pk[len(_RUN_PREFIX) :]


class Reaper:
    """The handler: a DynamoDB stream batch in, a partial batch response out."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._engine = engine
        self.processor = BatchProcessor(
            event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
        )
        if engine is None and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            try:  # Lambda's init phase: build the clients now
                _ = self.engine
            except Exception:
                log.exception("could not configure the reaper at init; retrying per batch")

    @property
    def engine(self) -> Engine:
        """The engine whose store and blob store are reaped (made once per container)."""
        if self._engine is None:
            self._engine = Settings.from_env().engine()
        return self._engine

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Reap every expired run the batch names; failures are reported per record."""
        return process_partial_response(  # type: ignore[return-value]
            event=event,
            record_handler=self.handle_record,
            processor=self.processor,
            context=context,
        )

    def handle_record(self, record: DynamoDBRecord) -> None:
        """One stream record; raising reports it failed (it is retried)."""
        run_id = expired_run(record.raw_event)
        if run_id is None:
            log.warning("not a run record the TTL deleted: %s", record.event_id)
            return
        engine = self.engine
        reaped = retention.reap(engine.store, engine.blobs, run_id, engine.clock.now())
        if reaped is not None:
            log.info(
                "run %s reaped: %d items, %d blobs",
                run_id,
                reaped.items,
                reaped.blobs,
                extra={"run_id": run_id},
            )


handler = Reaper()
"""The default reaper, configured from the environment."""
