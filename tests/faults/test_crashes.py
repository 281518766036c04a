"""A driver killed at any AWS call -- an API invocation or a worker -- never strands a run.

Each case kills the process right before its Nth call to DynamoDB or S3 (so after
every store call in turn), then lets AWS go on: deliveries, time, the sweep. Every
case must end in the clean run's final state; a kill before the start transaction
leaves nothing behind, and the client's retry of the same send starts it.
"""

from __future__ import annotations

import pytest

from pflambda.engine import lease
from pflambda.errors import RunNotFound
from pflambda.stores.base import RunStatus
from tests.faults.harness import WORKER_MS, Killed, Stack, shared_of
from tests.functional.conftest import FakeContext

FLOW, SHARED = "tests.flows.sample:loop", {"limit": 4}
API_MS = 29_000


def _api(stack: Stack, run_id: str) -> None:
    stack.engine.start(
        FLOW, dict(SHARED), run_id=run_id, context=FakeContext(API_MS), margin_ms=10_000
    )


def _clean(stack: Stack, run_id: str) -> tuple[dict[str, object], int]:
    """The clean run's final shared, and how many AWS calls its invocation made (after a
    first start, which also keeps the flow's shape: one PUT per process and version)."""
    _api(stack, f"{run_id}-warm")
    before = stack.total_calls()
    _api(stack, run_id)
    calls = stack.total_calls() - before
    assert stack.engine.store.get_run(run_id).status == RunStatus.COMPLETED
    return shared_of(stack, run_id), calls


@pytest.mark.parametrize("timed_out", [False, True], ids=["killed", "lambda-timeout"])
def test_an_api_invocation_killed_at_any_call_is_continued(aws: None, timed_out: bool) -> None:
    stack = Stack.make()
    expected, calls = _clean(stack, "clean")
    assert calls == 6  # the start, then one write per step: nothing else
    for nth in range(1, calls + 1):
        run_id = f"api-{nth}"
        stack.kill_at(nth)
        with pytest.raises(Killed):
            _api(stack, run_id)
        stack.heal()
        if timed_out:  # Lambda killed it at its deadline: the clock is there already
            stack.clock.advance(API_MS / 1000)
        if nth == 1:  # before the start transaction: nothing was stored ...
            with pytest.raises(RunNotFound):
                stack.engine.store.get_run(run_id)
            _api(stack, run_id)  # ... and the client's retry of the send starts it
        record = stack.settle(run_id)
        assert record.status == RunStatus.COMPLETED, nth
        assert shared_of(stack, run_id) == expected, nth


def test_a_retried_start_goes_on_with_the_same_run(aws: None) -> None:
    stack = Stack.make()
    expected, _ = _clean(stack, "clean")
    stack.kill_at(3)  # after the start and a step
    with pytest.raises(Killed):
        _api(stack, "again")
    stack.heal()
    stack.clock.advance(60)  # the dead invocation's lease lapses
    _api(stack, "again")  # the client retries the very same send
    assert stack.engine.store.get_run("again").status == RunStatus.COMPLETED
    assert shared_of(stack, "again") == expected


def test_a_worker_killed_after_any_store_call_is_continued(aws: None) -> None:
    stack = Stack.make()
    context = FakeContext(5_000)  # under the engine's margin: hands off to the worker at once
    stack.engine.start(FLOW, dict(SHARED), run_id="clean", context=context)
    before = stack.total_calls()
    assert stack.deliver() == 1
    calls = stack.total_calls() - before
    assert calls == 8  # record (GetItem), load (Query), lease (UpdateItem), 1 write per step
    expected = shared_of(stack, "clean")
    assert stack.engine.store.get_run("clean").status == RunStatus.COMPLETED
    for nth in range(1, calls + 1):
        run_id = f"worker-{nth}"
        stack.engine.start(FLOW, dict(SHARED), run_id=run_id, context=context)
        assert stack.engine.store.get_run(run_id).lease_owner == lease.QUEUED
        stack.kill_at(nth)
        stack.deliver()
        stack.heal()
        start = stack.clock.now()
        record = stack.settle(run_id)
        assert record.status == RunStatus.COMPLETED, nth
        assert shared_of(stack, run_id) == expected, nth
        # the message came back when the dead worker would have timed out, not 6x later
        assert stack.clock.now() - start <= WORKER_MS / 1000 + 120, nth
