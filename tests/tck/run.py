"""``make tck``: the official A2A TCK against ``pflambda local`` serving the conformance agent.

Unpacks the TCK snapshots (``A2A_TCK_SNAPSHOTS``, default: the first of
``../shared/tools/a2a-tck``, ``../../shared/tools/a2a-tck``, ``/work/shared/tools/a2a-tck``
that exists) into ``.tck/`` with a venv each, starts ``pflambda local`` on a free port
from ``tests/tck/`` (its ``handlers`` package holds the conformance agent), and runs:

- TCK 1.0 (branch 1.0-dev) over JSON-RPC and HTTP+JSON: ``run_tck.py --sut-host``;
- TCK 0.3 (0.3.0.beta4), categories ``mandatory`` and ``capabilities``.

Prints one line per suite (passed, failed, skipped, score) and exits 1 when TCK 1.0
scores under 97 % or 0.3 mandatory has a failure. Reports stay under ``.tck/``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".tck"
PROJECT = Path(__file__).resolve().parent
SNAPSHOTS = {
    "1.0": ("a2a-tck-1.0-dev.tar.gz", "a2a-tck-1.0"),
    "0.3": ("a2a-tck-0.3.0.beta4.tar.gz", "a2a-tck-0.3"),
}
GOAL_V1 = 97.0


def snapshots() -> Path:
    """Where the TCK tarballs are."""
    env = os.environ.get("A2A_TCK_SNAPSHOTS")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared/tools/a2a-tck", ROOT.parents[1] / "shared/tools/a2a-tck"]
    candidates.append(Path("/work/shared/tools/a2a-tck"))
    for path in candidates:
        if (path / SNAPSHOTS["1.0"][0]).exists():
            return path
    sys.exit("no TCK snapshots found: set A2A_TCK_SNAPSHOTS to the directory holding them")


def install(version: str) -> Path:
    """The unpacked TCK of ``version`` with its own venv (made once)."""
    tarball, name = SNAPSHOTS[version]
    home = WORK / name
    stamp = home / ".venv" / ".installed"
    if stamp.exists():
        return home
    WORK.mkdir(exist_ok=True)
    with tarfile.open(snapshots() / tarball) as archive:
        archive.extractall(WORK, filter="data")
    print(f"installing the TCK {version} into {home} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(home / ".venv")], check=True)
    pip = [str(home / ".venv/bin/python"), "-m", "pip", "install", "--quiet"]
    with (WORK / f"install-{version}.log").open("w") as log:
        subprocess.run([*pip, "-e", str(home)], check=True, stdout=log, stderr=log)
        if version == "0.3":  # its runner writes JSON reports with this plugin
            subprocess.run([*pip, "pytest-json-report"], check=True, stdout=log, stderr=log)
    stamp.touch()
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_local(port: int) -> subprocess.Popen[bytes]:
    """``pflambda local`` serving tests/tck/handlers; returns once it answers."""
    pflambda = Path(sys.executable).with_name("pflambda")
    log = (WORK / "local.log").open("wb")
    proc = subprocess.Popen(
        [str(pflambda), "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"pflambda local exited: see {WORK / 'local.log'}")
            time.sleep(0.2)
    proc.kill()
    sys.exit("pflambda local did not start in 60 s")


def run_v1(home: Path, agent_url: str, transport: str) -> dict[str, float]:
    """TCK 1.0 over one transport: its compatibility report's totals."""
    cmd = [str(home / ".venv/bin/python"), "run_tck.py", "--sut-host", agent_url]
    cmd += ["--transport", transport]
    with (WORK / f"tck-1.0-{transport}.log").open("w") as log:
        subprocess.run(cmd, cwd=home, check=False, stdout=log, stderr=subprocess.STDOUT)
    summary = json.loads((home / "reports/compatibility.json").read_text())["summary"]
    (WORK / f"compatibility-1.0-{transport}.json").write_text(json.dumps(summary, indent=2))
    overall = float(str(summary["overall_compatibility"]).rstrip("%"))
    return _junit_totals(home / "reports/junitreport.xml") | {"tck": overall}


def run_v03(home: Path, agent_url: str, category: str) -> dict[str, float]:
    """TCK 0.3, one category: pytest's totals."""
    cmd = [str(home / ".venv/bin/python"), "run_tck.py", "--sut-url", agent_url]
    cmd += ["--category", category, "--transports", "jsonrpc"]
    out = subprocess.run(cmd, cwd=home, check=False, capture_output=True, text=True)
    (WORK / f"tck-0.3-{category}.log").write_text(out.stdout + out.stderr)
    return _pytest_totals(out.stdout + out.stderr)


def _junit_totals(path: Path) -> dict[str, float]:
    text = path.read_text()
    suite = re.search(r"<testsuite [^>]*>", text)
    attrs = dict(re.findall(r'(\w+)="([^"]*)"', suite.group(0) if suite else ""))
    total = int(attrs.get("tests", 0))
    failed = int(attrs.get("failures", 0)) + int(attrs.get("errors", 0))
    skipped = int(attrs.get("skipped", 0))
    return {"passed": total - failed - skipped, "failed": failed, "skipped": skipped}


def _pytest_totals(text: str) -> dict[str, float]:
    counts = {"passed": 0.0, "failed": 0.0, "skipped": 0.0, "xfailed": 0.0, "errors": 0.0}
    for number, word in re.findall(r"(\d+) (passed|failed|skipped|xfailed|errors?)\b", text):
        counts["errors" if word.startswith("error") else word] = float(number)
    counts["failed"] += counts.pop("errors")
    return counts


def score(totals: dict[str, float]) -> float:
    ran = totals["passed"] + totals["failed"]
    return 100.0 * totals["passed"] / ran if ran else 0.0


def main() -> int:
    """Run every suite; print the summary."""
    v1, v03 = install("1.0"), install("0.3")
    port = free_port()
    proc = start_local(port)
    agent = f"http://127.0.0.1:{port}/agents/conformance"
    rows: list[tuple[str, dict[str, float]]] = []
    try:
        for transport in ("jsonrpc", "http_json"):
            rows.append((f"TCK 1.0 {transport}", run_v1(v1, agent, transport)))
        for category in ("mandatory", "capabilities"):
            rows.append((f"TCK 0.3 {category}", run_v03(v03, agent + "/", category)))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    both = {k: sum(r[k] for _, r in rows[:2]) for k in ("passed", "failed", "skipped")}
    print(f"{'suite':<26}{'passed':>8}{'failed':>8}{'skipped':>9}{'tests':>9}{'TCK says':>10}")
    for name, totals in [*rows, ("TCK 1.0 both", both)]:
        says = f"{totals['tck']:.1f}%" if "tck" in totals else "-"
        print(
            f"{name:<26}{totals['passed']:>8.0f}{totals['failed']:>8.0f}"
            f"{totals['skipped']:>9.0f}{score(totals):>8.1f}%{says:>10}"
        )
    print("tests: passed / (passed + failed); TCK says: its report's overall_compatibility")
    ok = score(both) >= GOAL_V1 and rows[2][1]["failed"] == 0
    print(f"reports and logs: {WORK}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
