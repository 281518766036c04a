"""How fast a run comes back after its driver dies, and what the lease costs per step.

Runs pflambda's Lambda handlers against DynamoDB, S3 and SQS emulated by moto
(in-process, real time), with the timeouts scaled down -- API function 4 s, worker
4 s, lease grace 1 s, visibility grace 1 s, sweep every 2 s, queued lease 6 s -- and a
worker poller and a sweeper thread playing the SQS event source and the EventBridge
schedule. For each kind of crash it measures the time from the crash to the next
committed step of the run, and checks the run then completes:

- ``api-killed``: the API invocation dies mid-run (kill -9, OOM) at once;
- ``api-timeout``: the API invocation is killed by Lambda at its deadline;
- ``worker-killed``: a worker dies after committing a step;
- ``message-lost``: a continuation message is deleted (nothing but the sweep left).

Then, unscaled: DynamoDB requests per step of a 100-step run with the lease in place,
and AWS requests of one echo task through the A2A API (blocking, and returnImmediately
with its worker invocation).

Run: ``.venv/bin/python bench/recovery.py`` (about a minute). Prints markdown tables.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pflambda import Flow, Node, limits

API_S, WORKER_S, GRACE_S, SWEEP_S, QUEUED_S = 4.0, 4.0, 1.0, 2.0, 6.0
STEP_S = 0.2
"""How long each node of the measured flow takes (so a crash lands mid-run)."""


class Tick(Node):
    """Sleeps STEP_S, bumps a counter; ``limit`` steps."""

    def exec(self, prep_res: Any) -> None:
        time.sleep(shared_step_seconds())

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["n"] = shared.get("n", 0) + 1
        return "again" if shared["n"] < shared["limit"] else "done"


class Done(Node):
    pass


def ticking() -> Flow:
    tick = Tick()
    tick - "again" >> tick
    tick - "done" >> Done()
    return Flow(start=tick)


_STEP = [STEP_S]


def shared_step_seconds() -> float:
    return _STEP[0]


class Killed(BaseException):
    """The invocation dies here."""


class Context:
    """A Lambda context whose deadline is real time."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - time.monotonic()) * 1000), 0)


@contextmanager
def moto_stack() -> Iterator[None]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        PFLAMBDA_STORE="dynamodb",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    from pflambda.aws.clients import reset_clients
    from pflambda.aws.config import Settings
    from pflambda.blobs.s3 import create_bucket
    from pflambda.queues.sqs import create_queue
    from pflambda.stores.dynamodb import create_table

    with mock_aws():
        reset_clients()
        settings = Settings.from_env()
        create_table(boto3.client("dynamodb"), settings.table)
        create_bucket(boto3.client("s3"), settings.bucket)
        sqs = boto3.client("sqs")
        create_queue(sqs, settings.queue_name + "-dlq")
        url = create_queue(sqs, settings.queue_name, dlq_name=settings.queue_name + "-dlq")
        os.environ["PFLAMBDA_QUEUE_URL"] = url
        yield
        reset_clients()


class Local:
    """The handlers, a worker poller and a sweeper, as on AWS but scaled down."""

    def __init__(self) -> None:
        from pflambda.aws.config import Settings
        from pflambda.aws.worker import Worker
        from pflambda.engine.runner import Engine

        ports = Settings.from_env().ports
        self.engine = Engine(
            ports.store, ports.blobs, ports.queue, lease_grace=GRACE_S, margin_ms=int(STEP_S * 2000)
        )
        self.worker = Worker(self.engine)
        self.commits: list[tuple[str, int, float]] = []
        self.engine.step_listeners.append(
            lambda record, event: self.commits.append((record.run_id, event.seq, time.time()))
        )
        self.kill: tuple[str, int] | None = None
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._poll, daemon=True),
            threading.Thread(target=self._sweep, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def arm(self, run_id: str, after_seq: int) -> None:
        """The next invocation that commits ``after_seq`` of ``run_id`` dies right after."""
        self.kill = (run_id, after_seq)

        def listener(record: Any, event: Any) -> None:
            if self.kill == (record.run_id, event.seq):
                self.kill = None
                self.crashed_at = time.time()
                raise Killed

        self.engine.step_listeners.insert(0, listener)
        self._listener = listener

    def _poll(self) -> None:
        from pflambda.local.poller import sqs_event

        queue = self.engine.queue
        assert queue is not None
        while not self.stop.is_set():
            messages = queue.receive(10, wait_seconds=0.2, visibility_timeout=int(6 * WORKER_S))
            if not messages:
                continue
            try:
                response = self.worker(sqs_event(messages), Context(WORKER_S))
            except Killed:
                continue  # the invocation died: nothing is acknowledged
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            queue.ack([m.receipt for m in messages if m.message_id not in failed])

    def _sweep(self) -> None:
        from pflambda.engine.sweeper import sweep

        while not self.stop.wait(SWEEP_S):
            try:
                sweep(self.engine)
            except Exception as exc:  # a failed sweep is retried the next period
                print(f"sweep failed: {exc}", file=sys.stderr)

    def next_commit(self, run_id: str, after: float, timeout: float = 60) -> float:
        end = time.time() + timeout
        while time.time() < end:
            for rid, _, at in list(self.commits):
                if rid == run_id and at > after:
                    return at
            time.sleep(0.02)
        raise RuntimeError(f"run {run_id}: no step committed within {timeout} s of the crash")

    def wait_done(self, run_id: str, timeout: float = 60) -> str:
        end = time.time() + timeout
        while time.time() < end:
            status = self.engine.store.get_run(run_id).status
            if status != "running":
                return str(status)
            time.sleep(0.05)
        return "running"


def crash(local: Local, kind: str) -> tuple[float, str]:
    """One crash of ``kind``; seconds from the crash to the next committed step."""
    run_id = f"{kind}-{time.time_ns()}"
    engine = local.engine
    if kind in ("api-killed", "api-timeout"):
        local.arm(run_id, 2)
        context = Context(API_S)
        with suppress(Killed):
            engine.start(
                "bench.recovery:ticking",
                {"limit": 8},
                run_id=run_id,
                context=context,
                margin_ms=int(STEP_S * 1000 * 2),
            )
        crashed = local.crashed_at
        if kind == "api-timeout":  # a node outlived the deadline: Lambda kills it then
            time.sleep(max(context.deadline - time.monotonic(), 0))
            crashed = time.time()
    elif kind == "worker-killed":
        local.arm(run_id, 3)
        engine.start(
            "bench.recovery:ticking", {"limit": 8}, run_id=run_id, max_steps=0, hand_off=True
        )
        while local.kill is not None:
            time.sleep(0.01)
        crashed = local.crashed_at
    else:  # message-lost: the hand-off's message never arrives (lost, deleted)
        queue = engine.queue
        assert queue is not None
        send = queue.send
        queue.send = lambda bodies, **kw: None  # type: ignore[method-assign]
        try:
            engine.start(
                "bench.recovery:ticking", {"limit": 8}, run_id=run_id, max_steps=0, hand_off=True
            )
        finally:
            queue.send = send  # type: ignore[method-assign]
        crashed = time.time()
    recovered = local.next_commit(run_id, crashed)
    return recovered - crashed, local.wait_done(run_id)


def recovery_table() -> None:
    limits.QUEUED_LEASE_SECONDS = QUEUED_S  # scaled down with the rest
    limits.VISIBILITY_GRACE_SECONDS = int(GRACE_S)
    with moto_stack():
        local = Local()
        bounds = {
            "api-killed": f"API timeout + grace + sweep period = {API_S + GRACE_S + SWEEP_S:.0f}",
            "api-timeout": f"grace + sweep period = {GRACE_S + SWEEP_S:.0f}",
            "worker-killed": f"worker timeout + visibility grace = {WORKER_S + GRACE_S:.0f}, + a poll",
            "message-lost": f"queued lease + sweep period = {QUEUED_S + SWEEP_S:.0f}",
        }
        print(
            f"\nRecovery, scaled down (API/worker timeout {API_S:.0f} s, lease grace "
            f"{GRACE_S:.0f} s, sweep every {SWEEP_S:.0f} s, queued lease {QUEUED_S:.0f} s)\n"
        )
        print("| crash | crash -> next committed step (s) | bound (s) | run ends |")
        print("|---|---:|---|---|")
        for kind, bound in bounds.items():
            seconds, status = crash(local, kind)
            print(f"| {kind} | {seconds:.1f} | {bound} | {status} |")
        local.stop.set()
        for thread in local.threads:
            thread.join()


def counted(services: tuple[str, ...]) -> Counter[str]:
    from pflambda.aws.clients import client

    calls: Counter[str] = Counter()

    def hook(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}.{model.name}"] += 1

    for service in services:
        client(service).meta.events.register(f"before-call.{service}", hook)
    return calls


def requests_table() -> None:
    _STEP[0] = 0.0
    with moto_stack():
        from pflambda.aws.config import Settings

        engine = Settings.from_env().engine()
        calls = counted(("dynamodb", "s3", "sqs"))
        steps = 100
        engine.start("bench.recovery:ticking", {"limit": steps}, context=Context(900))
        dynamodb = {op: n for op, n in calls.items() if op.startswith("dynamodb.")}
        writes = sum(n for op, n in dynamodb.items() if op.split(".")[1] in _WRITES)
        reads = sum(dynamodb.values()) - writes
        print("\nRequests of a 100-step run on the API path, lease in place (moto)")
        print("(a fresh process: its first start also records the listing shard count, one")
        print("UpdateItem, and the flow's shape, one S3 PutObject -- once per process)\n")
        print("| steps | DynamoDB writes | writes/step | reads | by operation |")
        print("|---:|---:|---:|---:|---|")
        ops = ", ".join(f"{op.split('.')[1]} {n}" for op, n in sorted(calls.items()))
        print(f"| {steps + 1} | {writes} | {writes / (steps + 1):.2f} | {reads} | {ops} |")
        echo_table()


_WRITES = {"PutItem", "UpdateItem", "TransactWriteItems", "DeleteItem"}


def echo_table() -> None:
    import json

    from pflambda.a2a.agent import Agent
    from pflambda.aws.config import Settings
    from pflambda.aws.worker import Worker
    from pflambda.http import HttpRequest

    agent = Agent(name="echo", flow="tests.flows.chat:echo", settings=Settings.from_env())

    def send(blocking: bool) -> Counter[str]:
        calls = counted(("dynamodb", "s3", "sqs"))
        message = {
            "messageId": f"m{time.time_ns()}",
            "role": "ROLE_USER",
            "parts": [{"text": "hello"}],
        }
        params: dict[str, Any] = {"message": message}
        if not blocking:
            params["configuration"] = {"returnImmediately": True}
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
        request = HttpRequest(
            method="POST",
            path="/agents/echo/",
            headers={"content-type": "application/json", "a2a-version": "1.0"},
            query={},
            body=json.dumps(body).encode(),
            principal="bench",
            claims={},
            base_url="https://api.example.com/prod",
            source_ip="203.0.113.9",
        )
        answer = json.loads(agent.dispatcher.handle(request).body)
        assert "result" in answer, answer
        api = Counter(calls)
        if not blocking:  # and the worker invocation that finishes it
            queue = agent.engine.queue
            assert queue is not None
            from pflambda.local.poller import sqs_event

            messages = queue.receive(10, visibility_timeout=30)
            worker_calls = counted(("dynamodb", "s3", "sqs"))
            Worker(agent.engine)(sqs_event(messages), Context(300))
            api["worker"] = sum(worker_calls.values())
        return api

    send(True)  # a warm container: the once-per-process shard record and shape are written
    print("\nAWS requests of one echo task through the A2A API (moto, a warm container)\n")
    print("| send | API requests | by operation | worker invocation |")
    print("|---|---:|---|---:|")
    for blocking in (True, False):
        calls = send(blocking)
        worker = calls.pop("worker", 0)
        ops = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
        label = "blocking" if blocking else "returnImmediately"
        print(f"| {label} | {sum(calls.values())} | {ops} | {worker or '-'} |")
    print(
        "\n(worker invocation: its visibility, the record, the checkpoints, the lease, "
        "then the one step with the completion)"
    )


def main() -> None:
    recovery_table()
    requests_table()


if __name__ == "__main__":
    main()
