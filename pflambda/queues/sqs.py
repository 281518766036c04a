"""SQSQueue: the Queue protocol on one Amazon SQS standard queue."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from pflambda.clock import Clock, SystemClock
from pflambda.errors import RetryableError, TerminalError
from pflambda.limits import MAX_RECEIVES, SQS_MAX_BATCH, SQS_MAX_MESSAGE_BYTES
from pflambda.queues._batch import check_receive, plan_batches
from pflambda.queues.base import Message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

__all__ = ["SQSQueue", "create_queue"]

_ATTEMPTS = 4
"""Tries for the failed entries of a batch call: the first and three retries."""
_BACKOFF_SECONDS = 0.05
_RETRYABLE = frozenset(
    {
        "RequestThrottled",
        "ThrottlingException",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "KmsThrottled",
    }
)
_STALE_RECEIPT = frozenset({"ReceiptHandleIsInvalid", "MessageNotInflight"})

Entry = dict[str, Any]
Failure = Mapping[str, Any]


def create_queue(
    client: SQSClient,
    name: str,
    dlq_name: str | None = None,
    max_receives: int = MAX_RECEIVES,
    visibility_timeout: int = 30,
) -> str:
    """Create ``name`` (and its dead-letter queue ``dlq_name``, if given); its URL.

    Messages received ``max_receives`` times move to the DLQ. The queue's maximum
    message size is pflambda's limit, so SQS refuses what the memory queue refuses.
    """
    attributes: dict[QueueAttributeNameType, str] = {
        "VisibilityTimeout": str(visibility_timeout),
        "MaximumMessageSize": str(SQS_MAX_MESSAGE_BYTES),
    }
    if dlq_name is not None:
        dlq_url = client.create_queue(QueueName=dlq_name)["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
        policy = {
            "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
            "maxReceiveCount": max_receives,
        }
        attributes["RedrivePolicy"] = json.dumps(policy)
    return client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Throttling, 5xx and network failures become RetryableError; the rest goes through."""
    try:
        yield
    except ClientError as err:
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if _code(err) in _RETRYABLE or status >= 500:
            raise RetryableError(f"SQS {what}: {err}") from err
        raise
    except (BotoConnectionError, HTTPClientError) as err:
        raise RetryableError(f"SQS {what}: {err}") from err


def _describe(failures: Sequence[Failure]) -> str:
    return "; ".join(
        f"entry {f['Id']}: {f['Code']} {f.get('Message', '')}".strip() for f in failures
    )


class SQSQueue:
    """A :class:`~pflambda.queues.base.Queue` on the SQS queue at ``queue_url``.

    Batch calls whose entries partly fail are retried for the failed entries only
    (three times, with a short backoff on ``clock``), then :class:`RetryableError`.
    """

    def __init__(self, queue_url: str, client: SQSClient, *, clock: Clock | None = None) -> None:
        self._url = queue_url
        self._client = client
        self._clock = clock if clock is not None else SystemClock()

    def send(self, bodies: Sequence[str], *, delay_seconds: int = 0) -> None:
        """Send every body in SendMessageBatch calls; all or an error."""
        first = 0
        for batch in plan_batches(bodies, delay_seconds):
            entries = [
                {"Id": str(first + i), "MessageBody": body, "DelaySeconds": delay_seconds}
                for i, body in enumerate(batch)
            ]
            first += len(batch)
            self._batch("SendMessageBatch", self._send_batch, entries, sender_faults_fatal=True)

    def receive(
        self, max_messages: int = 10, *, wait_seconds: float = 0, visibility_timeout: int = 30
    ) -> list[Message]:
        """Up to ``max_messages`` messages, long-polling up to ``wait_seconds`` (rounded up)."""
        check_receive(max_messages, wait_seconds, visibility_timeout)
        with _translated("ReceiveMessage"):
            response = self._client.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=math.ceil(wait_seconds),
                VisibilityTimeout=visibility_timeout,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        return [
            Message(
                body=m["Body"],
                receipt=m["ReceiptHandle"],
                message_id=m["MessageId"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            )
            for m in response.get("Messages", [])
        ]

    def ack(self, receipts: Sequence[str]) -> None:
        """Delete these deliveries in DeleteMessageBatch calls; stale receipts are ignored."""
        unique = list(dict.fromkeys(receipts))
        for start in range(0, len(unique), SQS_MAX_BATCH):
            chunk = unique[start : start + SQS_MAX_BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
            self._batch(
                "DeleteMessageBatch", self._delete_batch, entries, sender_faults_fatal=False
            )

    def release(self, receipt: str) -> None:
        """Make a delivery visible again now; a stale receipt is ignored."""
        self.hide(receipt, 0)

    def hide(self, receipt: str, seconds: int) -> None:
        """One ChangeMessageVisibility; a stale receipt is ignored."""
        with _translated("ChangeMessageVisibility"):
            try:
                self._client.change_message_visibility(
                    QueueUrl=self._url,
                    ReceiptHandle=receipt,
                    VisibilityTimeout=max(0, min(int(seconds), 43_200)),
                )
            except ClientError as err:
                if _code(err) not in _STALE_RECEIPT:
                    raise

    def _send_batch(self, entries: list[Entry]) -> Sequence[Failure]:
        typed = cast("list[SendMessageBatchRequestEntryTypeDef]", entries)
        return self._client.send_message_batch(QueueUrl=self._url, Entries=typed).get("Failed", [])

    def _delete_batch(self, entries: list[Entry]) -> Sequence[Failure]:
        typed = cast("list[DeleteMessageBatchRequestEntryTypeDef]", entries)
        response = self._client.delete_message_batch(QueueUrl=self._url, Entries=typed)
        return response.get("Failed", [])

    def _batch(
        self,
        what: str,
        call: Callable[[list[Entry]], Sequence[Failure]],
        entries: list[Entry],
        *,
        sender_faults_fatal: bool,
    ) -> None:
        """Make a batch call, then retry the entries that failed on SQS's side."""
        pending, failed = entries, list[Failure]()
        for attempt in range(_ATTEMPTS):
            if attempt:
                self._clock.sleep(_BACKOFF_SECONDS * 2 ** (attempt - 1))
            with _translated(what):
                failed = list(call(pending))
            faults = [f for f in failed if f.get("SenderFault")]
            if faults and sender_faults_fatal:
                raise TerminalError(f"SQS {what} refused {_describe(faults)}")
            retry = {f["Id"] for f in failed if not f.get("SenderFault")}
            pending = [entry for entry in pending if entry["Id"] in retry]
            if not pending:
                return
        raise RetryableError(
            f"SQS {what}: {len(pending)} entries still failing after {_ATTEMPTS} tries: "
            f"{_describe([f for f in failed if not f.get('SenderFault')])}"
        )
