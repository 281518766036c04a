"""Fan-out: a batch node's items spread over SQS workers, and brought back in order.

Which nodes fan out (:func:`wants_fan_out`): a batch node (``BatchNode``,
``AsyncBatchNode``, ``AsyncParallelBatchNode``) with ``fan_out = True`` always does;
``fan_out = False`` never does; with no ``fan_out`` attribute, it does when it has
at least the engine's ``fan_out_threshold`` items (``None``: never -- the default).
Without a queue nothing fans out: items run in-process, as in PocketFlow.

The protocol, each step of which is safe to repeat:

1. The runner commits the checkpoint that ends with ``prep`` (the cursor marks the
   node as waiting), stores a fan-out header, and sends the items in chunks -- up to
   ``items_per_message`` items and ~200 KB a message, 10 messages per batch call;
   an item too large for a message goes to the blob store by reference.
2. A worker runs ``exec`` for each item of a chunk with the node's retries and
   ``exec_fallback`` (``asyncio.gather`` for parallel async nodes) and records the
   chunk's results and the done-count in one atomic write; a duplicate delivery
   records nothing. An item that still raises fails the run, naming the item.
3. The worker that completes the last chunk claims the fan-in and enqueues the
   continuation; the continuation runs ``post`` with the results in item order.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pflambda import limits, runcontext
from pflambda.engine import codec, compat
from pflambda.engine.flowref import load_flow
from pflambda.engine.stepper import kinds
from pflambda.errors import (
    FingerprintMismatch,
    InputRequired,
    PflambdaError,
    PinnedElsewhere,
    RetryableError,
)
from pflambda.graph import Graph, describe
from pflambda.stores.base import FanOut, FanOutNotFound, RunRecord, RunStatus

if TYPE_CHECKING:
    from pflambda.engine.runner import Engine

__all__ = ["FanInNotReady", "dispatch", "gather", "run_chunk", "wants_fan_out"]

log = logging.getLogger("pflambda.fanout")

MESSAGE_BUDGET = 200 * 1024
"""Bytes of items per message (SQS allows 256 KiB; the rest is envelope and headroom)."""
_CORE = frozenset({"pflambda.core", "pocketflow"})


class FanInNotReady(PflambdaError):
    """The fan-in ran before every chunk was recorded (an early continuation)."""


def wants_fan_out(node: Any, items: int, threshold: int | None) -> bool:
    """The policy (see the module docstring)."""
    if "BatchNode" not in kinds(type(node)):
        return False
    choice = getattr(node, "fan_out", None)
    if choice is not None:
        return bool(choice)
    return threshold is not None and items >= threshold


# -- the runner's side ----------------------------------------------------------------


def dispatch(
    engine: Engine, record: RunRecord, seq: int, *, node_id: str, params: Any, items: list[Any]
) -> FanOut:
    """Send every chunk of ``items``, then store the fan-out header.

    The header comes last, so its presence means every message went out: a run resumed
    after a crash re-sends its items only when there is no header (workers that get a
    message before its header is written fail it, and SQS delivers it again).
    """
    chunks = _plan(engine, record.run_id, items)
    encoded_params = codec.encode(params, path="params")
    head = {"kind": "fanout", "run_id": record.run_id, "seq": seq, "node": node_id}
    bodies = [
        json.dumps({**head, "chunk": k, "params": encoded_params, "items": chunk})
        for k, chunk in enumerate(chunks)
    ]
    assert engine.queue is not None
    engine.queue.send(bodies)
    header = engine.store.create_fanout(
        FanOut(
            run_id=record.run_id,
            seq=seq,
            node_id=node_id,
            chunks=len(chunks),
            items=len(items),
            created_at=engine.clock.now(),
        )
    )
    log.info(
        "run %s: %d items of %s fanned out in %d messages",
        record.run_id,
        len(items),
        node_id,
        len(bodies),
    )
    return header


def _plan(engine: Engine, run_id: str, items: list[Any]) -> list[list[dict[str, Any]]]:
    """Items as ``{"i": index, "v": value}`` (or ``"blob": key``), grouped into chunks."""
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for index, item in enumerate(items):
        entry: dict[str, Any] = {"i": index, "v": codec.encode(item, path=f"items[{index}]")}
        text = codec.dump_json(entry["v"])
        if len(text.encode()) > MESSAGE_BUDGET // 2:
            entry = {"i": index, "blob": _put_blob(engine, run_id, text.encode())}
            text = entry["blob"]
        if current and (
            len(current) >= engine.items_per_message or size + len(text) > MESSAGE_BUDGET
        ):
            chunks.append(current)
            current, size = [], 0
        current.append(entry)
        size += len(text)
    if current:
        chunks.append(current)
    return chunks


def _put_blob(engine: Engine, run_id: str, data: bytes) -> str:
    key = f"runs/{run_id}/{hashlib.sha256(data).hexdigest()[:40]}"
    engine.blobs.put(key, data)
    return key


async def gather(engine: Engine, run_id: str, seq: int) -> list[Any]:
    """The results of fan-out ``seq``, in item order; :class:`FanInNotReady` if early."""
    header = engine.store.get_fanout(run_id, seq)
    if header.done < header.chunks:
        raise FanInNotReady(f"run {run_id}: {header.done} of {header.chunks} chunks done")
    results: dict[int, Any] = {}
    for _, stored in engine.store.load_chunks(run_id, seq):
        body = engine.blobs.get(stored[1:].decode()) if stored[:1] == b"@" else stored
        for index, value in json.loads(body):
            results[index] = codec.decode(value)
    if len(results) != header.items:
        raise FanInNotReady(f"run {run_id}: {len(results)} of {header.items} results recorded")
    return [results[i] for i in range(header.items)]


# -- the worker's side ----------------------------------------------------------------


@dataclass
class _Graphs:
    """Flow graphs by reference, built once per warm container."""

    built: dict[str, Graph]

    def get(self, ref: str) -> Graph:
        graph = self.built.get(ref)
        if graph is None:
            graph = self.built[ref] = describe(load_flow(ref))
        return graph


_GRAPHS = _Graphs({})


def run_chunk(
    engine: Engine, message: dict[str, Any], receive_count: int = 1, *, pinned: bool = True
) -> bool:
    """Run one chunk's items and record them; True if this call completed the fan-out.

    A chunk whose node the deployed flow no longer has (same class) raises
    :class:`~pflambda.errors.PinnedElsewhere` when the run is pinned to other code and
    ``pinned`` (the caller may hand it there); otherwise it fails the run, saying why."""
    run_id, seq, chunk = message["run_id"], message["seq"], message["chunk"]
    record = engine.store.get_run(run_id)
    if record.status != RunStatus.RUNNING:
        log.info("run %s is %s: chunk %d dropped", run_id, record.status, chunk)
        return False
    if record.cancel_requested:  # nobody drives a run while it waits for its items
        _settle(engine, record, RunStatus.CANCELLED, None)
        return False
    items = message["items"]
    if receive_count > engine.max_attempts:
        first, last = items[0]["i"], items[-1]["i"]
        reason = (
            f"items {first}-{last} of node {message['node']!r} failed {receive_count - 1} times"
        )
        _settle(engine, record, RunStatus.FAILED, reason)
        return False
    graph = _GRAPHS.get(record.flow)
    try:
        compat.check_node(engine.blobs, record, graph, message["node"], site=engine.site)
    except FingerprintMismatch as exc:
        if pinned and isinstance(exc, PinnedElsewhere):
            raise
        _settle(engine, record, RunStatus.FAILED, str(exc))
        return False
    node = copy.copy(graph.node(message["node"]))
    node.set_params(codec.decode(message["params"]))
    values = [_item_value(engine, entry) for entry in items]
    run = runcontext.RunContext(
        run_id=run_id,
        step=seq,
        node_id=message["node"],
        flow=record.flow,
        delivery=receive_count,
        _node=node,
        **runcontext.a2a_ids(run_id, record.context_id, record.attrs),
    )
    try:
        results = _execute(node, values, [replace(run, item=entry["i"]) for entry in items])
    except (Exception, InputRequired) as exc:
        index = items[0]["i"] if len(items) == 1 else f"{items[0]['i']}-{items[-1]['i']}"
        reason = f"node {message['node']!r} item {index} raised {type(exc).__name__}: {exc}"
        if isinstance(exc, InputRequired):
            reason += " (a fanned-out item cannot pause for input: ask in prep or post)"
        _settle(engine, record, RunStatus.FAILED, reason)
        return False
    body = json.dumps(
        [
            [e["i"], codec.encode(r, path=f"result[{e['i']}]")]
            for e, r in zip(items, results, strict=True)
        ]
    ).encode()
    if len(body) > limits.CHECKPOINT_BODY_BUDGET:
        body = b"@" + _put_blob(engine, run_id, body).encode()
    recorded = _record(engine, record, seq, chunk, body)
    return _maybe_continue(engine, run_id, seq, recorded)


def _record(engine: Engine, record: RunRecord, seq: int, chunk: int, body: bytes) -> bool:
    """Record a chunk, retrying briefly when workers collide on the header (the results
    are already computed; redelivery would run the items again)."""
    run_id = record.run_id
    for attempt in range(1, 6):
        try:
            return engine.store.record_chunk(run_id, seq, chunk, body)
        except FanOutNotFound:
            raise RetryableError(f"run {run_id}: fan-out {seq} has no header yet") from None
        except RetryableError:
            if attempt == 5:
                raise
            engine.clock.sleep(random.uniform(0.02, 0.1) * attempt)
    raise AssertionError("unreachable")


def _maybe_continue(engine: Engine, run_id: str, seq: int, recorded: bool) -> bool:
    """The last chunk in: claim the fan-in and enqueue the continuation, once."""
    from pflambda.engine.runner import continuation

    header = engine.store.get_fanout(run_id, seq)
    if header.done < header.chunks:
        return False
    claimed = engine.store.claim_fanin(run_id, seq)
    if not claimed and recorded:
        return False
    if not claimed:
        # a redelivery after the fan-in was claimed: the claimer may have died before
        # sending, so send again while the run still waits (the fan-in is idempotent)
        latest = max(
            (c.seq for c in engine.store.list_checkpoints(run_id, after=seq - 1)), default=seq
        )
        if latest != seq:
            return False
    assert engine.queue is not None
    engine.queue.send([continuation(run_id, seq)])
    return claimed


def _item_value(engine: Engine, entry: dict[str, Any]) -> Any:
    if "blob" in entry:
        return codec.loads(engine.blobs.get(entry["blob"]))
    return codec.decode(entry["v"])


def _execute(node: Any, values: list[Any], runs: list[runcontext.RunContext]) -> list[Any]:
    """Each item's ``exec`` with the node's retries and fallback (not ``prep``/``post``),
    with :func:`pflambda.current_run` naming the item (``runs``, one per value)."""
    per_item = _per_item_exec(type(node))
    if per_item is None:
        raise TypeError(f"{type(node).__name__} is not a batch node")
    is_async, exec_one = per_item
    if not is_async:
        results = []
        for value, run in zip(values, runs, strict=True):
            with runcontext.running(run):
                results.append(exec_one(node, value))
        return results

    async def one(value: Any, run: runcontext.RunContext) -> Any:
        with runcontext.running(run):  # each gathered task has a context of its own
            return await exec_one(node, value)

    async def run_all() -> list[Any]:
        pairs = zip(values, runs, strict=True)
        if "AsyncParallelBatchNode" in kinds(type(node)):
            return list(await asyncio.gather(*(one(v, r) for v, r in pairs)))
        return [await one(v, r) for v, r in pairs]

    return asyncio.run(run_all())


def _per_item_exec(cls: type) -> tuple[bool, Any] | None:
    """``AsyncNode._exec`` or ``Node._exec``: one item's exec with retries and fallback."""
    for base in cls.__mro__:
        if base.__module__ in _CORE and base.__name__ in ("AsyncNode", "Node"):
            return base.__name__ == "AsyncNode", base.__dict__["_exec"]
    return None


def _settle(engine: Engine, record: RunRecord, status: RunStatus, reason: str | None) -> None:
    """End a waiting run (failed or cancelled); another worker may have done it first."""
    from pflambda.errors import InvalidRunState

    if reason:
        log.error("run %s failed: %s", record.run_id, reason)
    with contextlib.suppress(InvalidRunState):
        engine.set_status(record, status, expect={RunStatus.RUNNING}, error=reason)
