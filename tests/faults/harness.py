"""A local AWS under test: DynamoDB and S3 on moto, the work queue in memory, one fake clock.

``Stack`` plays what AWS does around pflambda: it delivers queue messages to the worker
as the SQS event source would (a failed record comes back after its visibility), runs
the scheduled sweep when time passes, and lets a test kill a process at any AWS call
(``kill_at``) or throttle any operation (``throttle``).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from pflambda.aws.clients import client
from pflambda.aws.config import Settings
from pflambda.aws.worker import Worker
from pflambda.clock import FakeClock
from pflambda.engine.runner import Engine
from pflambda.engine.sweeper import sweep
from pflambda.errors import RetryableError
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import RunRecord, RunStatus
from tests.functional.conftest import FakeContext

WORKER_MS = 300_000
"""The worker function's timeout (template.yaml)."""


class Killed(BaseException):
    """The process died here (a kill -9, an OOM, a Lambda timeout): nothing catches it."""


@dataclass
class Stack:
    engine: Engine
    clock: FakeClock
    queue: MemoryQueue
    calls: Counter[str] = field(default_factory=Counter)
    worker_runs: int = 0
    _hooks: list[tuple[str, str, Any]] = field(default_factory=list)

    @classmethod
    def make(cls) -> Stack:
        ports = Settings.from_env().ports
        clock = FakeClock()
        queue = MemoryQueue(clock)
        stack = cls(Engine(ports.store, ports.blobs, queue, clock=clock), clock, queue)
        for service in ("dynamodb", "s3"):
            client(service).meta.events.register(f"before-call.{service}", stack._count)
        return stack

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def total_calls(self) -> int:
        return sum(self.calls.values())

    def kill_at(self, nth: int) -> None:
        """Kill the process right before its ``nth`` AWS call from now (DynamoDB or S3)."""
        left = [nth]

        def hook(**_: Any) -> None:
            left[0] -= 1
            if left[0] == 0:
                raise Killed(f"killed before AWS call {nth}")

        for service in ("dynamodb", "s3"):
            client(service).meta.events.register(f"before-call.{service}", hook)
            self._hooks.append((service, f"before-call.{service}", hook))

    def heal(self) -> None:
        """The process that comes next is not killed and nothing is throttled."""
        for service, event, hook in self._hooks:
            client(service).meta.events.unregister(event, hook)
        self._hooks.clear()

    def throttle(self, event: str, nth: int, times: int = 1) -> None:
        """Make the ``nth`` call of ``event`` (e.g. ``dynamodb.PutItem``) from now, and the
        ``times - 1`` after it, fail with throttling -- as after every SDK retry."""
        service = event.split(".", maxsplit=1)[0]
        code = {"dynamodb": "ThrottlingException", "s3": "SlowDown"}[service]
        seen = [0]

        def hook(**_: Any) -> Any:
            seen[0] += 1
            if not nth <= seen[0] < nth + times:
                return None
            error = {"Error": {"Code": code, "Message": "injected throttling"}}
            status = 400 if service == "dynamodb" else 503
            meta = {"ResponseMetadata": {"HTTPStatusCode": status}}
            return SimpleNamespace(status_code=status), error | meta

        client(service).meta.events.register(f"before-call.{event}", hook)
        self._hooks.append((service, f"before-call.{event}", hook))

    def deliver(self, remaining_ms: int = WORKER_MS) -> int:
        """One worker invocation with what the queue has (as the event source)."""
        messages = self.queue.receive(10, visibility_timeout=1800)
        if not messages:
            return 0
        records = [
            {
                "messageId": m.message_id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": str(m.receive_count)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pflambda-work",
            }
            for m in messages
        ]
        self.worker_runs += 1
        try:
            response = Worker(self.engine)({"Records": records}, FakeContext(remaining_ms))
        except Killed:
            return len(messages)  # nothing acknowledged: they come back after visibility
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        self.queue.ack([m.receipt for m in messages if m.message_id not in failed])
        return len(messages)

    def settle(self, run_id: str, rounds: int = 60) -> RunRecord:
        """Let AWS go on (deliveries, time, sweeps) until the run stops running."""
        for _ in range(rounds):
            record = self._read(run_id)
            if record is not None and record.status != RunStatus.RUNNING:
                return record
            if not self.deliver():
                self.clock.advance(60)
                # a sweep that fails this minute is retried by the next one
                with contextlib.suppress(RetryableError):
                    sweep(self.engine)
        raise AssertionError(f"run {run_id} is still running: nobody continues it")

    def _read(self, run_id: str) -> RunRecord | None:
        """The run's record, or None when the test's own read was throttled."""
        try:
            return self.engine.store.get_run(run_id)
        except RetryableError:
            return None


def shared_of(stack: Stack, run_id: str) -> dict[Any, Any]:
    """The run's shared at its latest checkpoint."""
    return stack.engine.state(run_id)[0]
