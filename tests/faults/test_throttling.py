"""Throttling on every AWS operation the engine uses never fails a run.

Each case throttles the Nth call of one operation (as after every SDK retry) during
a run that starts on the API path and finishes in the worker. A throttled start
reaches the client as a retryable error with nothing stored (its retry starts the
run); anywhere later the run stays running and is finished by the retried message
or the sweep -- with the clean run's final state.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from pflambda.errors import RetryableError, RunNotFound
from pflambda.stores.base import RunStatus
from tests.faults.harness import Stack, shared_of
from tests.functional.conftest import FakeContext

FLOW, SHARED = "tests.flows.heavy:noise", {"limit": 3}
"""100 KB of noise per step: values go to S3 too, so S3 is throttled as well."""


def _start(stack: Stack, run_id: str) -> None:
    stack.engine.start(
        FLOW,
        dict(SHARED),
        run_id=run_id,
        context=FakeContext(29_000),
        max_steps=1,
        margin_ms=10_000,
        hand_off=True,
    )


def _clean(stack: Stack) -> tuple[dict[str, object], Counter[str]]:
    before = Counter(stack.calls)
    _start(stack, "clean")
    stack.settle("clean")
    used = Counter(stack.calls)
    used.subtract(before)
    assert stack.engine.store.get_run("clean").status == RunStatus.COMPLETED
    return shared_of(stack, "clean"), +used


OPERATIONS = [
    "dynamodb.TransactWriteItems",
    "dynamodb.PutItem",
    "dynamodb.UpdateItem",
    "dynamodb.GetItem",
    "dynamodb.Query",
    "s3.PutObject",
    "s3.GetObject",
]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_throttling_any_call_never_fails_the_run(aws: None, operation: str) -> None:
    stack = Stack.make()
    expected, used = _clean(stack)
    count = used[operation.split(".")[1]]
    assert count >= 1, f"the run never calls {operation}"
    for nth in range(1, count + 1):
        run_id = f"{operation}-{nth}"
        stack.throttle(operation, nth, times=2)
        try:
            _start(stack, run_id)
        except RetryableError:
            try:
                stack.engine.store.get_run(run_id)
            except RunNotFound:  # the start itself was refused: nothing stored ...
                stack.heal()
                _start(stack, run_id)  # ... and the client's retry starts it
            except RetryableError:
                pass
        record = stack.settle(run_id)
        stack.heal()
        record = stack.engine.store.get_run(run_id)
        assert record.status == RunStatus.COMPLETED, (operation, nth, record.error)
        assert shared_of(stack, run_id) == expected, (operation, nth)


def test_a_throttled_worker_reports_the_message_failed_and_keeps_the_run(aws: None) -> None:
    stack = Stack.make()
    _start(stack, "r")
    stack.throttle("dynamodb.PutItem", 1, times=1)
    messages = stack.queue.receive(10, visibility_timeout=1800)
    assert len(messages) == 1
    from pflambda.aws.worker import Worker

    record = {
        "messageId": messages[0].message_id,
        "receiptHandle": messages[0].receipt,
        "body": messages[0].body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pflambda-work",
    }
    response = Worker(stack.engine)({"Records": [record]}, FakeContext(300_000))
    assert response == {"batchItemFailures": [{"itemIdentifier": messages[0].message_id}]}
    assert stack.engine.store.get_run("r").status == RunStatus.RUNNING
    assert stack.queue.receive(10) == []  # hidden for its backoff ...
    stack.clock.advance(2)
    assert len(stack.queue.receive(10)) == 1  # ... then back (2 s after a first failure)


def test_a_throttled_hand_off_is_re_sent_by_the_sweep(aws: None) -> None:
    from pflambda import limits
    from pflambda.engine import lease
    from pflambda.engine.sweeper import sweep

    stack = Stack.make()
    original = stack.queue.send

    def throttled(bodies: Any, **kw: Any) -> None:
        raise RetryableError("SQS SendMessageBatch: throttled")

    stack.queue.send = throttled  # type: ignore[method-assign]
    outcome = stack.engine.start(FLOW, dict(SHARED), run_id="r", context=FakeContext(5_000))
    assert outcome.stopped == "retry"
    record = stack.engine.store.get_run("r")
    assert (record.status, record.lease_owner) == (RunStatus.RUNNING, lease.QUEUED)
    stack.queue.send = original  # type: ignore[method-assign]
    assert sweep(stack.engine).continued == []  # the queued lease has not lapsed yet
    stack.clock.advance(limits.QUEUED_LEASE_SECONDS + 1)
    assert sweep(stack.engine).continued == ["r"]
    assert stack.settle("r").status == RunStatus.COMPLETED


def test_the_scheduled_sweeper_handler_sends_continuations(aws: None) -> None:
    from pflambda.aws.sweeper import Sweeper

    stack = Stack.make()
    stack.engine.start(FLOW, dict(SHARED), run_id="r", max_steps=1)  # then the CLI dies
    stack.clock.advance(stack.engine.lease_seconds + 1)
    event = {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-30T17:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/pflambda-sweep"],
        "detail": {},
    }
    answer = Sweeper(stack.engine)(event, FakeContext(60_000))
    assert answer == {"found": 1, "continued": ["r"], "failed": []}
    assert Sweeper(stack.engine)(event, FakeContext(60_000))["found"] == 0  # taken
    assert stack.settle("r").status == RunStatus.COMPLETED
