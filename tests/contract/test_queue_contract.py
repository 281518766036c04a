"""The Queue contract (pflambda/queues/base.py), held against memory and SQS on moto.

Time passes on a FakeClock for memory and for real (about a second) on moto.
"""

from __future__ import annotations

import threading
import time

import pytest

from pflambda.clock import FakeClock
from pflambda.errors import RetryableError, TerminalError
from pflambda.limits import SQS_MAX_MESSAGE_BYTES
from pflambda.queues.base import Message, MessageTooLarge, Queue
from pflambda.queues.memory import MemoryQueue
from pflambda.queues.sqs import SQSQueue
from tests.contract.conftest import MAX_RECEIVES, QueueKit, count_calls


def drain(queue: Queue, expected: int, visibility_timeout: int = 30) -> list[Message]:
    """Receive until ``expected`` messages came (SQS may answer with fewer than asked)."""
    got: list[Message] = []
    for _ in range(expected + 5):
        got += queue.receive(10, visibility_timeout=visibility_timeout)
        if len(got) >= expected:
            break
    return got


def test_send_receive_ack(queue: Queue) -> None:
    queue.send(["one", "two", "three"])
    messages = drain(queue, 3, visibility_timeout=0)
    assert sorted(m.body for m in messages) == ["one", "three", "two"]
    assert {m.receive_count for m in messages} == {1}
    assert len({m.message_id for m in messages}) == 3
    queue.ack([m.receipt for m in messages])
    assert queue.receive(10, visibility_timeout=0) == []


def test_nothing_to_receive(queue: Queue) -> None:
    assert queue.receive() == []
    queue.send([])
    assert queue.receive() == []


def test_unicode_bodies_round_trip(queue: Queue) -> None:
    bodies = ["héllo wörld", "🎉 emoji", "中文字符", 'json {"k": "\\u00e9"}', "tab\tnew\nline\r"]
    queue.send(bodies)
    assert sorted(m.body for m in drain(queue, len(bodies))) == sorted(bodies)


def test_more_than_ten_messages_go_in_batches_of_ten(queue_kit: QueueKit) -> None:
    bodies = [f"item-{i}" for i in range(25)]
    queue_kit.queue.send(bodies)
    assert queue_kit.send_calls() == 3
    assert sorted(m.body for m in drain(queue_kit.queue, 25)) == sorted(bodies)


def test_batches_also_respect_the_total_size_limit(queue_kit: QueueKit) -> None:
    bodies = [str(i) * (SQS_MAX_MESSAGE_BYTES // 3 + 1) for i in range(7)]  # two fit a call
    queue_kit.queue.send(bodies)
    assert queue_kit.send_calls() == 4
    assert sorted(m.body for m in drain(queue_kit.queue, 7)) == sorted(bodies)


def test_an_unacked_message_comes_back_after_its_visibility_timeout(queue_kit: QueueKit) -> None:
    queue = queue_kit.queue
    queue.send(["work"])
    (first,) = queue.receive(visibility_timeout=1)
    assert first.receive_count == 1
    assert queue.receive(visibility_timeout=1) == []
    queue_kit.advance(1)
    (second,) = queue.receive(visibility_timeout=30)
    assert (second.body, second.message_id) == ("work", first.message_id)
    assert second.receive_count == 2
    assert second.receipt != first.receipt
    queue.ack([second.receipt])
    assert queue.receive(visibility_timeout=0) == []


def test_release_makes_a_message_visible_at_once(queue: Queue) -> None:
    queue.send(["retry me"])
    (first,) = queue.receive(visibility_timeout=30)
    assert queue.receive() == []
    queue.release(first.receipt)
    (second,) = queue.receive()
    assert (second.message_id, second.receive_count) == (first.message_id, 2)


def test_hide_keeps_a_delivery_hidden_for_that_long(queue_kit: QueueKit) -> None:
    queue = queue_kit.queue
    queue.send(["later"])
    (first,) = queue.receive(visibility_timeout=60)
    queue.hide(first.receipt, 1)  # a worker that will be dead in a second
    assert queue.receive() == []
    queue_kit.advance(1)
    (second,) = drain(queue, 1)
    assert (second.message_id, second.receive_count) == (first.message_id, 2)
    queue.hide("no-such-receipt", 5)  # stale receipts are ignored


def test_unknown_receipts_are_ignored(queue: Queue) -> None:
    queue.send(["keep"])
    queue.ack(["no-such-receipt"])
    queue.release("no-such-receipt")
    (message,) = queue.receive(visibility_timeout=0)
    queue.ack([message.receipt, message.receipt])  # a duplicate in one call is fine too
    assert queue.receive(visibility_timeout=0) == []


def test_after_max_receives_a_message_goes_to_the_dead_letter_queue(queue_kit: QueueKit) -> None:
    queue_kit.queue.send(["poison"])
    counts = [
        m.receive_count
        for _ in range(MAX_RECEIVES)
        for m in queue_kit.queue.receive(visibility_timeout=0)
    ]
    assert counts == list(range(1, MAX_RECEIVES + 1))
    assert queue_kit.queue.receive(visibility_timeout=0) == []
    (dead,) = queue_kit.dead_letter.receive()
    assert dead.body == "poison"


def test_a_delayed_message_waits(queue_kit: QueueKit) -> None:
    queue_kit.queue.send(["later"], delay_seconds=1)
    assert queue_kit.queue.receive() == []
    queue_kit.advance(1)
    assert [m.body for m in queue_kit.queue.receive()] == ["later"]


def test_a_too_large_message_is_refused_and_nothing_is_sent(queue_kit: QueueKit) -> None:
    queue = queue_kit.queue
    bodies = [f"small-{i}" for i in range(12)] + ["x" * (SQS_MAX_MESSAGE_BYTES + 1)]
    with pytest.raises(MessageTooLarge, match="message 12 of 13"):
        queue.send(bodies)
    assert queue_kit.send_calls() == 0
    assert queue.receive(visibility_timeout=0) == []


def test_the_size_limit_counts_utf8_bytes(queue: Queue) -> None:
    exactly = "é" * (SQS_MAX_MESSAGE_BYTES // 2)  # two bytes each: right at the limit
    queue.send([exactly])
    assert [m.body for m in queue.receive()] == [exactly]
    with pytest.raises(MessageTooLarge):
        queue.send(["é" * (SQS_MAX_MESSAGE_BYTES // 2 + 1)])  # fewer characters than the limit


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_messages": 0},
        {"max_messages": 11},
        {"visibility_timeout": -1},
        {"wait_seconds": 21},
    ],
)
def test_receive_refuses_what_sqs_refuses(queue: Queue, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        queue.receive(**kwargs)


def test_send_refuses_a_delay_sqs_refuses(queue: Queue) -> None:
    with pytest.raises(ValueError, match="delay_seconds"):
        queue.send(["x"], delay_seconds=901)


# -- memory only -----------------------------------------------------------------------------


def test_memory_counts_what_is_queued_and_in_flight() -> None:
    clock = FakeClock()
    queue = MemoryQueue(clock)
    queue.send(["a", "b", "c"])
    (first,) = queue.receive(1, visibility_timeout=10)
    assert (queue.approximate_size(), queue.in_flight()) == (3, 1)
    clock.advance(10)
    assert queue.in_flight() == 0
    queue.ack([first.receipt])
    assert queue.approximate_size() == 2


def test_memory_ignores_a_stale_receipt() -> None:
    clock = FakeClock()
    queue = MemoryQueue(clock)
    queue.send(["x"])
    (first,) = queue.receive(visibility_timeout=1)
    clock.advance(1)
    (second,) = queue.receive(visibility_timeout=1)
    queue.ack([first.receipt])
    queue.release(first.receipt)
    assert queue.approximate_size() == 1
    assert queue.in_flight() == 1
    queue.ack([second.receipt])
    assert queue.approximate_size() == 0


def test_memory_long_poll_wakes_when_a_message_arrives() -> None:
    queue = MemoryQueue()  # the real clock
    timer = threading.Timer(0.1, queue.send, args=(["hello"],))
    started = time.monotonic()
    timer.start()
    try:
        messages = queue.receive(wait_seconds=5)
    finally:
        timer.cancel()
    assert [m.body for m in messages] == ["hello"]
    assert time.monotonic() - started < 2


def test_memory_long_poll_gives_up_at_its_deadline() -> None:
    queue = MemoryQueue()
    started = time.monotonic()
    assert queue.receive(wait_seconds=0.2) == []
    assert 0.15 < time.monotonic() - started < 1.5


def test_memory_long_poll_on_a_fake_clock_returns_at_once() -> None:
    clock = FakeClock()
    assert MemoryQueue(clock).receive(wait_seconds=20) == []
    assert clock.monotonic() == 0


def test_memory_dead_letter_needs_both_settings() -> None:
    with pytest.raises(ValueError, match="go together"):
        MemoryQueue(max_receives=3)
    with pytest.raises(ValueError, match="go together"):
        MemoryQueue(dead_letter=MemoryQueue())


def test_memory_queue_is_safe_across_threads() -> None:
    queue = MemoryQueue()
    received: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        for _ in range(200):
            messages = queue.receive(10)
            with lock:
                received.extend(m.body for m in messages)
            queue.ack([m.receipt for m in messages])

    producers = [
        threading.Thread(target=queue.send, args=([f"{p}-{i}" for i in range(100)],))
        for p in range(4)
    ]
    consumers = [threading.Thread(target=consume) for _ in range(4)]
    for thread in producers + consumers:
        thread.start()
    for thread in producers + consumers:
        thread.join()
    received += [m.body for m in drain(queue, 400 - len(received))]
    assert sorted(received) == sorted(f"{p}-{i}" for p in range(4) for i in range(100))


# -- SQS only: partial batch failures ---------------------------------------------------------


def _partial_failures(
    sqs_client: object, event: str, failures: list[list[dict[str, object]]]
) -> None:
    """Answer the next calls to ``event`` with these ``Failed`` lists, without sending.

    Entries not named as failed are simply dropped, so the test sees only the retries.
    """
    from types import SimpleNamespace

    def hook(params: dict[str, object], **_: object) -> object:
        if not failures:
            return None
        failed = failures.pop(0)
        return SimpleNamespace(status_code=200), {"Successful": [], "Failed": failed}

    sqs_client.meta.events.register(f"before-call.{event}", hook)  # type: ignore[attr-defined]


def test_sqs_retries_only_the_failed_entries(sqs: QueueKit) -> None:
    clock = FakeClock()
    queue = SQSQueue(sqs.queue._url, sqs.client, clock=clock)  # type: ignore[attr-defined]
    bodies = [f"m{i}" for i in range(12)]
    failed = {"Id": "11", "SenderFault": False, "Code": "InternalError", "Message": "oops"}
    calls = count_calls(
        sqs.client, "sqs.SendMessageBatch"
    )  # first: a hook that answers ends the chain
    _partial_failures(sqs.client, "sqs.SendMessageBatch", [[], [failed]])
    queue.send(bodies)
    # call 1: entries 0-9 (answered by the hook), call 2: 10-11 with 11 failing (hook),
    # call 3: entry 11 alone, for real
    assert calls["SendMessageBatch"] == 3
    assert [m.body for m in drain(queue, 1)] == ["m11"]
    assert clock.slept == [0.05]


def test_sqs_gives_up_after_three_retries_naming_the_entries(sqs: QueueKit) -> None:
    clock = FakeClock()
    queue = SQSQueue(sqs.queue._url, sqs.client, clock=clock)  # type: ignore[attr-defined]
    failed = {"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "still down"}
    _partial_failures(sqs.client, "sqs.SendMessageBatch", [[failed]] * 4)
    with pytest.raises(RetryableError, match="entry 1: InternalError still down"):
        queue.send(["a", "b"])
    assert clock.slept == [0.05, 0.1, 0.2]


def test_sqs_sender_faults_are_terminal(sqs: QueueKit) -> None:
    failed = {"Id": "0", "SenderFault": True, "Code": "InvalidMessageContents"}
    _partial_failures(sqs.client, "sqs.SendMessageBatch", [[failed]])
    with pytest.raises(TerminalError, match="InvalidMessageContents"):
        sqs.queue.send(["a"])
