"""The invoker port's Lambda adapter and event shapes (botocore's Stubber, no network)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from pflambda.aws.invoke import (
    HOPS_HEADER,
    INTERNAL,
    LambdaInvoker,
    PinFailed,
    PinGone,
    hops_of,
    internal_event,
    internal_of,
    site_from_env,
    split_site,
    targets,
    with_hops,
)
from pflambda.errors import ConfigError, RetryableError


@pytest.fixture
def stubbed() -> Iterator[tuple[LambdaInvoker, Stubber]]:
    client = boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield LambdaInvoker(client), stubber
        stubber.assert_no_pending_responses()


def payload(doc: Any) -> StreamingBody:
    raw = json.dumps(doc).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_send_is_an_event_invoke_of_the_version(stubbed: tuple[LambdaInvoker, Stubber]) -> None:
    invoker, stubber = stubbed
    event = internal_event("continue", 1, run_id="r1")
    expected = {
        "FunctionName": "stack-Research-1",
        "Qualifier": "7",
        "InvocationType": "Event",
        "Payload": ANY,
    }
    stubber.add_response("invoke", {"StatusCode": 202}, expected)
    invoker.send("stack-Research-1:7", event)


def test_call_returns_the_versions_answer(stubbed: tuple[LambdaInvoker, Stubber]) -> None:
    invoker, stubber = stubbed
    answer = {"statusCode": 200, "body": "{}"}
    stubber.add_response("invoke", {"StatusCode": 200, "Payload": payload(answer)})
    assert invoker.call("fn:3", {"path": "/"}) == answer


def test_a_function_error_is_pin_failed(stubbed: tuple[LambdaInvoker, Stubber]) -> None:
    invoker, stubber = stubbed
    response = {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload({"x": 1})}
    stubber.add_response("invoke", response)
    with pytest.raises(PinFailed, match="fn:3 raised"):
        invoker.call("fn:3", {})


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ResourceNotFoundException", 404, PinGone),
        ("TooManyRequestsException", 429, RetryableError),
        ("ServiceException", 500, RetryableError),
        ("AccessDeniedException", 403, PinFailed),
    ],
)
def test_invoke_errors_say_what_to_do(
    stubbed: tuple[LambdaInvoker, Stubber], code: str, status: int, error: type[Exception]
) -> None:
    invoker, stubber = stubbed
    stubber.add_client_error("invoke", code, "no", http_status_code=status)
    with pytest.raises(error):
        invoker.send("fn:3", internal_event("continue", 1, run_id="r"))


def test_sites_that_name_no_published_version_are_gone() -> None:
    assert split_site("my-fn:12") == ("my-fn", "12")
    for bad in ("my-fn", "my-fn:$LATEST", "local:abc", ":3"):
        with pytest.raises(PinGone):
            split_site(bad)


def test_the_site_comes_from_lambdas_environment() -> None:
    on_version = {"AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_LAMBDA_FUNCTION_VERSION": "4"}
    assert site_from_env(on_version) == "fn:4"
    assert site_from_env({**on_version, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"}) is None
    assert site_from_env({}) is None
    assert site_from_env({**on_version, "PFLAMBDA_SITE": "local:ab"}) == "local:ab"
    worker = "arn:aws:lambda:us-east-1:1:function:w"
    both = site_from_env({**on_version, "PFLAMBDA_WORKER_VERSION": f"{worker}:9"})
    assert both == f"fn:4|{worker}:9"
    assert targets(both) == ("fn:4", f"{worker}:9")
    assert targets("fn:4") == ("fn:4", "fn:4")
    assert split_site(f"{worker}:9") == (worker, "9")


def test_internal_events_and_hops() -> None:
    event = internal_event("chunk", 1, run_id="r", message={"kind": "fanout"})
    assert internal_of(event) == event[INTERNAL]
    assert internal_of({"httpMethod": "POST", "headers": {}}) is None
    assert internal_of({INTERNAL: {"kind": "continue", "hops": 1}, "path": "/"}) is None
    with pytest.raises(ConfigError, match="malformed internal event"):
        internal_of({INTERNAL: {"kind": "delete-everything", "run_id": "r", "hops": 1}})
    with pytest.raises(ConfigError, match="run_id"):
        internal_of({INTERNAL: {"kind": "continue", "hops": 1}})
    with pytest.raises(ValueError, match="kind"):
        internal_event("other", 1, run_id="r")
    api = {"headers": {"Content-Type": "x"}, "multiValueHeaders": {"Content-Type": ["x"]}}
    assert hops_of(api) == 0
    handed = with_hops(api, 1)
    assert hops_of(handed) == 1
    assert handed["multiValueHeaders"][HOPS_HEADER] == ["1"]
    assert hops_of({"headers": {"X-Pflambda-Hops": "junk"}}) == 1  # any value: handed
