"""Errors at the AWS edge, as the ``pflambda`` command reports them: one line, a hint, a code."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pflambda.cli import main
from pflambda.local.emulator import free_port


@pytest.fixture
def fresh_clients() -> Iterator[None]:
    from pflambda.aws.clients import reset_clients

    reset_clients(session=True)
    yield
    reset_clients(session=True)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_and_hint(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith(("pflambda:", "  hint:"))]
    assert len(lines) == 2, err
    assert lines[0].startswith("pflambda: ")
    assert lines[1].startswith("  hint: ")
    assert "Traceback" not in err
    assert "botocore" not in err
    for needle in needles:
        assert needle in err, err


def test_a_missing_table_is_named_with_the_variable_to_set(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PFLAMBDA_TABLE", "no-such-table")
    code, _, err = run_cli(capsys, "run", "tests.flows.sample:loop")
    assert code == 2
    assert_one_line_and_hint(
        err, "DynamoDB table 'no-such-table' does not exist", "PFLAMBDA_TABLE", "emulator"
    )


def test_a_missing_queue_is_named_with_the_variable_to_set(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PFLAMBDA_QUEUE_URL")
    monkeypatch.setenv("PFLAMBDA_QUEUE", "no-such-queue")
    code, _, err = run_cli(capsys, "runs", "list")
    assert code == 2
    assert_one_line_and_hint(err, "SQS queue 'no-such-queue' does not exist", "PFLAMBDA_QUEUE_URL")


def test_a_missing_bucket_is_named_with_the_variable_to_set(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PFLAMBDA_BUCKET", "no-such-bucket")
    big = json.dumps({"text": "x" * 500_000})  # over an item's 400 KB: goes to the bucket
    code, _, err = run_cli(capsys, "run", "tests.flows.sample:loop", "--shared", big)
    assert code == 2
    assert_one_line_and_hint(err, "S3 bucket 'no-such-bucket' does not exist", "PFLAMBDA_BUCKET")


@pytest.mark.slow
def test_an_unreachable_endpoint_is_blamed_on_the_endpoint_not_the_queue(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_clients: None
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PFLAMBDA_STORE": "dynamodb",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PFLAMBDA_QUEUE_URL", raising=False)
    code, _, err = run_cli(capsys, "runs", "list")
    assert code == 6
    assert_one_line_and_hint(err, f"cannot reach AWS at {endpoint}", "pflambda emulator")
    assert "SQS" not in err
    assert "queue" not in err


def test_credentials_aws_rejects_say_so(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moto.core import set_initial_no_auth_action_count

    @set_initial_no_auth_action_count(0)  # moto checks keys against its IAM from now on
    def listing() -> tuple[int, str, str]:
        return run_cli(capsys, "runs", "list")

    code, _, err = listing()
    assert code == 2, err
    assert_one_line_and_hint(err, "AWS rejected the credentials", "AWS_PROFILE")


def test_no_credentials_at_all_says_where_to_put_them(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_clients: None,
    tmp_path: object,
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {
        "AWS_SHARED_CREDENTIALS_FILE": f"{tmp_path}/none",
        "AWS_CONFIG_FILE": f"{tmp_path}/none",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_REGION": "us-east-1",
        "PFLAMBDA_STORE": "dynamodb",
        "PFLAMBDA_QUEUE_URL": "http://127.0.0.1:1/123456789012/q",
    }.items():
        monkeypatch.setenv(key, value)
    code, _, err = run_cli(capsys, "runs", "list")
    assert code == 2
    assert_one_line_and_hint(err, "no usable AWS credentials", "AWS_ACCESS_KEY_ID")


def test_a_failed_node_is_reported_once_without_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PFLAMBDA_STORE", "memory")
    code, out, err = run_cli(capsys, "run", "tests.flows.sample:failing")
    assert code == 1
    assert err.count("failed:") == 1, err
    assert "Traceback" not in err
    assert "event loop" not in err
    assert json.loads(out.splitlines()[-1])["status"] == "failed"


def test_verbose_shows_the_nodes_traceback_and_no_internal_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PFLAMBDA_STORE", "memory")
    code, _, err = run_cli(capsys, "run", "tests.flows.sample:failing", "--verbose")
    assert code == 1
    assert "Traceback" in err
    assert "no running event loop" not in err


@pytest.mark.parametrize("value", ["-3", "0", "many"])
def test_max_steps_must_be_a_positive_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "tests.flows.sample:loop", "--max-steps", value])
    assert exit_.value.code == 2
    assert "--max-steps" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"pflambda {version('pflambda')}"


def test_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "130 "):
        assert any(line.startswith(code) for line in out.splitlines()), code


def test_the_emulator_on_a_busy_port_says_so_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run_cli(capsys, "emulator", "--port", str(port))
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "--port" in err
    assert "export" not in out
