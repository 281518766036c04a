"""The SQS worker continues runs that stopped at a Lambda deadline."""

from __future__ import annotations

import json
from typing import Any

from pflambda.aws.config import Settings
from pflambda.aws.worker import Worker
from pflambda.stores.base import RunStatus
from tests.functional.conftest import FakeContext, load_event


def sqs_event(*bodies: str) -> dict[str, Any]:
    template = load_event("sqs_continue.json")["Records"][0]
    records = []
    for i, body in enumerate(bodies):
        record = json.loads(json.dumps(template))
        record["messageId"] = f"msg-{i}"
        record["body"] = body
        records.append(record)
    return {"Records": records}


def start_until_deadline(engine: Any) -> Any:
    context = FakeContext(remaining_ms=10_000)  # under the 30 s margin: stops at once
    outcome = engine.start("tests.flows.sample:loop", {"limit": 6}, context=context)
    assert outcome.stopped == "deadline"
    return outcome


def test_deadline_continuation_is_finished_by_the_worker(aws: None) -> None:
    engine = Settings.from_env().engine()
    outcome = start_until_deadline(engine)
    messages = engine.queue.receive(10)
    assert len(messages) == 1
    worker = Worker(engine)
    response = worker(sqs_event(messages[0].body), FakeContext())
    assert response == {"batchItemFailures": []}
    record = engine.store.get_run(outcome.run_id)
    assert record.status == RunStatus.COMPLETED
    assert engine.state(outcome.run_id)[0]["n"] == 6


def test_a_duplicate_delivery_changes_nothing(aws: None) -> None:
    engine = Settings.from_env().engine()
    outcome = start_until_deadline(engine)
    body = engine.queue.receive(10)[0].body
    worker = Worker(engine)
    worker(sqs_event(body), FakeContext())
    before = list(engine.store.list_checkpoints(outcome.run_id))
    assert worker(sqs_event(body, body), FakeContext()) == {"batchItemFailures": []}
    assert list(engine.store.list_checkpoints(outcome.run_id)) == before


def test_the_worker_hands_over_again_near_its_own_deadline(aws: None) -> None:
    engine = Settings.from_env().engine()
    outcome = start_until_deadline(engine)
    body = engine.queue.receive(10)[0].body
    Worker(engine)(sqs_event(body), FakeContext(remaining_ms=1_000))
    assert engine.store.get_run(outcome.run_id).status == RunStatus.RUNNING
    again = engine.queue.receive(10)
    assert [json.loads(m.body)["seq"] for m in again] == [0]


def test_bad_messages_are_reported_per_record(aws: None) -> None:
    engine = Settings.from_env().engine()
    outcome = start_until_deadline(engine)
    good = engine.queue.receive(10)[0].body
    response = Worker(engine)(sqs_event("not json", good, '{"kind": "other"}'), FakeContext())
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-2"}]
    }
    assert engine.store.get_run(outcome.run_id).status == RunStatus.COMPLETED


def test_a_changed_flow_fails_the_run_with_the_reason(aws: None, monkeypatch: Any) -> None:
    """The run stopped at the deadline after one step, waiting at Other; a deploy removed
    Other: the worker cannot continue it and records why, naming the way out."""

    class Context(FakeContext):
        def get_remaining_time_in_millis(self) -> int:  # one step, then the deadline
            self.remaining_ms -= 10_000
            return self.remaining_ms

    engine = Settings.from_env().engine()
    outcome = engine.start("tests.flows.sample:loop", {"limit": 6}, context=Context(55_000))
    assert (outcome.stopped, outcome.seq) == ("deadline", 1)
    body = engine.queue.receive(10)[0].body
    import tests.flows.sample as sample

    original = sample.loop

    def changed() -> Any:  # Count's "again" goes elsewhere: Other is gone
        flow = original()
        flow.start_node.successors["again"] = sample.Finish(name="extra")
        return flow

    monkeypatch.setattr(sample, "loop", changed)
    assert Worker(engine)(sqs_event(body), FakeContext()) == {"batchItemFailures": []}
    record = engine.store.get_run(outcome.run_id)
    assert record.status == RunStatus.FAILED
    assert "Other is not in the deployed flow" in (record.error or "")
    assert f"pflambda migrate {outcome.run_id} --map OLD=NEW" in (record.error or "")
