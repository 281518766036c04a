"""Version pinning: a run whose cursor does not map onto the deployed flow is handed to the
version it is pinned to (a fake invoker stands in for Lambda's), and when that version is
gone the refusal names ``pflambda migrate`` and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from pflambda.a2a.agent import Agent
from pflambda.aws import invoke
from pflambda.aws.config import Settings
from pflambda.aws.invoke import HOPS_HEADER, PinGone, internal_event
from pflambda.aws.worker import Worker
from pflambda.blobs.memory import MemoryBlobStore
from pflambda.clock import SystemClock
from pflambda.engine import fanout
from pflambda.engine.runner import Engine
from pflambda.errors import FingerprintMismatch, PinnedElsewhere
from pflambda.local.poller import LocalContext
from pflambda.local.server import api_event
from pflambda.queues.memory import MemoryQueue
from pflambda.stores.base import RunStatus
from pflambda.stores.memory import MemoryStore
from tests.flows import deploy
from tests.unit.test_a2a_dispatcher import msg_v1

FLOW = "tests.flows.deploy:create_flow"


@contextmanager
def deployed(version: int) -> Iterator[None]:
    """The code of ``version`` is what runs inside the block (as on that Lambda version)."""
    before = deploy.VERSION["v"]
    deploy.VERSION["v"] = version
    fanout._GRAPHS.built.clear()  # each version is its own process on Lambda
    try:
        yield
    finally:
        deploy.VERSION["v"] = before
        fanout._GRAPHS.built.clear()


class Versions:
    """A fake :class:`~pflambda.aws.invoke.Invoker`: published versions in one process, each
    an agent (or a worker) whose engine has that version's site, sharing one store."""

    def __init__(self) -> None:
        self.handlers: dict[str, tuple[int, Callable[[dict[str, Any], Any], Any]]] = {}
        self.agents: dict[str, tuple[int, Agent]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, site: str, version: int, agent: Agent) -> None:
        self.agents[site] = (version, agent)
        self.handlers[site] = (version, agent.api_handler)

    def publish_worker(self, site: str, version: int, worker: Worker) -> None:
        self.handlers[site] = (version, worker)

    def delete(self, site: str) -> None:
        self.handlers.pop(site)

    def _handler(self, target: str) -> tuple[int, Callable[[dict[str, Any], Any], Any]]:
        if target not in self.handlers:
            raise PinGone(f"{target} cannot be invoked (ResourceNotFoundException)")
        return self.handlers[target]

    def call(self, target: str, event: Mapping[str, Any]) -> dict[str, Any]:
        version, handler = self._handler(target)
        self.calls.append((target, dict(event)))
        with deployed(version):
            return dict(handler(dict(event), LocalContext(29)))

    def send(self, target: str, event: Mapping[str, Any]) -> None:
        version, handler = self._handler(target)
        self.sent.append((target, dict(event)))
        with deployed(version):  # the worker's timeout is 300 s, the API functions' 30 s
            handler(dict(event), LocalContext(300 if isinstance(handler, Worker) else 30))


@pytest.fixture
def versions() -> Iterator[Versions]:
    fake = Versions()
    invoke.install(fake)
    deploy.VERSION["v"] = 1
    try:
        yield fake
    finally:
        invoke.install(None)
        deploy.VERSION["v"] = 1


def agents(versions: Versions, flow: str = FLOW) -> tuple[Agent, Agent]:
    """The agent as deployed at version 1 (Ask pauses) and at version 3 (Ask is gone)."""
    store, blobs, queue = MemoryStore(), MemoryBlobStore(), MemoryQueue()
    made = []
    for number in (1, 3):
        engine = Engine(store, blobs, queue, clock=SystemClock(), site=f"research:{number}")
        agent = Agent(
            name="pinned-agent",
            flow=flow,
            engine=engine,
            settings=Settings(backend="memory"),
            output_key="published",
        )
        versions.publish(f"research:{number}", number, agent)
        made.append(agent)
    return made[0], made[1]


def send(agent: Agent, text: str, task_id: str | None = None, **headers: str) -> dict[str, Any]:
    """message/send (JSON-RPC, A2A 1.0) through the Lambda handler, as API Gateway calls it."""
    message = msg_v1(text, **({"taskId": task_id} if task_id else {}))
    body = {"jsonrpc": "2.0", "id": "1", "method": "SendMessage", "params": {"message": message}}
    event = api_event(
        "POST",
        "/agents/pinned-agent/",
        [("Content-Type", "application/json"), ("A2A-Version", "1.0"), *headers.items()],
        json.dumps(body).encode(),
        domain="127.0.0.1:1",
    )
    response = agent.api_handler(event, LocalContext(29))
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])  # type: ignore[no-any-return]


def paused_on_v1(v1: Agent) -> str:
    with deployed(1):
        task = send(v1, "go")["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert v1.engine.store.get_run(task["id"]).pinned == "research:1"
    return str(task["id"])


def test_a_reply_to_a_removed_paused_node_is_answered_by_the_pinned_version(
    versions: Versions,
) -> None:
    v1, v3 = agents(versions)
    task_id = paused_on_v1(v1)
    with deployed(3):
        answer = send(v3, "yes", task_id)
    task = answer["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    shared = v3.engine.state(task_id)[0]
    assert shared["published"] == "a plan (yes)"  # v1's Ask took the reply
    assert "audited" not in shared
    assert [target for target, _ in versions.calls] == ["research:1"]
    forwarded = versions.calls[0][1]
    assert forwarded["headers"][HOPS_HEADER] == "1"
    record = v3.engine.store.get_run(task_id)
    assert (record.status, record.pinned) == (RunStatus.COMPLETED, "research:1")


def test_a_deleted_pinned_version_leaves_the_task_waiting_and_names_migrate(
    versions: Versions,
) -> None:
    v1, v3 = agents(versions)
    task_id = paused_on_v1(v1)
    before = v3.engine.store.get_run(task_id)
    versions.delete("research:1")  # the operator deleted the version
    with deployed(3):
        error = send(v3, "yes", task_id)["error"]
        assert "pflambda migrate TASK_ID --map OLD=NEW" in error["message"]
        after = v3.engine.store.get_run(task_id)
    assert (after.status, after.prompt, after.fingerprint, after.pinned) == (
        RunStatus.PAUSED,
        "Approve the plan?",
        before.fingerprint,
        "research:1",
    )
    assert versions.calls == []


def test_a_request_handed_on_once_is_never_handed_on_again(versions: Versions) -> None:
    v1, v3 = agents(versions)
    task_id = paused_on_v1(v1)
    with deployed(3):
        error = send(v3, "yes", task_id, **{HOPS_HEADER: "1"})["error"]
    assert "pflambda migrate" in error["message"]
    assert versions.calls == []
    assert v3.engine.store.get_run(task_id).status == RunStatus.PAUSED


def running_at_ask(v1: Agent) -> str:
    """A run started on version 1 that stopped after Draft, its next node Ask."""
    with deployed(1):
        outcome = v1.engine.start(FLOW, {}, agent="pinned-agent", max_steps=1, hand_off=True)
    assert outcome.status == RunStatus.RUNNING
    return outcome.run_id


def test_a_continuation_the_new_code_refuses_goes_to_the_pinned_version(
    versions: Versions,
) -> None:
    v1, v3 = agents(versions)
    run_id = running_at_ask(v1)
    message = {"kind": "continue", "run_id": run_id, "seq": 1}
    with deployed(3):
        v3.worker.handle(message)
    assert [target for target, _ in versions.sent] == ["research:1"]
    body = versions.sent[0][1][invoke.INTERNAL]
    assert (body["kind"], body["run_id"], body["hops"]) == ("continue", run_id, 1)
    record = v3.engine.store.get_run(run_id)
    assert record.status == RunStatus.PAUSED  # v1's Ask ran and asked
    assert record.prompt == "Approve the plan?"


def test_a_continuation_handed_on_once_fails_naming_migrate(versions: Versions) -> None:
    v1, v3 = agents(versions)
    run_id = running_at_ask(v1)
    with deployed(3):  # a continue event that arrives at code that still refuses it
        v3.api_handler(internal_event("continue", 1, run_id=run_id), LocalContext(30))
    assert versions.sent == []
    record = v3.engine.store.get_run(run_id)
    assert record.status == RunStatus.FAILED
    assert f"pflambda migrate {run_id} --map OLD=NEW" in (record.error or "")


def test_a_continuation_whose_pinned_version_is_gone_fails_naming_migrate(
    versions: Versions,
) -> None:
    v1, v3 = agents(versions)
    run_id = running_at_ask(v1)
    versions.delete("research:1")
    with deployed(3):
        v3.worker.handle({"kind": "continue", "run_id": run_id, "seq": 1})
    record = v3.engine.store.get_run(run_id)
    assert record.status == RunStatus.FAILED
    assert "pflambda migrate" in (record.error or "")


def test_the_engine_refuses_with_pinned_elsewhere_only_for_other_code(
    versions: Versions,
) -> None:
    v1, v3 = agents(versions)
    task_id = paused_on_v1(v1)
    with deployed(3), pytest.raises(PinnedElsewhere) as elsewhere:
        v3.engine.resume(task_id, reply="yes")
    assert (elsewhere.value.pinned, elsewhere.value.agent) == ("research:1", "pinned-agent")
    v3.engine.site = "research:1"  # the code that says it *is* the pinned version
    with deployed(3), pytest.raises(FingerprintMismatch) as plain:
        v3.engine.resume(task_id, reply="yes")
    assert not isinstance(plain.value, PinnedElsewhere)


def test_a_run_admitted_by_newer_code_is_pinned_to_it(versions: Versions) -> None:
    v1, _ = agents(versions)
    task_id = paused_on_v1(v1)
    store, blobs, queue = v1.engine.store, v1.engine.blobs, v1.engine.queue
    v2 = Engine(store, blobs, queue, clock=SystemClock(), site="research:2")
    with deployed(2):  # a node added after the paused node: the run goes on on v2
        outcome = v2.resume(task_id, reply="yes")
    assert outcome.status == RunStatus.COMPLETED
    assert outcome.shared["audited"] is True
    assert store.get_run(task_id).pinned == "research:2"


def test_fanned_out_chunks_and_their_continuation_go_to_the_pinned_version(
    versions: Versions,
) -> None:
    v1, v3 = agents(versions, "tests.flows.deploy_fan:create_flow")
    with deployed(1):
        outcome = v1.engine.start(
            "tests.flows.deploy_fan:create_flow", {"items": [1, 2, 3]}, agent="pinned-agent"
        )
    assert outcome.status == RunStatus.RUNNING  # waiting for its chunks
    queue = v3.engine.queue
    assert isinstance(queue, MemoryQueue)
    kinds = []
    with deployed(3):  # the new code's worker drains the queue
        for _ in range(20):
            batch = queue.receive(10)
            if not batch:
                break
            for message in batch:
                doc = json.loads(message.body)
                kinds.append(doc["kind"])
                if doc["kind"] == "fanout":
                    v3.worker.run_chunk(doc, message.receive_count)
                else:
                    v3.worker.handle(doc)
                queue.ack([message.receipt])
    record = v3.engine.store.get_run(outcome.run_id)
    assert record.status == RunStatus.COMPLETED
    assert v3.engine.state(outcome.run_id)[0]["total"] == 1 + 4 + 9  # squares: v1's code
    handed = [event[invoke.INTERNAL]["kind"] for _, event in versions.sent]
    assert handed.count("chunk") == kinds.count("fanout") >= 1
    assert handed.count("continue") >= 1


def test_a_streamed_reply_through_the_local_server_path_is_answered_by_the_pinned_version(
    versions: Versions,
) -> None:
    v1, v3 = agents(versions)
    task_id = paused_on_v1(v1)
    message = msg_v1("yes", taskId=task_id)
    body = {
        "jsonrpc": "2.0",
        "id": "1",
        "method": "SendStreamingMessage",
        "params": {"message": message},
    }
    event = api_event(
        "POST",
        "/agents/pinned-agent/",
        [("Content-Type", "application/json"), ("A2A-Version", "1.0")],
        json.dumps(body).encode(),
        domain="127.0.0.1:1",
    )
    with deployed(3):
        response = v3.http(event, LocalContext(29))  # what pflambda local serves
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert isinstance(response.body, bytes)  # the pinned version's buffered stream
    frames = [
        json.loads(line[len("data: ") :])
        for line in response.body.decode().splitlines()
        if line.startswith("data: ")
    ]
    states = [
        f["result"].get("statusUpdate", f["result"].get("task", {})).get("status", {}).get("state")
        for f in frames
    ]
    assert states[-1] == "TASK_STATE_COMPLETED"
    assert [target for target, _ in versions.calls] == ["research:1"]


def test_a_fork_keeps_its_sources_pin(versions: Versions) -> None:
    v1, _ = agents(versions)
    task_id = paused_on_v1(v1)
    fork = v1.engine.fork(task_id, 1)
    assert fork.pinned == "research:1"


def test_continuations_go_to_the_worker_version_pinned_with_the_api_version(
    versions: Versions,
) -> None:
    """The agent functions record the worker version deployed with them: a refused
    continuation is handed to that worker version (its timeout), not the API function."""
    store, blobs, queue = MemoryStore(), MemoryBlobStore(), MemoryQueue()
    sites = {1: "research:1|worker:1", 3: "research:3|worker:3"}
    engines = {
        n: Engine(store, blobs, queue, clock=SystemClock(), site=s) for n, s in sites.items()
    }
    for number in (1, 3):
        worker_engine = Engine(store, blobs, queue, clock=SystemClock())  # pins nothing
        versions.publish_worker(f"worker:{number}", number, Worker(worker_engine))
    with deployed(1):
        outcome = engines[1].start(FLOW, {}, agent="pinned-agent", max_steps=1, hand_off=True)
    assert store.get_run(outcome.run_id).pinned == "research:1|worker:1"
    message = {"kind": "continue", "run_id": outcome.run_id, "seq": 1}
    _, worker_v3 = versions.handlers["worker:3"]
    with deployed(3):
        assert isinstance(worker_v3, Worker)
        worker_v3.handle(message)
    assert [target for target, _ in versions.sent] == ["worker:1"]
    record = store.get_run(outcome.run_id)
    assert (record.status, record.prompt) == (RunStatus.PAUSED, "Approve the plan?")
    assert record.pinned == "research:1|worker:1"  # the worker does not re-pin
