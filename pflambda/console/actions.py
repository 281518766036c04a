"""What the console can do to a run: reply, resume, cancel, fork -- through the engine.

Each action is the engine call the CLI makes (``resume --reply``, ``resume``,
``cancel``, ``fork``), and is refused by the engine's own rules (a completed run
cannot be resumed, a running run cannot take a reply...). The console adds one rule:
a running run that is not stalled is being driven by someone, so ``resume`` refuses
it instead of racing that invocation.

Driving a run is not done in the request: the action commits what it must (the
reply, the new status, the fork's first checkpoint), leaves the run's lease to the
queue and sends a continuation, which a worker picks up -- as the A2A API does with
``returnImmediately`` (the engine's ``hand_off``). Without a queue
(an engine made for tests or scripts) the run is driven in the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pflambda.blobs.base import BlobStore
from pflambda.console.snapshot import Offloaded, load_state
from pflambda.console.views import is_stalled
from pflambda.engine import codec
from pflambda.engine.runner import Engine, continuation
from pflambda.errors import ConfigError, InvalidRunState
from pflambda.stores.base import RunRecord, RunStatus

__all__ = ["ActionResult", "Actions", "edits"]


@dataclass(frozen=True)
class ActionResult:
    """What an action did, for the console's confirmation line."""

    run_id: str
    status: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """The API's answer."""
        return {"run_id": self.run_id, "status": self.status, "message": self.message}


class Actions:
    """The console's actions on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def blobs(self) -> BlobStore:
        """The engine's blob store."""
        return self.engine.blobs

    def reply(self, record: RunRecord, text: str) -> ActionResult:
        """Answer a paused run's question; the run goes on from the node that asked."""
        if record.status != RunStatus.PAUSED:
            raise InvalidRunState(f"run {record.run_id} is {record.status}, not waiting for input")
        if self.engine.queue is None:
            outcome = self.engine.resume(record.run_id, reply=text)
            return ActionResult(record.run_id, str(outcome.status), "replied; the run went on")
        outcome = self.engine.resume(record.run_id, reply=text, max_steps=0, hand_off=True)
        return ActionResult(record.run_id, str(outcome.status), "replied; the run goes on")

    def resume(self, record: RunRecord, now: float) -> ActionResult:
        """Continue a failed run from its last checkpoint, or a stalled one."""
        if record.status == RunStatus.RUNNING:
            last = self.engine.store.last_checkpoint(record.run_id)
            if not is_stalled(record, last, now):
                raise InvalidRunState(
                    f"run {record.run_id} is running and its lease is live: someone drives "
                    "it; resume is for stalled or failed runs"
                )
        if self.engine.queue is None:
            outcome = self.engine.resume(record.run_id)
            return ActionResult(record.run_id, str(outcome.status), "resumed")
        outcome = self.engine.resume(record.run_id, max_steps=0, hand_off=True)
        message = f"resumed from step {outcome.seq}: a worker continues it"
        return ActionResult(record.run_id, str(outcome.status), message)

    def cancel(self, record: RunRecord) -> ActionResult:
        """Cancel: a paused run at once, a running one at its next node."""
        updated = self.engine.cancel(record.run_id)
        done = updated.status == RunStatus.CANCELLED
        message = "cancelled" if done else "cancel requested: it stops before its next node"
        return ActionResult(record.run_id, str(updated.status), message)

    def fork(
        self, record: RunRecord, at: int, shared: Mapping[str, Any] | None = None
    ) -> ActionResult:
        """A new run from step ``at``; ``shared`` (encoded keys -> codec JSON) edits it."""
        update: dict[Any, Any] = {}
        remove: list[Any] = []
        if shared is not None:
            update, remove = edits(self.engine, record.run_id, at, shared)
        forked = self.engine.fork(record.run_id, at, update=update, remove=remove)
        if self.engine.queue is None:
            outcome = self.engine.resume(forked.run_id)
            status = str(outcome.status)
        else:
            self._continue(forked.run_id, 0)
            status = str(forked.status)
        edited = f" with {len(update) + len(remove)} key(s) edited" if update or remove else ""
        message = f"forked {record.run_id} at step {at} as {forked.run_id}{edited}"
        return ActionResult(forked.run_id, status, message)

    def _continue(self, run_id: str, seq: int) -> None:
        assert self.engine.queue is not None
        self.engine.queue.send([continuation(run_id, seq)])


def edits(
    engine: Engine, run_id: str, at: int, shared: Mapping[str, Any]
) -> tuple[dict[Any, Any], list[Any]]:
    """``(update, remove)`` that turn step ``at``'s shared into ``shared``.

    ``shared`` holds the values the console showed (its inline values, in the codec's
    JSON, by encoded key), edited: a key whose JSON changed or is new is set, a key
    left out is removed. Offloaded values are not shown, so they are kept as they are.
    """
    if not isinstance(shared, Mapping):
        raise ConfigError("the edited shared must be a JSON object")
    state = load_state(engine.store, engine.blobs, run_id, at)
    inline = {k: v for k, v in state.values.items() if not isinstance(v, Offloaded)}
    update: dict[Any, Any] = {}
    for key, value in shared.items():
        if key in inline and codec.dump_json(inline[key]) == codec.dump_json(value):
            continue
        if isinstance(state.values.get(key), Offloaded):
            raise ConfigError(f"shared key {key!r} is offloaded at step {at}: it cannot be edited")
        update[codec.decode_key(key)] = codec.decode(value)
    remove = [codec.decode_key(key) for key in inline if key not in shared]
    return update, remove
