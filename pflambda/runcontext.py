"""What a node can know about the durable run it is part of: :func:`current_run`.

A node's ``exec`` may run more than once (after a crash, a timeout, a redelivered queue
message, or its own retries), so a side effect -- a payment, an email, a ticket --
needs an idempotency key that stays the same every time the same step runs again, and
differs for every other step. The engine sets a :class:`RunContext` (a
:mod:`contextvars` variable) around each step it drives -- the flows' and the node's
``prep``, ``exec`` and ``post`` -- and around each fanned-out item a worker runs::

    from pflambda import Node, current_run

    class Charge(Node):
        def exec(self, order):
            run = current_run()
            return payments.charge(order, idempotency_key=run.idempotency_key("charge"))

Outside a durable run (``flow.run(shared)`` in-process, a unit test calling ``exec``)
:func:`current_run` raises :class:`NoRunContext`; :func:`maybe_current_run` returns
``None`` instead. This module is core: it imports nothing of pflambda's.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "NoRunContext",
    "RunContext",
    "current_run",
    "maybe_current_run",
]


class NoRunContext(LookupError):
    """:func:`current_run` was called outside a durable run."""


@dataclass(frozen=True)
class RunContext:
    """The run, step and node a piece of node code runs for.

    ``run_id`` + ``step`` (+ ``item`` for a fanned-out item) name one unit of work
    exactly once in the run's life: a step's number is the checkpoint it will commit,
    the same on every re-run of that step, and never reused once it is committed.
    """

    run_id: str
    step: int
    """The checkpoint this step commits (1 for the first node); for a fanned-out item,
    the checkpoint that started the fan-out."""
    node_id: str | None
    """The node's stable id in the graph (see :mod:`pflambda.graph`); ``None`` while a
    flow's own ``prep`` runs before any node."""
    flow: str
    """How the flow is built: ``"package.module:factory"``."""
    item: int | None = None
    """The batch item's index, for a fanned-out item run by a worker; ``None`` in a step
    (in-process batch nodes run every item within their one step)."""
    delivery: int | None = None
    """For a fanned-out item: how many times its queue message has been delivered
    (SQS's ``ApproximateReceiveCount``, 1 the first time); ``None`` in a step."""
    task_id: str | None = None
    """The A2A task this run is (a task id is its run id); ``None`` outside A2A."""
    context_id: str | None = None
    """The A2A context (conversation) of the run, if any."""
    agent: str | None = None
    """The name of the A2A agent that started the run, if any."""
    _node: Any = field(default=None, repr=False, compare=False)
    _emit: Callable[..., None] | None = field(default=None, repr=False, compare=False)

    def emit_artifact(
        self,
        artifact_id: str,
        parts: Any,
        *,
        append: bool = False,
        last_chunk: bool = False,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Stream an artifact, or one chunk of it, while the run goes on.

        ``parts``: a ``str`` (a text part), a :class:`pflambda.Part`, or a list of them.
        The chunk is committed with this step's checkpoint (one write) and streamed to
        A2A clients as a ``TaskArtifactUpdateEvent`` once it is; GetTask shows the
        artifacts built so far. ``append=True`` adds the parts to the artifact with this
        ``artifact_id`` (its first chunk has ``append=False``); ``last_chunk=True`` says
        the artifact is complete. A step that fails or is retried drops its chunks and
        emits them again when it runs again, and so does an ``exec`` attempt that
        raises: a client never sees a chunk twice.

        Raises ``TypeError``/``ValueError`` at once for a bad chunk: an unknown part
        type, an append to an artifact never started, a chunk after the last chunk, a
        chunk over 1 MB, or a run's artifacts over 4 MB. Call it from ``prep``/``post``
        (or ``exec``: each attempt's own chunks). Not available in a fanned-out batch
        item run by a worker: return the content and emit it in the node's ``post``.
        """
        if self._emit is None:
            where = f"item {self.item} of a fanned-out batch node" if self.item is not None else ""
            raise RuntimeError(
                f"emit_artifact is not available in {where or 'this context'}: "
                "return the content and emit it from the node's post"
            )
        self._emit(
            self.step,
            artifact_id,
            parts,
            append=append,
            last_chunk=last_chunk,
            name=name,
            description=description,
            metadata=metadata,
        )

    @property
    def attempt(self) -> int:
        """Which try of the node's ``exec`` this is: 1, then 2... with ``max_retries``
        (PocketFlow's ``cur_retry`` + 1); the successful try's number in ``post``."""
        return int(getattr(self._node, "cur_retry", 0) or 0) + 1

    def idempotency_key(self, *parts: object) -> str:
        """``run_id/step[/item][/part...]``: the same every time this step (or item)
        runs again, different for every other step, item or part."""
        names = [self.run_id, str(self.step)]
        if self.item is not None:
            names.append(str(self.item))
        names += [str(part) for part in parts]
        return "/".join(names)


_CURRENT: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "pflambda_run", default=None
)


def current_run() -> RunContext:
    """The run the calling node code is part of; :class:`NoRunContext` outside one."""
    run = _CURRENT.get()
    if run is None:
        raise NoRunContext(
            "current_run() is only set while the durable engine runs a node "
            "(Engine.start/resume, pflambda run, an agent or worker); "
            "flow.run() in-process has no run: use maybe_current_run() to allow that"
        )
    return run


def maybe_current_run() -> RunContext | None:
    """The run the calling node code is part of, or ``None`` outside one."""
    return _CURRENT.get()


@contextmanager
def running(run: RunContext) -> Iterator[RunContext]:
    """Make ``run`` current for the code inside (the engine and workers call this)."""
    token = _CURRENT.set(run)
    try:
        yield run
    finally:
        _CURRENT.reset(token)


def at_node(node_id: str | None, node: Any) -> None:
    """Tell the current run which node (a per-visit copy) is about to run; no-op
    outside a run. Set in the caller's context, so it lasts until the step ends."""
    run = _CURRENT.get()
    if run is not None:
        _CURRENT.set(replace(run, node_id=node_id, _node=node))


def a2a_ids(run_id: str, context_id: str | None, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``task_id``, ``context_id`` and ``agent`` of a run, from its record's fields."""
    a2a = attrs.get("a2a")
    if not isinstance(a2a, Mapping):
        return {"context_id": context_id}
    agent = a2a.get("agent")
    return {
        "task_id": run_id,
        "context_id": context_id,
        "agent": agent if isinstance(agent, str) else None,
    }
