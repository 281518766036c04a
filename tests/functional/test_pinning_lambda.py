"""Version pinning through the Lambda handlers, under moto: the run records the function
version it started on, and when a redeploy removes its paused node, the worker and the API
hand it to that version with ``lambda:Invoke`` + ``Qualifier``.

moto's Lambda needs Docker to invoke functions, so the Lambda client is the real boto3
client with its ``Invoke`` answered by a botocore event hook: the hook runs the pinned
version (the agent as it was at version 1) on the decoded payload, as Lambda would, or
answers 404 ``ResourceNotFoundException`` for a deleted version. DynamoDB, S3 and SQS are
moto's.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from pflambda.a2a.agent import Agent
from pflambda.aws import invoke
from pflambda.aws.config import Settings
from pflambda.aws.invoke import HOPS_HEADER, LambdaInvoker
from pflambda.aws.worker import Worker
from pflambda.engine import fanout
from pflambda.stores.base import RunStatus
from tests.flows import deploy
from tests.functional.conftest import FakeContext, load_event
from tests.functional.test_worker import sqs_event

FLOW = "tests.flows.deploy:create_flow"
FUNCTION = "stack-ApprovalFunction-abc"
WORKER = "arn:aws:lambda:us-east-1:123456789012:function:stack-WorkerFunction-xyz"


class FakeLambda:
    """Answers the boto3 Lambda client's ``Invoke`` by running the published versions."""

    def __init__(self) -> None:
        self.client = boto3.client("lambda", region_name="us-east-1")
        self.versions: dict[str, Agent] = {}
        self.workers: dict[str, Worker] = {}
        self.invokes: list[dict[str, Any]] = []
        events = self.client.meta.events
        events.register("before-parameter-build.lambda.Invoke", self._params)
        events.register("before-call.lambda.Invoke", self._call)

    def _params(self, params: dict[str, Any], **_: Any) -> None:
        self.invokes.append(dict(params))

    def _call(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = self.invokes[-1]
        versions: dict[str, Any] = {FUNCTION: self.versions, WORKER: self.workers}.get(
            params["FunctionName"], {}
        )
        handler = versions.get(params.get("Qualifier", ""))
        if handler is None:
            error = {"Code": "ResourceNotFoundException", "Message": "Function not found"}
            meta = {"HTTPStatusCode": 404}
            return AWSResponse("", 404, {}, None), {"Error": error, "ResponseMetadata": meta}
        event = json.loads(params["Payload"])
        previous = deploy.VERSION["v"]
        deploy.VERSION["v"] = int(params["Qualifier"])  # that version's code
        fanout._GRAPHS.built.clear()
        try:
            if isinstance(handler, Worker):
                answer = handler(event, FakeContext(remaining_ms=299_000))
            else:
                answer = handler.api_handler(event, FakeContext(remaining_ms=29_000))
        finally:
            deploy.VERSION["v"] = previous
            fanout._GRAPHS.built.clear()
        status = 202 if params["InvocationType"] == "Event" else 200
        raw = json.dumps(answer).encode()
        body = StreamingBody(io.BytesIO(raw), len(raw))
        meta = {"HTTPStatusCode": status}
        return AWSResponse("", status, {}, None), {
            "StatusCode": status,
            "Payload": body,
            "ResponseMetadata": meta,
        }


def agent_at(version: int) -> Agent:
    env = {
        **os.environ,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        "AWS_LAMBDA_FUNCTION_VERSION": str(version),
        "PFLAMBDA_WORKER_VERSION": f"{WORKER}:{version}",  # as the template sets it
    }
    settings = Settings.from_env(env)
    return Agent(
        name="approval-pinned",
        flow=FLOW,
        settings=settings,
        engine=settings.engine(),
        output_key="published",
    )


@pytest.fixture
def fake(aws: None) -> Iterator[FakeLambda]:
    lam = FakeLambda()
    invoke.install(LambdaInvoker(lam.client))
    deploy.VERSION["v"] = 1
    try:
        yield lam
    finally:
        invoke.install(None)
        deploy.VERSION["v"] = 1
        fanout._GRAPHS.built.clear()


def send(agent: Agent, text: str, task_id: str | None = None) -> dict[str, Any]:
    event = load_event("apigw_rest_post.json")
    message = {"kind": "message", "messageId": f"m-{text}", "role": "user"}
    message["parts"] = [{"kind": "text", "text": text}]
    if task_id:
        message["taskId"] = task_id
    event["body"] = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}}
    )
    response = agent.api_handler(event, FakeContext(remaining_ms=29_000))
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])  # type: ignore[no-any-return]


def paused_on_v1(fake: FakeLambda) -> tuple[Agent, str]:
    v1 = agent_at(1)
    fake.versions["1"] = v1
    task = send(v1, "go")["result"]
    assert task["status"]["state"] == "input-required"
    return v1, str(task["id"])


def test_the_start_records_the_function_version_in_the_run_item(fake: FakeLambda) -> None:
    _, task_id = paused_on_v1(fake)
    table = Settings.from_env().table
    item = boto3.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": f"RUN#{task_id}"}, "sk": {"S": "META"}}
    )["Item"]
    assert item["pinned"] == {"S": f"{FUNCTION}:1|{WORKER}:1"}


def test_a_reply_is_proxied_to_the_pinned_version_with_a_qualified_invoke(
    fake: FakeLambda,
) -> None:
    _, task_id = paused_on_v1(fake)
    deploy.VERSION["v"] = 3  # the redeploy: Ask is gone
    v3 = agent_at(3)
    result = send(v3, "yes", task_id)["result"]
    assert result["status"]["state"] == "completed"
    assert result["artifacts"][0]["parts"][0]["text"] == "a plan (yes)"
    [call] = fake.invokes
    assert (call["FunctionName"], call["Qualifier"], call["InvocationType"]) == (
        FUNCTION,
        "1",
        "RequestResponse",
    )
    assert json.loads(call["Payload"])["headers"][HOPS_HEADER] == "1"


def test_a_deleted_version_leaves_the_task_input_required_naming_migrate(
    fake: FakeLambda,
) -> None:
    _, task_id = paused_on_v1(fake)
    del fake.versions["1"]
    deploy.VERSION["v"] = 3
    v3 = agent_at(3)
    error = send(v3, "yes", task_id)["error"]
    assert "pflambda migrate TASK_ID --map OLD=NEW" in error["message"]
    record = v3.engine.store.get_run(task_id)
    assert (record.status, record.prompt) == (RunStatus.PAUSED, "Approve the plan?")
    assert [c["Qualifier"] for c in fake.invokes] == ["1"]


def running_at_ask(fake: FakeLambda) -> str:
    v1 = agent_at(1)
    fake.versions["1"] = v1
    fake.workers["1"] = Worker()  # the worker version deployed with it (pins nothing)
    outcome = v1.engine.start(FLOW, {}, agent="approval-pinned", max_steps=1, hand_off=True)
    assert outcome.status == RunStatus.RUNNING
    return outcome.run_id


def test_the_worker_hands_a_refused_continuation_to_the_pinned_version(
    fake: FakeLambda,
) -> None:
    run_id = running_at_ask(fake)
    deploy.VERSION["v"] = 3
    engine = Settings.from_env().engine()  # the shared worker: it pins nothing
    body = engine.queue.receive(10)[0].body
    response = Worker(engine)(sqs_event(body), FakeContext())
    assert response == {"batchItemFailures": []}
    [call] = fake.invokes
    assert (call["FunctionName"], call["Qualifier"], call["InvocationType"]) == (
        WORKER,
        "1",
        "Event",
    )
    assert json.loads(call["Payload"])[invoke.INTERNAL]["kind"] == "continue"
    record = engine.store.get_run(run_id)
    assert (record.status, record.prompt) == (RunStatus.PAUSED, "Approve the plan?")


def test_a_continuation_whose_version_was_deleted_fails_naming_migrate(
    fake: FakeLambda,
) -> None:
    run_id = running_at_ask(fake)
    del fake.workers["1"]
    deploy.VERSION["v"] = 3
    engine = Settings.from_env().engine()
    body = engine.queue.receive(10)[0].body
    assert Worker(engine)(sqs_event(body), FakeContext()) == {"batchItemFailures": []}
    record = engine.store.get_run(run_id)
    assert record.status == RunStatus.FAILED
    assert f"pflambda migrate {run_id} --map OLD=NEW" in (record.error or "")
