"""What went wrong talking to AWS, said in one line with what to do about it.

botocore reports a missing table, a stopped emulator or an expired token as an exception
named after the wire protocol (``ResourceNotFoundException``, ``EndpointConnectionError``,
a page of urllib3 frames). :func:`explain` finds such an error in an exception's chain
(pflambda's ports wrap network failures in ``RetryableError``) and says what it means for
*this* configuration: which table, bucket or queue, which endpoint, which variable to set.

A resource or credential problem is configuration; an endpoint that does not answer is
``unreachable`` (the same command may work once it is up): the CLI gives each its exit code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from pflambda.aws.config import Settings

__all__ = ["Problem", "explain"]

EMULATOR_HINT = "start `pflambda emulator` and paste the exports it prints"

_MISSING = {
    "ResourceNotFoundException",  # DynamoDB
    "NoSuchBucket",  # S3
    "AWS.SimpleQueueService.NonExistentQueue",  # SQS, query protocol
    "QueueDoesNotExist",  # SQS, JSON protocol
}
_BAD_CREDENTIALS = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
}
_DENIED = {"AccessDenied", "AccessDeniedException"}
_SERVICE = {"dynamodb": "DynamoDB", "s3": "S3", "sqs": "SQS"}


@dataclass(frozen=True)
class Problem:
    """One line saying what is wrong, and one saying what to do."""

    message: str
    hint: str
    unreachable: bool = False
    """Nothing answered (rather than: something answered no)."""

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}"


def explain(exc: BaseException, settings: Settings | None = None) -> Problem | None:
    """The AWS problem behind ``exc`` (or its causes), or ``None`` if it is not one."""
    settings = settings or Settings.from_env()
    for link in _chain(exc):
        if isinstance(link, ClientError):
            found = _client_error(link, settings)
        else:
            found = _transport_error(link)
        if found is not None:
            return found
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _client_error(err: ClientError, settings: Settings) -> Problem | None:
    code = _code(err)
    service = _service_of(err)
    if code in _MISSING or (service == "sqs" and "NonExistentQueue" in code):
        return _missing(service, err, settings)
    if code in _BAD_CREDENTIALS:
        return Problem(
            f"AWS rejected the credentials ({code}) at {_where()}",
            "refresh them (aws sso login, or new AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/"
            "AWS_SESSION_TOKEN), or check AWS_PROFILE",
        )
    if code in _DENIED:
        return Problem(
            f"AWS denied {_SERVICE.get(service, service)} {err.operation_name} at {_where()}",
            "give the role the permissions in template.yaml, or use credentials that have them",
        )
    return None


def _missing(service: str, err: ClientError, settings: Settings) -> Problem:
    where = _where()
    if service == "dynamodb":
        what, variable = f"DynamoDB table {settings.table!r}", "PFLAMBDA_TABLE"
    elif service == "s3":
        bucket = err.response.get("Error", {}).get("BucketName") or settings.bucket
        what, variable = f"S3 bucket {bucket!r}", "PFLAMBDA_BUCKET"
    else:
        name = settings.queue_url or settings.queue_name
        what, variable = f"SQS queue {name!r}", "PFLAMBDA_QUEUE_URL"
    return Problem(
        f"{what} does not exist at {where}",
        f"set {variable} to your stack's (sam list stack-outputs), or {EMULATOR_HINT}",
    )


def _transport_error(err: BaseException) -> Problem | None:
    if isinstance(err, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        endpoint = getattr(err, "kwargs", {}).get("endpoint_url") or _where()
        hint = (
            f"is the emulator running? {EMULATOR_HINT}, or unset AWS_ENDPOINT_URL"
            if os.environ.get("AWS_ENDPOINT_URL")
            else "check your network and AWS_REGION"
        )
        return Problem(f"cannot reach AWS at {endpoint}", hint, unreachable=True)
    if isinstance(err, ReadTimeoutError):
        endpoint = getattr(err, "kwargs", {}).get("endpoint_url") or _where()
        return Problem(f"AWS at {endpoint} did not answer in time", "try again", unreachable=True)
    if isinstance(err, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return Problem(
            f"no usable AWS credentials ({type(err).__name__})",
            "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; "
            f"for local development {EMULATOR_HINT}",
        )
    return None


def _code(err: ClientError) -> str:
    """The error's code; when the body could not be parsed (an XML error where JSON was
    expected: emulators, proxies) botocore gives the HTTP status, so look in the text."""
    error = err.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code.isdigit():
        text = str(error.get("Message", ""))
        for known in (*_BAD_CREDENTIALS, *_DENIED, *_MISSING):
            if f">{known}<" in text or f'"{known}"' in text:
                return known
    return code


def _service_of(err: ClientError) -> str:
    """The service a client error came from, read off the operation and error code."""
    code = err.response.get("Error", {}).get("Code", "")
    operation = err.operation_name or ""
    if "Queue" in code or "Message" in operation or "Queue" in operation:
        return "sqs"
    if "Bucket" in code or "Object" in operation or "Bucket" in operation:
        return "s3"
    return "dynamodb"


def _where() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return f"AWS ({region})" if region else "AWS"
