"""A2A load test on loopback: pflambda's local server against a2a-sdk's own server.

Sends N blocking A2A JSON-RPC sends (``SendMessage`` with ``A2A-Version: 1.0`` by
default, or the 0.3 ``message/send`` with ``--protocol 0.3``; both servers accept both)
of a short text, C at a time, to each server in turn, and prints one table:

- ``pflambda echo``: ``bench/echo_agent.py`` (one node: ``answer = "echo: " + question``)
  served by ``pflambda local``'s own ``start_local`` (embedded moto emulator, SQS
  poller, threaded HTTP server) in a subprocess. ``start_local`` serves the agents of a
  package, so the script writes a two-module package to a temporary directory that
  re-exports ``bench.echo_agent.agent`` and ``handlers.research.agent``.
- ``pflambda research``: the real research agent (decide -> search -> ... -> answer)
  with the offline model (``PFLAMBDA_LLM=offline``), from the same server, for a
  quarter of N by default (it is about 2.5 times slower; ``--research-requests``).
- ``a2a-sdk echo``: a2a-sdk's ``DefaultRequestHandler`` with an ``InMemoryTaskStore``
  and an echo ``AgentExecutor`` (task, artifact, completed status, as ``TaskUpdater``
  does), its JSON-RPC Starlette routes served by uvicorn (no access log), in a
  subprocess (this file, run with ``--serve-sdk PORT``).

Every response is checked: a completed task whose artifact text is ``echo: <text>``
(for research: any non-empty answer). Anything else -- HTTP status, JSON-RPC error,
state, text, timeout -- counts as an error. 50 warm-up requests per row are not
counted (their errors are listed, though). The client (one ``httpx.AsyncClient``
limited to C connections, HTTP/1.1 keep-alive, opened during the warm-up) is the same
for every row, and runs on the same machine as the servers.

Read the comparison fairly: the servers do not store the same thing.

- pflambda makes every task a durable run: a run record in DynamoDB (moto, over HTTP
  to the emulator in the same process) with a checkpoint after each node, the status
  and the artifacts, so the task survives a restart and the SQS worker can continue
  it. The script counts the AWS requests the server makes (botocore's
  ``Endpoint.make_request``, by operation) and prints them per timed task.
- ``pflambda echo (memory)``: the same server and echo agent on the memory store (no
  emulator, no AWS requests): what pflambda's own code costs per request.
- the sdk keeps each task in a Python dict in memory (``InMemoryTaskStore``): lost on
  restart, and not shared between processes.

Neither server writes a log line per request (``pflambda local`` on the command
line does, at INFO). Each server runs alone while it is measured. Under the table, the
CPU time per timed request of the server's process (read from ``/proc``; for pflambda
it includes the embedded emulator) and of this client.

Run (from the repo root; about two to three minutes on 2 cores)::

    .venv/bin/python bench/a2a_load.py                    # N=2000, 16 concurrent
    .venv/bin/python bench/a2a_load.py -n 500 -c 4 --protocol 0.3 --research-requests 0

Concurrent sends, before and after (2026-11-30, 2 shared CPUs under other load)::

    .venv/bin/python bench/a2a_load.py -n 200 -c 8 --research-requests 0   # before
    pflambda echo   200 requests, 8 concurrent: 78 errors (-32603), 8.5 req/s, p50 761 ms
    .venv/bin/python bench/a2a_load.py -n 400 -c 8 --research-requests 0   # after
    pflambda echo   400 requests, 8 concurrent:  0 errors,          3.1 req/s, p50 2563 ms
    ... and with item-by-item rollback (pflambda/local/moto_tx.py), same command:
    pflambda echo   400 requests, 8 concurrent:  0 errors,         60.2 req/s, p50  127 ms

"Before" is main at 17:22 (c7fb849): moto deep-copies a table before each transaction and
another thread's write during the copy made it answer HTTP 500 (a retryable error, so
-32603 "try again"). "After": the emulator admits one request at a time
(``pflambda/local/moto_server.py``); every send is answered. moto's copy of the whole
table was then paid one transaction after another (163 ms of server CPU per send at a few
hundred runs, growing with the table); the emulator now rolls a refused transaction back
item by item instead (15 ms per send). See docs/a2a.md.

Everything listens on 127.0.0.1 only. A row that takes more than ``--time-limit``
seconds (default 300) aborts the run with a message; servers are stopped with SIGTERM
(then killed) in any case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pflambda.local.emulator import free_port

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
AGENTS_PACKAGE = "pflambda_bench_agents"
START_TIMEOUT = 90.0
"""Seconds a server may take to answer its readiness probe."""
REQUEST_TIMEOUT = 60.0
"""Seconds one request may take before it counts as an error."""

PFLAMBDA_SERVER = f"""
import collections, json, os, signal, sys, threading
import botocore.endpoint
sys.path.insert(0, sys.argv[3])  # the repo: bench.echo_agent, handlers, flows

counts, lock = collections.Counter(), threading.Lock()
send = botocore.endpoint.Endpoint.make_request

def counted(self, operation, request):  # every AWS request this process makes
    with lock:
        counts[operation.service_model.service_name + " " + operation.name] += 1
    return send(self, operation, request)

botocore.endpoint.Endpoint.make_request = counted
if sys.argv[5] == "memory":
    os.environ["PFLAMBDA_STORE"] = "memory"
    from pflambda.aws.config import Settings
    from pflambda.aws.worker import handler as worker
    from pflambda.local.server import discover_agents, serve

    agents = discover_agents({AGENTS_PACKAGE!r}, sys.argv[1])
    server = serve(agents, worker, Settings.from_env().ports.queue, {HOST!r}, int(sys.argv[2]))
    stop_all = server.stop
else:
    from pflambda.local.session import start_local

    session = start_local({HOST!r}, int(sys.argv[2]), package={AGENTS_PACKAGE!r}, root=sys.argv[1])
    print(session.banner(), flush=True)
    stop_all = session.stop
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
try:
    while not stop.wait(0.1):
        with lock:
            snapshot = json.dumps(counts)
        with open(sys.argv[4] + ".tmp", "w") as out:
            out.write(snapshot)
        os.replace(sys.argv[4] + ".tmp", sys.argv[4])
finally:
    stop_all()
"""
"""What ``pflambda local`` does (``start_local``, then wait), for another package; or the
same server on the memory store (no emulator). Writes its AWS request counts to a file
every 0.1 s (``botocore``'s ``Endpoint.make_request``, counted by service and operation)."""

AGENT_MODULES = {
    "echo.py": "from bench.echo_agent import agent\n",
    "research.py": "from handlers.research import agent\n",
}


# -- the a2a-sdk server ---------------------------------------------------------------


def serve_sdk(port: int) -> None:
    """a2a-sdk's JSON-RPC app with an echo executor and in-memory tasks, on ``port``."""
    import uvicorn
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types.a2a_pb2 import (
        AgentCapabilities,
        AgentCard,
        AgentInterface,
        AgentSkill,
        Part,
        Task,
        TaskState,
        TaskStatus,
    )
    from starlette.applications import Starlette

    class EchoExecutor(AgentExecutor):
        """Submits a task, adds an ``echo: <text>`` artifact, completes with that text."""

        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            task_id, context_id = str(context.task_id), str(context.context_id)
            if context.current_task is None:
                task = Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                )
                if context.message is not None:
                    task.history.append(context.message)
                await event_queue.enqueue_event(task)
            updater = TaskUpdater(event_queue, task_id, context_id)
            parts = [Part(text="echo: " + context.get_user_input())]
            await updater.add_artifact(parts, name="answer")
            await updater.complete(updater.new_agent_message(parts))

        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            raise NotImplementedError

    url = f"http://{HOST}:{port}/"
    card = AgentCard(
        name="echo",
        description="Echoes the question back (a load-test agent; no model).",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3"),
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="Echoes", tags=["echo"])],
    )
    handler = DefaultRequestHandler(EchoExecutor(), InMemoryTaskStore(), card)
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True),
    ]
    uvicorn.run(
        Starlette(routes=routes), host=HOST, port=port, log_level="warning", access_log=False
    )


# -- servers as subprocesses ----------------------------------------------------------


@dataclass
class Server:
    """A server subprocess and what to probe to know it is up."""

    name: str
    process: subprocess.Popen[bytes]
    probe: str
    log: Path

    def wait_ready(self) -> None:
        """Until ``probe`` answers 200; a clear error if the process dies or is slow."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.process.returncode}):\n{self.tail()}"
                )
            try:
                if httpx.get(self.probe, timeout=2.0, trust_env=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {self.probe} in {START_TIMEOUT:.0f} s")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                print(f"  ({self.name} ignored SIGTERM for 15 s; killing it)", flush=True)
                self.process.kill()
                self.process.wait(5)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running(name: str, argv: list[str], probe: str, workdir: Path, **env: str) -> Iterator[int]:
    """Start ``argv`` (cwd: the repo), wait until ``probe`` is 200, stop it on exit."""
    log = workdir / f"{name.replace(' ', '-')}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_PROXY": HOST, "no_proxy": HOST, **env},
        )
    server = Server(name, process, probe, log)
    try:
        server.wait_ready()
        yield process.pid
    finally:
        server.stop()


@contextmanager
def pflambda_server(port: int, workdir: Path, store: str = "dynamodb") -> Iterator[int]:
    """``start_local`` serving echo and research (or the same on the memory store), in a
    subprocess that counts its AWS requests into ``workdir/aws-<store>.json``."""
    package = workdir / "agents" / AGENTS_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    for filename, source in AGENT_MODULES.items():
        (package / filename).write_text(source)
    counts = str(workdir / f"aws-{store}.json")
    argv = [sys.executable, "-c", PFLAMBDA_SERVER, str(package.parent), str(port), str(ROOT)]
    argv += [counts, store]
    probe = f"http://{HOST}:{port}/"
    with running(f"pflambda local {store}", argv, probe, workdir, PFLAMBDA_LLM="offline") as pid:
        yield pid


def aws_counts(workdir: Path, store: str) -> Counter[str]:
    """The server's AWS requests so far (after its next 0.1 s snapshot)."""
    time.sleep(0.3)
    path = workdir / f"aws-{store}.json"
    return Counter(json.loads(path.read_text())) if path.exists() else Counter()


@contextmanager
def sdk_server(port: int, workdir: Path) -> Iterator[int]:
    """:func:`serve_sdk` in a subprocess."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-sdk", str(port)]
    probe = f"http://{HOST}:{port}/.well-known/agent-card.json"
    with running("a2a-sdk", argv, probe, workdir) as pid:
        yield pid


# -- the load -------------------------------------------------------------------------


def request(protocol: str, n: int, text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A blocking send of ``text``: the JSON-RPC body and its headers."""
    headers = {"Content-Type": "application/json"}
    if protocol == "1.0":
        headers["A2A-Version"] = "1.0"
        message = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}
        params: dict[str, Any] = {"message": message}
        method = "SendMessage"
    else:
        message = {
            "kind": "message",
            "messageId": str(uuid.uuid4()),
            "role": "user",
            "parts": [{"kind": "text", "text": text}],
        }
        params = {"message": message, "configuration": {"blocking": True}}
        method = "message/send"
    return {"jsonrpc": "2.0", "id": n, "method": method, "params": params}, headers


def problem(doc: Any, n: int, expect: Callable[[str], bool]) -> str | None:
    """Why ``doc`` is not request ``n``'s completed task with the expected answer, if so."""
    if not isinstance(doc, dict) or doc.get("id") != n:
        return f"not the response to request {n}: {str(doc)[:200]}"
    if "error" in doc:
        return f"JSON-RPC error {doc['error']}"
    result = doc.get("result")
    task = result.get("task", result) if isinstance(result, dict) else None  # 1.0 wraps it
    if not isinstance(task, dict):
        return f"no task in {str(result)[:200]}"
    state = task.get("status", {}).get("state")
    if state not in ("TASK_STATE_COMPLETED", "completed"):
        return f"task state {state}"
    texts = [
        part["text"]
        for artifact in task.get("artifacts", [])
        for part in artifact.get("parts", [])
        if isinstance(part.get("text"), str)
    ]
    answer = "".join(texts)
    return None if expect(answer) else f"unexpected answer {answer[:200]!r}"


@dataclass
class Result:
    """One row of the table."""

    server: str
    requests: int
    concurrency: int
    seconds: float = 0.0
    server_cpu: float | None = None
    client_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warmup: Result | None = None
    aws: Counter[str] | None = None
    """AWS requests the server made during the timed requests, by service and operation."""


async def load(
    client: httpx.AsyncClient,
    url: str,
    numbers: range,
    result: Result,
    *,
    protocol: str,
    concurrency: int,
    echo: bool,
) -> None:
    """Send one request per number, ``concurrency`` at a time; record into ``result``."""
    pending = iter(numbers)

    async def worker() -> None:
        for n in pending:
            text = f"ping {n}"
            body, headers = request(protocol, n, text)

            def expect(answer: str, want: str = "echo: " + text) -> bool:
                return answer == want if echo else bool(answer.strip())

            start = time.perf_counter()
            why: str | None
            try:
                response = await client.post(url, json=body, headers=headers)
                if response.status_code != 200:
                    why = f"HTTP {response.status_code}: {response.text[:200]}"
                else:
                    why = problem(response.json(), n, expect)
            except Exception as exc:
                why = f"{type(exc).__name__}: {str(exc) or repr(exc.__cause__)}"
            result.latencies.append(time.perf_counter() - start)
            if why is not None:
                result.errors.append(why)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) process ``pid`` has used, from ``/proc`` (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Aborted(Exception):
    """A row took longer than the time limit."""


def measure(
    server: str,
    url: str,
    pid: int,
    args: argparse.Namespace,
    requests: int,
    *,
    echo: bool,
    aws: Callable[[], Counter[str]] | None = None,
) -> Result:
    """Warm up, then time ``requests`` sends to ``url``; abort past ``args.time_limit``.

    One client for both phases: its connections are opened during the warm-up, so the
    timed phase measures requests on established keep-alive connections.
    """
    result = Result(server, requests, args.concurrency)
    result.warmup = warmup = Result(server, args.warmup, args.concurrency)
    print(f"{server}: {args.warmup} warm-up + {requests} requests ...", flush=True)
    c = args.concurrency
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)

    async def run() -> None:
        client = httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT, trust_env=False)
        async with client:
            warm = range(1, args.warmup + 1)
            await load(client, url, warm, warmup, protocol=args.protocol, concurrency=c, echo=echo)
            timed = range(args.warmup + 1, args.warmup + 1 + requests)
            before = aws() if aws is not None else None
            server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
            start = time.perf_counter()
            await load(client, url, timed, result, protocol=args.protocol, concurrency=c, echo=echo)
            result.seconds = time.perf_counter() - start
            result.client_cpu = time.process_time() - client_cpu
            after = cpu_seconds(pid)
            if server_cpu is not None and after is not None:
                result.server_cpu = after - server_cpu
            if aws is not None and before is not None:
                result.aws = aws() - before

    async def bounded() -> None:
        try:
            await asyncio.wait_for(run(), args.time_limit)
        except TimeoutError:
            done = len(result.latencies)
            raise Aborted(
                f"ABORTED: {server} exceeded the {args.time_limit:.0f} s limit "
                f"({done} of {requests} timed requests done)"
            ) from None

    asyncio.run(bounded())
    return result


# -- the table ------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


HEADER = (
    "server",
    "requests",
    "concurrency",
    "errors",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
)


def row(result: Result) -> tuple[str, ...]:
    values = sorted(result.latencies)
    ms = [f"{percentile(values, p) * 1000:.1f}" for p in (50, 90, 99, 100)]
    rate = f"{len(values) / result.seconds:.1f}" if result.seconds else "-"
    counts = (str(len(values)), str(result.concurrency), str(len(result.errors)), rate)
    return (result.server, *counts, *ms)


def table(results: list[Result]) -> str:
    rows = [HEADER, *(row(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


FOOTER = """\
What each server does per task (read the numbers with this in mind):
  pflambda   a durable run: a run record in DynamoDB (moto, over HTTP, in the server's
             process) with a checkpoint after every node, its status and artifacts;
             it survives a restart and the SQS worker can continue it (AWS requests
             per task: measured above; a failed send counts what it made). The
             (memory) row: the same server on the memory store, no emulator -- the
             server's own cost. Served by ThreadingHTTPServer (a thread per connection).
  a2a-sdk    the task in a Python dict (InMemoryTaskStore): gone on restart, one
             process only. DefaultRequestHandler + JSON-RPC Starlette routes, uvicorn
             (asyncio, h11, no access log).
Same client for every row: one httpx.AsyncClient, keep-alive, at most {c} connections,
on the same machine ({cpus} CPUs) as the server; latency is send-to-parsed-response."""


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(f"A2A blocking sends on loopback ({protocol_name(args.protocol)}), warm-up {args.warmup}")
    print(table(results))
    for result in results:
        for why in sorted(set(result.errors))[:5]:
            print(f"  {result.server} error (x{result.errors.count(why)}): {why}")
        warm = result.warmup.errors if result.warmup is not None else []
        for why in sorted(set(warm))[:5]:
            print(f"  {result.server} warm-up error, not counted (x{warm.count(why)}): {why}")
    print()
    print("CPU per timed request, ms: the server's process | this client")
    for result in results:
        done = len(result.latencies) or 1
        server = "-" if result.server_cpu is None else f"{result.server_cpu * 1000 / done:.1f}"
        client = f"{result.client_cpu * 1000 / done:.1f}"
        moto = "pflambda" in result.server and "memory" not in result.server
        where = "  (includes the embedded moto emulator)" if moto else ""
        print(f"  {result.server:<18} {server:>6} | {client:>5}{where}")
    print()
    print("AWS requests per timed task, by operation (the SQS poller's ReceiveMessage aside)")
    for result in results:
        if result.aws is None:
            continue
        done = len(result.latencies) or 1
        calls = {k: v for k, v in sorted(result.aws.items()) if not k.endswith("ReceiveMessage")}
        total = sum(calls.values()) / done
        detail = ", ".join(f"{k} {v / done:.2f}" for k, v in calls.items()) or "none"
        print(f"  {result.server:<26} {total:5.2f}  ({detail})")
    print()
    print(FOOTER.format(c=args.concurrency, cpus=os.cpu_count()))


def protocol_name(protocol: str) -> str:
    return "1.0 SendMessage" if protocol == "1.0" else "0.3 message/send"


# -- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", "--requests", type=int, default=2000, help="per row (default 2000)")
    parser.add_argument("-c", "--concurrency", type=int, default=16, help="default 16")
    parser.add_argument("--warmup", type=int, default=50, help="uncounted, per row (default 50)")
    parser.add_argument(
        "--research-requests",
        type=int,
        default=None,
        help="requests for the research row (default: a quarter of --requests; 0 skips it)",
    )
    parser.add_argument("--protocol", choices=("1.0", "0.3"), default="1.0")
    parser.add_argument(
        "--time-limit", type=float, default=300.0, help="seconds per row before aborting"
    )
    parser.add_argument("--serve-sdk", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--requests and --concurrency must be positive, --warmup not negative")
    if args.research_requests is None:
        args.research_requests = max(1, args.requests // 4)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_sdk is not None:
        serve_sdk(args.serve_sdk)
        return 0
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="a2a-load-") as tmp:
            workdir = Path(tmp)
            port = free_port(HOST)
            print(f"starting pflambda local on {HOST}:{port} ...", flush=True)
            with pflambda_server(port, workdir) as pid:
                base = f"http://{HOST}:{port}/agents"
                count = partial(aws_counts, workdir, "dynamodb")
                echo = measure(
                    "pflambda echo", f"{base}/echo/", pid, args, args.requests, echo=True, aws=count
                )
                results.append(echo)
                if args.research_requests > 0:
                    research = measure(
                        "pflambda research",
                        f"{base}/research/",
                        pid,
                        args,
                        args.research_requests,
                        echo=False,
                        aws=count,
                    )
                    results.append(research)
            port = free_port(HOST)
            print(f"starting pflambda on the memory store on {HOST}:{port} ...", flush=True)
            with pflambda_server(port, workdir, "memory") as pid:
                url = f"http://{HOST}:{port}/agents/echo/"
                count = partial(aws_counts, workdir, "memory")
                memory = measure(
                    "pflambda echo (memory)", url, pid, args, args.requests, echo=True, aws=count
                )
                results.append(memory)
            port = free_port(HOST)
            print(f"starting a2a-sdk on {HOST}:{port} ...", flush=True)
            with sdk_server(port, workdir) as pid:
                url = f"http://{HOST}:{port}/"
                results.append(measure("a2a-sdk echo", url, pid, args, args.requests, echo=True))
    except (Aborted, RuntimeError) as exc:
        print(f"\n{exc}", file=sys.stderr)
        if results:
            report(results, args)
        return 1
    report(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
