"""``pflambda local``: an AWS to talk to, the project's agents, their API and SQS trigger.

The order matters: the environment points at the emulator (or ``--endpoint-url``)
*before* ``handlers`` is imported, so every ``Settings.from_env()`` the agents make
sees it; then the work queue is polled with the project's worker and the agents are
served on one port.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pflambda.aws import invoke
from pflambda.errors import ConfigError
from pflambda.local.poller import REGION, Worker
from pflambda.local.server import LocalServer, ServedAgent, discover_agents, serve
from pflambda.local.sweeper import SweepThread
from pflambda.local.twin import LocalTwin, snapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from pflambda.engine.runner import Engine
    from pflambda.local.emulator import Emulator

__all__ = ["LocalSession", "endpoint_env", "start_local"]


@dataclass
class LocalSession:
    """What ``pflambda local`` runs: the server (with its poller) and the emulator."""

    server: LocalServer
    agents: dict[str, ServedAgent]
    emulator: Emulator | None = None
    endpoint: str | None = None
    sweeper: SweepThread | None = None
    twin: LocalTwin | None = None
    """Runs the copies of earlier versions of the code that runs are pinned to."""

    def banner(self) -> str:
        """What to print once everything is up: URLs and commands to paste."""
        s = self.server
        lines = [f"pflambda local: {len(self.agents)} agent(s) on {s.url}"]
        for name in sorted(self.agents):
            lines += [f"  {name:<12} {s.agent_url(name)}", f"  {'':<12} card {s.card_url(name)}"]
        first = s.agent_url(sorted(self.agents)[0])
        parts = [{"kind": "text", "text": "your question"}]
        message = {"kind": "message", "messageId": "m1", "role": "user", "parts": parts}
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}}
        data = shlex.quote(json.dumps(rpc))
        if s.console is not None:
            lines.append(f"Run console: {s.console_url()}")
        lines += [
            "Ask an agent:",
            f'  pflambda send {first} "your question"',
            f"  curl -s {first} -H 'Content-Type: application/json' -d {data}",
        ]
        lines += self._where_runs_live()
        lines.append("Ctrl-C stops.")
        return "\n".join(lines)

    def _where_runs_live(self) -> list[str]:
        """Where this session's runs are, and how the CLI gets at them."""
        if not self.endpoint:
            return []
        if self.emulator is not None:
            env = self.emulator.env()
            where = (
                f"Runs live in the embedded emulator at {self.endpoint}, in memory: "
                "they end when this stops (start `pflambda emulator` and use "
                "--endpoint-url to keep them)."
            )
        else:
            env = {"AWS_ENDPOINT_URL": self.endpoint, "PFLAMBDA_STORE": "dynamodb"}
            where = f"Runs live at {self.endpoint} (DynamoDB/S3/SQS there)."
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        return [
            where + " SQS worker polling.",
            "See them with `pflambda runs list` in a shell that has (without these, the",
            "CLI uses its own embedded store in .pflambda/):",
            f"  export {exports}",
        ]

    def stop(self) -> None:
        """Stop the poller and the server, then the emulator (its data goes with it)."""
        try:
            if self.sweeper is not None:
                self.sweeper.stop()
            self.server.stop()
            if self.twin is not None:
                self.twin.close()
                invoke.install(None)
                os.environ.pop("PFLAMBDA_SITE", None)
        finally:
            if self.emulator is not None:
                self.emulator.stop()


def _expiry(emulator: object | None) -> Callable[[Engine], int] | None:
    """With the embedded emulator, each sweep also plays DynamoDB's TTL and the reaper
    (moto does neither); a real endpoint expires runs itself, or does not."""
    if emulator is None:
        return None

    def expire(engine: Engine) -> int:
        from pflambda.aws.clients import client
        from pflambda.aws.config import Settings
        from pflambda.local.expiry import expire_table

        return expire_table(engine, client("dynamodb"), Settings.from_env().table)

    return expire


def start_local(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    endpoint_url: str | None = None,
    package: str = "handlers",
    root: str | None = None,
) -> LocalSession:
    """Start the emulator (unless ``endpoint_url``), then the agents of ``package``.

    Sets ``os.environ`` for this process: the AWS endpoint and pflambda's resources,
    ``PFLAMBDA_ALLOW_PRIVATE_PUSH=1`` (push to ``http://localhost`` webhooks), and
    ``PFLAMBDA_SITE=local:<id>``: the project's code is copied to
    ``.pflambda/versions/<id>/`` and runs are pinned to it (:mod:`pflambda.local.twin`).
    """
    from pflambda.aws.config import Settings

    emulator, endpoint = _use_aws(endpoint_url)
    project = Path(root if root is not None else os.getcwd()).resolve()
    twin = _twin(project)
    try:
        agents = discover_agents(package, str(project))
        if not agents:
            raise ConfigError(f"no agents found in the {package!r} package")
        queue = Settings.from_env().ports.queue
        from pflambda.console.handler import console_from_env

        console = console_from_env(default_operators="*")  # local: you see every run
        try:
            server = serve(agents, _worker(package), queue, host, port, console=console)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc}); try --port") from exc
    except BaseException:
        twin.close()
        invoke.install(None)
        if emulator is not None:
            emulator.stop()
        raise
    sweeper = SweepThread(lambda: Settings.from_env().engine(), expire=_expiry(emulator)).start()
    return LocalSession(server, agents, emulator, endpoint, sweeper, twin)


def _twin(project: Path) -> LocalTwin:
    """Copy the project's code as this session's version, pin runs to it, and hand runs
    pinned to earlier copies to those (installed as this process's invoker)."""
    from pflambda.aws.config import Settings

    home = Settings.from_env().home
    version = snapshot(project, home)
    os.environ["PFLAMBDA_SITE"] = f"local:{version}"
    twin = LocalTwin(home)
    invoke.install(twin)
    return twin


def _use_aws(endpoint_url: str | None) -> tuple[Emulator | None, str]:
    """Point this process at a new emulator, or at ``endpoint_url``."""
    from pflambda.aws.clients import reset_clients

    emulator = None
    if endpoint_url is None:
        from pflambda.local.emulator import start_emulator

        werkzeug = logging.getLogger("werkzeug")
        if werkzeug.level == logging.NOTSET:  # moto: a line per SQS poll, unless --verbose
            werkzeug.setLevel(logging.WARNING)
        emulator = start_emulator()
        os.environ.update(emulator.env())
    else:
        os.environ.update(endpoint_env(endpoint_url))
    os.environ["PFLAMBDA_ALLOW_PRIVATE_PUSH"] = "1"
    reset_clients()
    return emulator, emulator.endpoint if emulator is not None else str(endpoint_url)


def endpoint_env(endpoint_url: str) -> dict[str, str]:
    """Variables that point pflambda at ``endpoint_url``, whose resources it creates.

    The table, bucket and queue (with its dead-letter queue) are made if missing;
    region and credentials default to the emulator's when none are configured.
    """
    env = {"AWS_ENDPOINT_URL": endpoint_url, "PFLAMBDA_STORE": "dynamodb"}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or REGION
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        env["AWS_ACCESS_KEY_ID"] = env["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.update(env)
    from pflambda.aws.clients import client, reset_clients
    from pflambda.aws.config import Settings
    from pflambda.blobs.s3 import create_bucket
    from pflambda.queues.sqs import create_queue
    from pflambda.stores.dynamodb import create_table

    reset_clients()
    settings = Settings.from_env()
    create_table(client("dynamodb", endpoint_url=endpoint_url), settings.table)
    create_bucket(client("s3", endpoint_url=endpoint_url), settings.bucket)
    sqs, name = client("sqs", endpoint_url=endpoint_url), settings.queue_name
    try:
        create_queue(sqs, name + "-dlq")
        env["PFLAMBDA_QUEUE_URL"] = create_queue(sqs, name, dlq_name=name + "-dlq")
    except Exception:  # exists with other attributes: use it as it is
        env["PFLAMBDA_QUEUE_URL"] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return env


def _worker(package: str) -> Worker:
    """``<package>.worker.handler`` if the project has one, else the shared worker of every
    agent declared in ``package`` (runs and push notifications)."""
    try:
        module = importlib.import_module(f"{package}.worker")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.worker":
            raise
        module = None
    handler = getattr(module, "handler", None)
    if callable(handler):
        return cast("Worker", handler)
    from pflambda.a2a.agents import shared_worker

    return cast("Worker", shared_worker(package))
