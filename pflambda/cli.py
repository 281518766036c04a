"""The ``pflambda`` command: run, resume, inspect and fork durable runs; draw flows; serve agents.

Exit codes are the contract scripts and tests rely on:

====  ==============================================================
0     the run completed (or the command succeeded)
1     the run failed, or the command did (the reason is on stderr)
2     bad usage or configuration: a wrong argument or variable, a
      missing table/bucket/queue, credentials AWS does not accept
3     the run is paused, waiting for input (``resume --reply``)
4     the run was cancelled
5     the run stopped but is still running (deadline, step budget, or
      another invocation owns it)
6     nothing answers at the AWS endpoint (is the emulator running?)
130   interrupted (Ctrl-C)
====  ==============================================================

Errors are one line and a hint on stderr; ``--verbose`` adds tracebacks and request logs.

Progress goes to stderr, one line per committed node; the last line on stdout of
``run``/``resume``/``fork`` is JSON: ``{"run_id", "status", "seq", "shared"}``, with
shared as readable JSON (``codec.to_display_json``: datetimes as text, sets as lists).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pflambda.errors import ConfigError
from pflambda.stores.base import RunStatus
from pflambda.terminal import report_error, setup_logging

__all__ = ["main"]

EXIT = {"completed": 0, "failed": 1, "paused": 3, "cancelled": 4, "running": 5}


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _epilog() -> str:
    start = __doc__.index("Exit codes")
    table = __doc__[start : __doc__.index("Progress goes")].replace("``", "")
    return table.strip()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"pflambda {version('pflambda')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        from pflambda import __version__

        return f"pflambda {__version__}"


class _Command(argparse.ArgumentParser):
    """A subcommand's parser: every subcommand takes ``--verbose``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "-v", "--verbose", action="store_true", help="log details: tracebacks, request logs"
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pflambda",
        description=__doc__.splitlines()[0].replace("``", ""),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Command)

    run = sub.add_parser("run", help="run a flow durably: pflambda run MODULE:FACTORY")
    run.add_argument("flow", help="the flow factory, as package.module:factory")
    run.add_argument("--shared", default="{}", help="initial shared state as a JSON object")
    run.add_argument("--run-id", help="the run's id (default: a new uuid)")
    run.add_argument("--max-steps", type=_positive, help="stop after this many nodes")

    resume = sub.add_parser("resume", help="continue a run from its latest checkpoint")
    resume.add_argument("run_id")
    resume.add_argument("--reply", help="the answer to a paused run's question")
    resume.add_argument("--max-steps", type=_positive, help="stop after this many nodes")
    resume.add_argument(
        "--allow-changed-flow", action="store_true", help="resume even if the flow changed shape"
    )
    resume.add_argument(
        "--force",
        action="store_true",
        help="take the run over from the invocation that holds its lease (if that one is gone)",
    )

    cancel = sub.add_parser("cancel", help="cancel a running or paused run")
    cancel.add_argument("run_id")

    _add_runs(sub)

    migrate = sub.add_parser(
        "migrate", help="move a run the deployed flow refuses onto it: --map OLD=NEW"
    )
    migrate.add_argument("run_id")
    migrate.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="a node id on the run's cursor and the node of the deployed flow it becomes "
        "(full ids, e.g. Outer/Ask=Outer/Review); repeat for more",
    )

    fork = sub.add_parser("fork", help="start a new run from a checkpoint of an old one")
    fork.add_argument("run_id")
    fork.add_argument("--at", type=int, required=True, help="the checkpoint's seq")
    fork.add_argument("--no-run", action="store_true", help="create the fork, do not run it")
    fork.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="set shared[KEY] in the fork (JSON, or pflambda's tagged JSON); repeatable",
    )

    graph = sub.add_parser("graph", help="print a flow as a mermaid flowchart")
    graph.add_argument("flow", help="the flow factory, as package.module:factory")

    emulator = sub.add_parser("emulator", help="a local AWS emulator with pflambda's resources")
    emulator.add_argument("--port", type=int, default=5001)
    emulator.add_argument("--host", default="127.0.0.1")

    local = sub.add_parser(
        "local", help="serve the agents in handlers/ over A2A, with an emulator and the worker"
    )
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=8080)
    local.add_argument(
        "--endpoint-url", help="use this AWS endpoint (e.g. LocalStack) instead of the emulator"
    )

    send = sub.add_parser("send", help="send a message to an A2A agent and print its answer")
    send.add_argument("url", help="the agent's URL, e.g. http://127.0.0.1:8080/agents/research/")
    send.add_argument("text", help="the message")
    send.add_argument("--task-id", help="continue this task (answer its question)")
    send.add_argument("--context-id", help="the conversation to send the message in")
    send.add_argument("--no-stream", action="store_true", help="message/send instead of SSE")
    send.add_argument("--token", help="bearer token (default: $PFLAMBDA_TOKEN)")

    init = sub.add_parser("init", help="create a new agent project: pflambda init NAME")
    init.add_argument("name", help="the agent's name: lowercase letters, digits and '-'")
    init.add_argument("--dir", help="create the project in DIR (default: ./NAME)")
    init.add_argument(
        "--pflambda",
        metavar="REQUIREMENT",
        help="the project's requirement for pflambda (default: this pflambda's wheel, "
        "source directory or version)",
    )
    return parser


def _add_runs(sub: Any) -> None:
    """``pflambda runs list|show|pinned|prune|reap|backfill``."""
    runs = sub.add_parser("runs", help="list runs, or show one run's checkpoints")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    listing = runs_sub.add_parser("list", help="runs, newest first")
    listing.add_argument("--limit", type=_positive, default=20)
    listing.add_argument("--status", choices=[s.value for s in RunStatus], help="only these")
    listing.add_argument("--agent", help="only runs started through this agent")
    listing.add_argument("--owner", help="only this principal's runs")
    listing.add_argument(
        "--stalled",
        action="store_true",
        help="only running runs whose lease lapsed (the ones the sweeper continues)",
    )
    listing.add_argument("--json", action="store_true", help="one JSON document on stdout")
    pinned = runs_sub.add_parser(
        "pinned",
        help="the code versions live (running or paused) runs are pinned to: keep those",
    )
    pinned.add_argument("--json", action="store_true", help="one JSON document on stdout")
    runs_sub.add_parser(
        "prune",
        help="delete expired runs with their checkpoints and blobs (embedded store; on AWS "
        "DynamoDB's TTL and the reaper do it)",
    )
    reap = runs_sub.add_parser(
        "reap", help="delete what a run left after its record expired (what the reaper does)"
    )
    reap.add_argument("run_id")
    backfill = runs_sub.add_parser(
        "backfill",
        help="give listing keys to runs written before the listing indexes existed "
        "(safe while live and to re-run)",
    )
    backfill.add_argument("--page-size", type=_positive, default=500, help="runs per Scan page")
    show = runs_sub.add_parser("show", help="a run's timeline, or its shared at a step")
    show.add_argument("run_id")
    show.add_argument("--at", type=int, help="print shared after this step (JSON)")
    show.add_argument("--diff", action="store_true", help="with --at: what that step changed")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pflambda`` console script."""
    args = _parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    setup_logging(verbose, level=logging.INFO if args.command == "local" else logging.WARNING)
    if os.getcwd() not in sys.path:  # flows and handlers are found from where you run it
        sys.path.insert(0, os.getcwd())
    try:
        return int(_COMMANDS[args.command](args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if verbose:
            logging.getLogger("pflambda.cli").exception("%s failed", args.command)
        return report_error(exc)


def _engine() -> Any:
    from pflambda.aws.config import Settings

    return Settings.from_env().engine()


def _progress(event: Any) -> None:
    node = event.node_id or "(input)"
    action = "" if event.action is None else f" -> {event.action!r}"
    size = f"{event.size / 1024:.1f} KB" if event.size >= 1024 else f"{event.size} B"
    kind = " snapshot" if event.snapshot else ""
    line = f"  step {event.seq:>4}  {node}{action}  {size}{kind}  {event.duration_ms:.0f} ms"
    print(line, file=sys.stderr, flush=True)


def _report(outcome: Any) -> int:
    from pflambda.engine import codec

    status = str(outcome.status)
    reason = {
        "failed": f"failed: {outcome.error}",
        "paused": f"paused for input: {outcome.prompt} "
        f"(answer with: pflambda resume {outcome.run_id} --reply ...)",
        "cancelled": "cancelled",
        "running": f"stopped ({outcome.stopped}); continue with: pflambda resume {outcome.run_id}",
    }.get(status)
    if reason:
        print(f"run {outcome.run_id} {reason}", file=sys.stderr)
    doc = {
        "run_id": outcome.run_id,
        "status": status,
        "seq": outcome.seq,
        "shared": codec.to_display_json(outcome.shared),
    }
    print(json.dumps(doc, ensure_ascii=False))
    return EXIT.get(status, 1)


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        shared = json.loads(args.shared)
    except json.JSONDecodeError as exc:
        print(f"pflambda: --shared is not valid JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(shared, dict):
        print("pflambda: --shared must be a JSON object", file=sys.stderr)
        return 2
    engine = _engine()
    print(f"run {args.flow}", file=sys.stderr)
    outcome = engine.start(
        args.flow, shared, run_id=args.run_id, max_steps=args.max_steps, on_step=_progress
    )
    return _report(outcome)


def _cmd_resume(args: argparse.Namespace) -> int:
    from pflambda.engine.runner import NO_REPLY

    engine = _engine()
    reply = NO_REPLY if args.reply is None else args.reply
    outcome = engine.resume(
        args.run_id,
        reply=reply,
        max_steps=args.max_steps,
        allow_changed_flow=args.allow_changed_flow,
        on_step=_progress,
        force=args.force,
    )
    return _report(outcome)


def _cmd_cancel(args: argparse.Namespace) -> int:
    record = _engine().cancel(args.run_id)
    state = "cancelled" if record.status == "cancelled" else "cancel requested"
    print(f"run {args.run_id}: {state}")
    return 0


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cmd_runs(args: argparse.Namespace) -> int:
    engine = _engine()
    if args.runs_command == "list":
        return _runs_list(engine, args)
    if args.runs_command == "pinned":
        return _runs_pinned(engine, args.json)
    if args.runs_command in ("prune", "reap"):
        return _runs_retention(engine, args)
    if args.runs_command == "backfill":
        return _runs_backfill(engine, args.page_size)
    if args.at is not None:
        return _runs_state(engine, args.run_id, args.at, args.diff)
    if args.diff:
        print("pflambda: --diff needs --at N (the step whose changes to show)", file=sys.stderr)
        return 2
    run = engine.store.get_run(args.run_id)
    print(f"run {run.run_id}  {run.status}  flow {run.flow}  fingerprint {run.fingerprint}")
    if run.prompt:
        print(f"waiting for input: {run.prompt}")
    if run.error:
        print(f"error: {run.error}")
    print(
        f"{'seq':>5}  {'node':<28} {'action':<14} {'bytes':>8}  {'kind':<8} "
        f"{'ms':>8} {'retries':>7}  time (UTC)"
    )
    for c in engine.store.list_checkpoints(args.run_id):
        kind = "snapshot" if c.snapshot else "delta"
        node, action = c.node_id or "-", "-" if c.action is None else c.action
        ms = "-" if c.duration_ms is None else f"{c.duration_ms:.1f}"
        print(
            f"{c.seq:>5}  {node:<28} {action:<14} {c.size:>8}  {kind:<8} "
            f"{ms:>8} {c.retries:>7}  {_when(c.created_at)}"
        )
    return 0


def _runs_retention(engine: Any, args: argparse.Namespace) -> int:
    from pflambda.aws.config import Settings
    from pflambda.local import prune

    def say(line: str) -> None:
        print(line, flush=True)

    if args.runs_command == "reap":
        return 0 if prune.reap(engine, args.run_id, say) else 1
    done = prune.prune(Settings.from_env(), engine, say)
    if done is None:
        say("nothing to do here: on AWS, DynamoDB's TTL and ReaperFunction delete expired runs")
    elif done.runs or done.shapes or done.orphans:
        say(
            f"pruned {done.runs} expired run(s), {done.shapes} old shape(s), "
            f"{done.orphans} orphaned folder(s)"
        )
    else:
        say("nothing to prune")
    return 0


def _runs_backfill(engine: Any, page_size: int) -> int:
    backfill = getattr(engine.store, "backfill_listing", None)
    if backfill is None:  # the memory store: no runs older than this process
        print(f"nothing to backfill in {type(engine.store).__name__}: no older runs")
        return 0
    done = backfill(page_size=page_size, progress=lambda so_far: print(so_far.line(), flush=True))
    print(
        f"done: {done.added} runs given listing keys ({done.raced} keyed meanwhile by "
        f"another writer, {done.gone} deleted meanwhile); running it again finds none"
    )
    return 0


def _runs_list(engine: Any, args: argparse.Namespace) -> int:
    from pflambda.console.views import RunFilter, list_page

    want = RunFilter(
        owner=args.owner,
        agent=args.agent,
        status=RunStatus(args.status) if args.status else None,
        stalled=True if args.stalled else None,
    )
    page = list_page(engine.store, want, now=engine.clock.now(), limit=args.limit)
    if args.json:
        print(json.dumps(page, ensure_ascii=False))
        return 0
    print(f"{'run id':<38} {'status':<10} {'agent':<12} {'node':<20} {'steps':>5}  created (UTC)")
    for run in page["runs"]:
        status = "stalled" if run["stalled"] else run["status"]
        agent, node = run["agent"] or "-", run["node"] or "-"
        print(
            f"{run['run_id']:<38} {status:<10} {agent:<12} {node:<20} {run['steps']:>5}  "
            f"{_when(run['created_at'])}  {run['flow']}"
        )
    if page["next_token"]:
        print(f"(more: raise --limit; {len(page['runs'])} shown)", file=sys.stderr)
    return 0


def _runs_pinned(engine: Any, as_json: bool) -> int:
    """Which versions live runs are pinned to (one record read per live run)."""
    from pflambda.engine.pins import live_pins

    pins = live_pins(engine.store)
    if as_json:
        print(json.dumps({"pinned": pins}, ensure_ascii=False))
        return 0
    if not pins:
        print("no running or paused run is pinned to a version: none needs to be kept")
        return 0
    print(f"{'pinned to':<48} {'runs':>5}  {'oldest update (UTC)':<20} example run")
    for pin in pins:
        where = pin["pinned"] or "(nowhere: not started on a published version)"
        print(f"{where:<48} {pin['runs']:>5}  {_when(pin['oldest_update']):<20} {pin['example']}")
    return 0


def _runs_state(engine: Any, run_id: str, at: int, with_diff: bool) -> int:
    from pflambda.console.snapshot import diff, load_state

    engine.store.get_run(run_id)  # RunNotFound first, with its message
    state = load_state(engine.store, engine.blobs, run_id, at)
    if not with_diff:
        print(json.dumps(state.to_json(), ensure_ascii=False, indent=2))
        return 0
    before = None if at == 0 else load_state(engine.store, engine.blobs, run_id, at - 1)
    print(json.dumps(diff(before, state), ensure_ascii=False, indent=2))
    return 0


def _settings(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=JSON`` pairs as shared keys and values (tagged JSON is decoded)."""
    from pflambda.engine import codec

    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set needs KEY=JSON, got {pair!r}")
        try:
            values[key] = codec.decode(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--set {key}: not JSON ({exc}); quote strings") from None
    return values


def _cmd_migrate(args: argparse.Namespace) -> int:
    from pflambda.engine.migrate import parse_map
    from pflambda.errors import ConfigError

    try:
        mapping = parse_map(args.map)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    record = _engine().migrate(args.run_id, mapping)
    print(f"run {record.run_id} ({record.status}) now runs on flow {record.fingerprint}")
    return 0


def _cmd_fork(args: argparse.Namespace) -> int:
    update = _settings(args.set)
    engine = _engine()
    record = engine.fork(args.run_id, args.at, update=update)
    print(f"forked {args.run_id}@{args.at} as {record.run_id}", file=sys.stderr)
    if args.no_run:
        print(json.dumps({"run_id": record.run_id, "status": str(record.status)}))
        return 0
    return _report(engine.resume(record.run_id, on_step=_progress))


def _cmd_graph(args: argparse.Namespace) -> int:
    from pflambda.engine.flowref import load_flow
    from pflambda.graph import to_mermaid

    print(to_mermaid(load_flow(args.flow)), end="")
    return 0


def _cmd_emulator(args: argparse.Namespace) -> int:
    from pflambda.local.emulator import start_emulator

    emulator = start_emulator(args.port, args.host)
    print(f"pflambda emulator on {emulator.endpoint} (DynamoDB, S3, SQS); Ctrl-C stops it.")
    print("Point pflambda at it with:")
    for key, value in emulator.env().items():
        print(f"  export {key}={value}")
    sys.stdout.flush()
    try:
        _wait_for_stop()
    finally:
        emulator.stop()
    return 0


def _cmd_local(args: argparse.Namespace) -> int:
    from pflambda.local.session import start_local

    session = start_local(args.host, args.port, endpoint_url=args.endpoint_url)
    try:
        print(session.banner(), flush=True)
        _wait_for_stop()
    finally:
        session.stop()
    return 0


def _cmd_send(args: argparse.Namespace) -> int:
    from pflambda.local.client import send

    token = args.token or os.environ.get("PFLAMBDA_TOKEN") or None
    return send(
        args.url,
        args.text,
        task_id=args.task_id,
        context_id=args.context_id,
        stream=not args.no_stream,
        token=token,
    )


def _cmd_init(args: argparse.Namespace) -> int:
    from pflambda.scaffold import scaffold

    made = scaffold(args.name, args.dir, requirement=args.pflambda)
    print(f"created {made.root}")
    for name in made.files:
        print(f"  {name}")
    print(made.next_steps())
    return 0


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = {"now": False}

    def _stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop["now"]:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass


_COMMANDS = {
    "run": _cmd_run,
    "resume": _cmd_resume,
    "cancel": _cmd_cancel,
    "runs": _cmd_runs,
    "fork": _cmd_fork,
    "migrate": _cmd_migrate,
    "graph": _cmd_graph,
    "emulator": _cmd_emulator,
    "local": _cmd_local,
    "send": _cmd_send,
    "init": _cmd_init,
}
