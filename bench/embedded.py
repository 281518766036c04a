"""What the embedded default costs: a durable step and a resume on SQLite vs memory.

Runs a 500-step flow (``tests.flows.sample:loop``) on the in-memory store and on the
embedded SQLite store (a fresh ``.pflambda/`` in a temporary directory), then resumes the
finished run's state from a new Settings (a fresh connection, as a new process would).
Prints, per backend: milliseconds per step (checkpoint included), the time to rebuild
shared at the last step, and for SQLite the database file's size.

Run: ``.venv/bin/python bench/embedded.py`` (a few seconds).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pflambda.aws.config import DB_FILE, Settings, reset_memory_ports

STEPS = 500
FLOW = "tests.flows.sample:loop"


def measure(env: dict[str, str]) -> tuple[float, float]:
    """(ms per step, ms to rebuild shared at the last step from a fresh engine)."""
    reset_memory_ports()
    engine = Settings.from_env(env).engine()
    started = time.perf_counter()
    outcome = engine.start(FLOW, {"limit": STEPS})
    per_step = (time.perf_counter() - started) * 1000 / outcome.seq
    if outcome.status != "completed":
        raise SystemExit(f"the run did not complete: {outcome}")
    if env.get("PFLAMBDA_STORE") != "memory":
        reset_memory_ports()  # a new process: nothing cached, the file reopened
        engine = Settings.from_env(env).engine()
    started = time.perf_counter()
    shared, _, seq = engine.state(outcome.run_id)
    resume = (time.perf_counter() - started) * 1000
    if seq != outcome.seq or shared["n"] != STEPS:
        raise SystemExit(f"resumed at {seq} with n={shared['n']}: expected {outcome.seq}")
    return per_step, resume


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / ".pflambda"
        rows = [
            ("memory", *measure({"PFLAMBDA_STORE": "memory"}), "-"),
            (
                "sqlite",
                *measure({"PFLAMBDA_STORE": "sqlite", "PFLAMBDA_DIR": str(home)}),
                f"{(home / DB_FILE).stat().st_size / 1024:.0f} KB",
            ),
        ]
        reset_memory_ports()
    print(f"{STEPS}-step flow ({FLOW}), one process; resume from a fresh engine")
    print(f"{'store':<8} {'ms/step':>8} {'resume ms':>10} {'file':>8}")
    for name, per_step, resume, size in rows:
        print(f"{name:<8} {per_step:>8.2f} {resume:>10.1f} {size:>8}")


if __name__ == "__main__":
    main()
