"""Configuration from the environment, and the engine it builds.

The one place that decides which Store/BlobStore/Queue a process uses:

=========================  ==================================  =====================
variable                   meaning                             default
=========================  ==================================  =====================
``PFLAMBDA_STORE``         ``sqlite``, ``memory`` or           ``dynamodb`` on
                           ``dynamodb``                        Lambda, else
                                                               ``sqlite``
``PFLAMBDA_DIR``           where ``sqlite`` keeps its          ``.pflambda`` (in
                           database (``pflambda.db``)          the working
                           and blobs (``blobs/``)              directory)
``PFLAMBDA_PREFIX``        starts the names below, so two      ``pflambda-``
                           projects can share one emulator
                           (or account) without taking each
                           other's runs and messages
``PFLAMBDA_TABLE``         DynamoDB table of runs              ``<prefix>runs``
``PFLAMBDA_BUCKET``        S3 bucket for large values          ``<prefix>state``
``PFLAMBDA_QUEUE_URL``     SQS work queue URL                  looked up by name
``PFLAMBDA_QUEUE``         SQS work queue name (its DLQ:       ``<prefix>work``
                           the name + ``-dlq``)
``PFLAMBDA_MARGIN_MS``     stop this long before the timeout   ``30000``
``PFLAMBDA_TTL_DAYS``      a run and all it owns are kept      ``30``
                           this long after its last status
                           change (running: its last step)
``PFLAMBDA_PAUSED_TTL_``   ... and this long after it paused   ``90``
``DAYS``                   for input (both 1-365)
``PFLAMBDA_ALLOW_PRIVATE_  push to http/private addresses      off
PUSH``                     (``1``: local development)
``PFLAMBDA_SITE``          where this code is deployed, to     ``function:version``
                           pin runs to (the local twin sets    on a published Lambda
                           ``local:<id>``)                     version, else none
``PFLAMBDA_LIST_SHARDS``   listing partitions per owner and    ``64``
                           agent (``dynamodb``: 1-1000; see
                           docs/deploy.md "Listing indexes")
=========================  ==================================  =====================

``sqlite`` is the embedded, persistent default: runs, checkpoints and queued work live
in one SQLite file that every process started in the project shares, so ``pflambda run``
and a later ``pflambda resume`` see the same run. ``memory`` lives and dies with one
process (tests). ``dynamodb`` is DynamoDB + S3 + SQS, on AWS or an emulator.

Region and endpoint come from the standard AWS variables (``AWS_REGION``,
``AWS_ENDPOINT_URL``...), so pointing at a local emulator needs no code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pflambda import limits
from pflambda.aws.invoke import site_from_env
from pflambda.errors import ConfigError
from pflambda.stores._listing import check_shards

if TYPE_CHECKING:
    from pflambda.blobs.base import BlobStore
    from pflambda.engine.runner import Engine
    from pflambda.queues.base import Queue
    from pflambda.stores.base import Store

__all__ = ["Settings"]

_BACKENDS = ("sqlite", "memory", "dynamodb")
DB_FILE = "pflambda.db"
"""The embedded database's file name, inside ``PFLAMBDA_DIR``."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _days(env: Mapping[str, str], name: str, default: int) -> int:
    """A retention in days: a whole number from 1 to MAX_RETENTION_DAYS."""
    days = _int(env, name, default)
    if not 1 <= days <= limits.MAX_RETENTION_DAYS:
        raise ConfigError(f"{name} must be from 1 to {limits.MAX_RETENTION_DAYS} days, got {days}")
    return days


DEFAULT_PREFIX = "pflambda-"
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class Settings:
    """What the environment says; ``build_*`` make the ports it names (once each)."""

    backend: str = "sqlite"
    table: str = "pflambda-runs"
    bucket: str = "pflambda-state"
    queue_name: str = "pflambda-work"
    queue_url: str | None = None
    margin_ms: int = limits.DEADLINE_MARGIN_MS
    ttl_days: int = limits.DEFAULT_RUN_TTL_DAYS
    allow_private_push: bool = False
    """Let push notifications go to http and private addresses (local development)."""
    directory: str = ".pflambda"
    """Where the ``sqlite`` backend keeps its database and blobs."""
    site: str | None = None
    """Where this code is deployed, to pin runs to (:func:`pflambda.aws.invoke.site_from_env`)."""
    paused_ttl_days: int = limits.DEFAULT_PAUSED_TTL_DAYS
    """How long a run paused for input is kept after it paused."""
    list_shards: int = limits.LIST_SHARDS
    """Listing index partitions per owner and agent for the runs ``dynamodb`` creates."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the ``PFLAMBDA_*`` variables (see the module docstring)."""
        env = os.environ if env is None else env
        on_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
        backend = env.get("PFLAMBDA_STORE") or ("dynamodb" if on_lambda else "sqlite")
        if backend not in _BACKENDS:
            raise ConfigError(
                f"PFLAMBDA_STORE must be one of {', '.join(_BACKENDS)}, got {backend!r}"
            )
        prefix = env.get("PFLAMBDA_PREFIX", DEFAULT_PREFIX)
        if not _PREFIX.match(prefix):
            raise ConfigError(
                f"PFLAMBDA_PREFIX must be up to 40 lowercase letters, digits and '-', "
                f"starting with a letter or digit (it starts S3 bucket names), got {prefix!r}"
            )
        margin = _int(env, "PFLAMBDA_MARGIN_MS", limits.DEADLINE_MARGIN_MS)
        ttl = _days(env, "PFLAMBDA_TTL_DAYS", limits.DEFAULT_RUN_TTL_DAYS)
        paused = _days(env, "PFLAMBDA_PAUSED_TTL_DAYS", limits.DEFAULT_PAUSED_TTL_DAYS)
        if margin < 0:
            raise ConfigError("PFLAMBDA_MARGIN_MS must be >= 0")
        shards = check_shards(
            _int(env, "PFLAMBDA_LIST_SHARDS", limits.LIST_SHARDS), "PFLAMBDA_LIST_SHARDS"
        )
        return cls(
            backend=backend,
            directory=env.get("PFLAMBDA_DIR") or cls.directory,
            table=env.get("PFLAMBDA_TABLE") or f"{prefix}runs",
            bucket=env.get("PFLAMBDA_BUCKET") or f"{prefix}state",
            queue_name=env.get("PFLAMBDA_QUEUE") or f"{prefix}work",
            queue_url=env.get("PFLAMBDA_QUEUE_URL") or None,
            margin_ms=margin,
            ttl_days=ttl,
            paused_ttl_days=paused,
            allow_private_push=env.get("PFLAMBDA_ALLOW_PRIVATE_PUSH", "") in ("1", "true", "yes"),
            site=site_from_env(env),
            list_shards=shards,
        )

    def engine(self) -> Engine:
        """An engine on the ports this configuration names."""
        from pflambda.aws.observe import install
        from pflambda.engine.runner import Engine

        engine = Engine(
            self.ports.store,
            self.ports.blobs,
            self.ports.queue,
            margin_ms=self.margin_ms,
            ttl_days=self.ttl_days,
            site=self.site,
            paused_ttl_days=self.paused_ttl_days,
        )
        engine.orphan_checks = self.backend == "dynamodb"
        return install(engine)

    @property
    def home(self) -> Path:
        """The ``sqlite`` backend's directory, made absolute (from the working directory)."""
        return Path(self.directory).expanduser().resolve()

    def describe(self) -> str:
        """Where runs live, in a few words (banners and ``--help`` say it)."""
        if self.backend == "sqlite":
            return f"{self.home / DB_FILE} (embedded SQLite)"
        if self.backend == "memory":
            return "this process's memory (gone when it exits)"
        return f"DynamoDB table {self.table!r}, S3 bucket {self.bucket!r}"

    @cached_property
    def ports(self) -> Ports:
        """The store, blob store and queue, built once per Settings object."""
        if self.backend == "memory":
            return _memory_ports()
        if self.backend == "sqlite":
            return _sqlite_ports(self)
        return _aws_ports(self)


@dataclass(frozen=True)
class Ports:
    """A store, a blob store and a queue that belong together."""

    store: Store
    blobs: BlobStore
    queue: Queue


_MEMORY: Ports | None = None


def _memory_ports() -> Ports:
    """One set of memory ports per process, so handlers in one process share runs."""
    global _MEMORY
    if _MEMORY is None:
        from pflambda.blobs.memory import MemoryBlobStore
        from pflambda.queues.memory import MemoryQueue
        from pflambda.stores.memory import MemoryStore

        _MEMORY = Ports(MemoryStore(), MemoryBlobStore(), MemoryQueue())
    return _MEMORY


_SQLITE: dict[tuple[Path, str], Ports] = {}


def _sqlite_ports(settings: Settings) -> Ports:
    """One set of embedded ports per directory and queue per process (one connection
    per thread each), however many Settings objects name them."""
    from pflambda.blobs.disk import DiskBlobStore
    from pflambda.queues.sqlite import SQLiteQueue
    from pflambda.stores.sqlite import SQLiteStore

    root = settings.home
    key = (root, settings.queue_name)
    if key not in _SQLITE:
        _SQLITE[key] = Ports(
            SQLiteStore(root / DB_FILE),
            DiskBlobStore(root / "blobs"),
            SQLiteQueue(root / DB_FILE, settings.queue_name),
        )
    return _SQLITE[key]


def _aws_ports(settings: Settings) -> Ports:
    from botocore.exceptions import ClientError

    from pflambda.aws.clients import client, lazy_client
    from pflambda.blobs.s3 import S3BlobStore
    from pflambda.queues.sqs import SQSQueue
    from pflambda.stores.dynamodb import DynamoDBStore

    url = settings.queue_url
    sqs = lazy_client("sqs") if url is not None else client("sqs")
    if url is None:
        try:
            url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
        except ClientError as exc:  # not a network failure: that is no fault of the queue's
            raise ConfigError(
                f"cannot find SQS queue {settings.queue_name!r} (set PFLAMBDA_QUEUE_URL): {exc}"
            ) from exc
    return Ports(
        DynamoDBStore(settings.table, client("dynamodb"), shards=settings.list_shards),
        S3BlobStore(settings.bucket, lazy_client("s3")),
        SQSQueue(url, sqs),
    )


def reset_memory_ports() -> None:
    """Forget the process's memory ports, and close its embedded ones (tests)."""
    global _MEMORY
    _MEMORY = None
    for ports in _SQLITE.values():
        for port in (ports.store, ports.queue):
            close = getattr(port, "close", None)
            if close is not None:
                close()
    _SQLITE.clear()
