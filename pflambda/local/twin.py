"""The local twin of version pinning: each version of a project's code, kept and run apart.

On Lambda every deploy publishes a version, and a run the new code refuses is handed to
the version it started on (:mod:`pflambda.aws.invoke`). ``pflambda local`` does the same
with copies on disk: at start it copies the project's code (its top-level packages and
modules, but not tests, virtualenvs, hidden directories or pflambda itself) to
``.pflambda/versions/<id>/``, ``<id>`` a hash of what was copied, and runs as site
``local:<id>`` -- so the runs it starts are pinned to that copy. :class:`LocalTwin` is
the :class:`~pflambda.aws.invoke.Invoker` that runs a copy: ``python -m
pflambda.local.twin <copy>`` in a subprocess, the copy first on ``sys.path``, the same
environment (so the same store), one event in on stdin, the handler's answer out on
stdout. pflambda itself is the installed one (a Lambda version bundles its own).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pflambda import limits
from pflambda.aws.invoke import INTERNAL, PinFailed, PinGone

__all__ = ["LocalTwin", "main", "project_files", "snapshot"]

log = logging.getLogger("pflambda.local")

VERSIONS = "versions"
"""Under the project's ``.pflambda`` directory: one copy of the code per version id."""
SKIP = frozenset(
    {"tests", "test", "venv", "env", "node_modules", "build", "dist", "pflambda", "site-packages"}
)
"""Top-level directories that are not the project's deployed code."""
SITE_PREFIX = "local:"


def project_files(root: Path) -> Iterator[Path]:
    """The files of ``root``'s code: top-level ``*.py`` modules, and every file (but
    bytecode) of each top-level directory holding Python code; relative, sorted."""
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")) or entry.name in SKIP:
            continue
        if entry.is_file() and entry.suffix == ".py":
            yield entry.relative_to(root)
        elif entry.is_dir() and not entry.is_symlink() and any(entry.rglob("*.py")):
            for path in sorted(entry.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    yield path.relative_to(root)


def snapshot(root: Path, home: Path) -> str:
    """Copy ``root``'s code to ``home/versions/<id>/`` unless that copy exists; the id."""
    files = list(project_files(root))
    digest = hashlib.sha256()
    for relative in files:
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update((root / relative).read_bytes() + b"\0")
    version = digest.hexdigest()[:16]
    target = home / VERSIONS / version
    if target.is_dir():
        return version
    (home / VERSIONS).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=home / VERSIONS))
    try:
        for relative in files:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / relative, staging / relative)
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():  # another process made the same copy meanwhile: fine
            raise
    return version


class LocalTwin:
    """:class:`~pflambda.aws.invoke.Invoker` for ``local:<id>`` sites: runs the copy of
    that version in a subprocess. :meth:`close` waits for (then kills) what :meth:`send`
    started."""

    def __init__(self, home: Path, *, timeout: float = limits.API_TIMEOUT_MS / 1000 + 30) -> None:
        self.home, self.timeout = home, timeout
        self._running: set[subprocess.Popen[bytes]] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closed = False

    def directory(self, target: str) -> Path:
        """The copy of ``target``'s code; :class:`PinGone` if it was never made or deleted."""
        version = target[len(SITE_PREFIX) :] if target.startswith(SITE_PREFIX) else ""
        path = self.home / VERSIONS / version
        if not version or "/" in version or version.startswith(".") or not path.is_dir():
            raise PinGone(f"{target} cannot be invoked: no copy at {path}")
        return path

    def call(self, target: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``event`` through the handler of ``target``'s copy; its answer."""
        directory = self.directory(target)
        command = [sys.executable, "-m", "pflambda.local.twin", str(directory)]
        with subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process:
            with self._lock:
                self._running.add(process)
            try:
                out, err = process.communicate(json.dumps(event).encode(), timeout=self.timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise PinFailed(f"{target} did not answer within {self.timeout:.0f} s") from None
            finally:
                with self._lock:
                    self._running.discard(process)
        if process.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            raise PinFailed(f"{target} exited with {process.returncode}: {' | '.join(tail)}")
        answer = json.loads(out)
        if not isinstance(answer, dict):
            raise PinFailed(f"{target} answered {out[:200]!r}, not an object")
        return answer

    def send(self, target: str, event: Mapping[str, Any]) -> None:
        """Run ``event`` in ``target``'s copy in the background (as an ``Event`` invoke)."""
        self.directory(target)  # a missing copy is PinGone now, as Lambda says at once

        def run() -> None:
            try:
                self.call(target, event)
            except Exception:
                log.exception("the local twin %s failed", target)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"pflambda-twin-{target}", daemon=True)
        with self._lock:
            if self._closed:
                raise PinGone(f"{target} cannot be invoked: the local twin is stopped")
            self._threads.add(thread)
        thread.start()

    def close(self, wait: float = 5.0) -> None:
        """Stop taking work; wait up to ``wait`` s for running copies, then kill them."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for thread in threads:
            thread.join(wait)
        with self._lock:
            running = list(self._running)
        for process in running:
            process.kill()
        for thread in threads:
            thread.join(wait)


def _agent_name(event: Mapping[str, Any]) -> str | None:
    body = event.get(INTERNAL)
    if isinstance(body, Mapping):
        return body.get("agent") if isinstance(body.get("agent"), str) else None
    params = event.get("pathParameters")
    if isinstance(params, Mapping) and isinstance(params.get("name"), str):
        return str(params["name"])
    path = str(event.get("path") or event.get("rawPath") or "")
    _, _, rest = path.partition("/agents/")
    return rest.split("/", 1)[0] or None


def main(argv: list[str] | None = None) -> int:
    """``python -m pflambda.local.twin <copy>``: one event on stdin, the answer on stdout."""
    from pflambda.aws import invoke
    from pflambda.local.poller import LocalContext
    from pflambda.local.server import API_TIMEOUT_SECONDS, discover_agents

    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]).resolve()
    sys.path.insert(0, str(directory))
    os.environ["PFLAMBDA_SITE"] = SITE_PREFIX + directory.name
    invoke.install(LocalTwin(directory.parent.parent))
    event = json.loads(sys.stdin.buffer.read())
    answer_to = sys.stdout
    sys.stdout = sys.stderr  # the flow's prints must not mix with the answer
    agents = discover_agents("handlers")
    name = _agent_name(event)
    agent: Any = agents.get(name or "")
    if agent is None:
        print(f"pflambda twin: no agent {name!r} in {directory}", file=sys.stderr)
        return 2
    answer = agent.api_handler(event, LocalContext(API_TIMEOUT_SECONDS, f"pflambda-{name}"))
    answer_to.write(json.dumps(answer))
    answer_to.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
