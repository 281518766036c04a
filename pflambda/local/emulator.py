"""A local AWS for development: moto's server on 127.0.0.1 with pflambda's resources.

moto runs one request at a time (:mod:`pflambda.local.moto_server`: its backends are not
thread-safe), and the work queue redrives to its DLQ after
:data:`~pflambda.limits.MAX_RECEIVES` receives, as ``template.yaml``'s does.

``pflambda emulator`` and ``pflambda local`` start it; tests start it on a free port.
It creates exactly what the runtime needs -- the runs table (same keys and indexes
as ``template.yaml``), the state bucket, and the work queue with its dead-letter
queue -- and says which environment variables point a process at it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from pflambda.aws.config import Settings
from pflambda.errors import ConfigError
from pflambda.limits import MAX_RECEIVES

__all__ = ["Emulator", "free_port", "refuse_busy", "running_emulator"]

REGION = "us-east-1"
"""The region the emulator pretends to be."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def refuse_busy(host: str, port: int) -> None:
    """:class:`ConfigError` if something already listens on ``host:port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}): another program uses it; "
                "stop it, or pass --port with a free port"
            ) from None


@dataclass
class Emulator:
    """A running moto server and the names of the resources made in it."""

    server: Any
    endpoint: str
    settings: Settings
    queue_url: str
    dlq_url: str

    def env(self) -> dict[str, str]:
        """Environment variables that point pflambda (and boto3) at this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PFLAMBDA_STORE": "dynamodb",
            "PFLAMBDA_TABLE": self.settings.table,
            "PFLAMBDA_BUCKET": self.settings.bucket,
            "PFLAMBDA_QUEUE_URL": self.queue_url,
        }

    def stop(self) -> None:
        """Stop the server (its data is gone with it)."""
        self.server.stop()


def start_emulator(
    port: int | None = None, host: str = "127.0.0.1", settings: Settings | None = None
) -> Emulator:
    """Start moto on ``host:port`` (a free port by default) and create the resources."""
    if importlib.util.find_spec("moto") is None:
        raise ConfigError("the local emulator needs moto: pip install 'pflambda[local]'")
    import boto3

    from pflambda.blobs.s3 import create_bucket
    from pflambda.local.moto_server import SerialMotoServer
    from pflambda.queues.sqs import create_queue
    from pflambda.stores.dynamodb import create_table

    settings = settings or replace(Settings.from_env(), backend="dynamodb")  # PFLAMBDA_PREFIX
    if port:
        refuse_busy(host, port)
    port = port or free_port(host)
    server = SerialMotoServer(host, port)
    server.start()
    endpoint = f"http://{host}:{port}"
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    try:
        create_table(session.client("dynamodb", endpoint_url=endpoint), settings.table)
        create_bucket(session.client("s3", endpoint_url=endpoint), settings.bucket)
        sqs = session.client("sqs", endpoint_url=endpoint)
        dlq_url = create_queue(sqs, settings.queue_name + "-dlq")
        queue_url = create_queue(
            sqs,
            settings.queue_name,
            dlq_name=settings.queue_name + "-dlq",
            max_receives=MAX_RECEIVES,
        )
    except Exception:
        server.stop()
        raise
    return Emulator(server, endpoint, settings, queue_url, dlq_url)


@contextmanager
def running_emulator(port: int | None = None) -> Iterator[Emulator]:
    """Start an emulator, set the environment to use it, and undo both afterwards."""
    emulator = start_emulator(port)
    saved = {k: os.environ.get(k) for k in emulator.env()}
    os.environ.update(emulator.env())
    try:
        yield emulator
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        emulator.stop()
