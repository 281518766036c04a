"""What one page of the run console costs as the store grows: store reads per page.

Fills an in-memory store with N runs (1,000 / 10,000 / 100,000; every 7th paused,
every 5th of agent "writer") and lists one page of 50 the way ``/console/api/runs``
does, unfiltered and with filters. Prints, per N and filter: the Store calls the page
made (``list_runs`` pages of the index + one ``last_checkpoint`` per listed run -- on
DynamoDB each is one Query, never a Scan) and the wall time on the memory store.

What to read from it: the calls per page do not grow with N. (The memory store's own
``list_runs`` sorts every run on each call, so its *time* grows with N; DynamoDB's
Query does not.) A filter the index cannot apply yet (status, agent) reads up to
``MAX_PAGES`` index pages to fill the page.

Run: ``.venv/bin/python bench/console.py`` (about a minute).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pflambda.console.views import RunFilter, list_page
from pflambda.stores.base import Checkpoint, RunRecord, RunStatus
from pflambda.stores.memory import MemoryStore

T0 = 1_700_000_000.0


class Counting:
    """A store that counts the calls the listing makes."""

    def __init__(self, store: MemoryStore) -> None:
        self.store, self.calls = store, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        def counted(*args: Any, **kw: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kw)

        return counted


def fill(n: int) -> MemoryStore:
    store = MemoryStore()
    for i in range(n):
        status = RunStatus.PAUSED if i % 7 == 0 else RunStatus.COMPLETED
        attrs = {"a2a": {"agent": "writer" if i % 5 == 0 else "reader"}}
        run_id = f"run-{i:07d}"
        store.create_run(
            RunRecord(run_id, "flows.x:f", "fp", status, T0 + i, T0 + i, owner="ada", attrs=attrs)
        )
        store.put_checkpoint(Checkpoint(run_id, 0, b"{}", True, T0 + i, position="Start"))
    return store


FILTERS = {
    "none": RunFilter(),
    "status=paused": RunFilter(status=RunStatus.PAUSED),
    "agent=writer": RunFilter(agent="writer"),
    "owner=ada (index)": RunFilter(owner="ada"),
}


def main() -> None:
    print(f"{'runs':>8}  {'filter':<18} {'rows':>4} {'list_runs':>9} {'last_ckpt':>9} {'ms':>8}")
    for n in (1_000, 10_000, 100_000):
        store = fill(n)
        for name, want in FILTERS.items():
            counting = Counting(store)
            started = time.perf_counter()
            page = list_page(counting, want, now=T0 + n, limit=50)  # type: ignore[arg-type]
            ms = (time.perf_counter() - started) * 1000
            calls = counting.calls
            print(
                f"{n:>8}  {name:<18} {len(page['runs']):>4} {calls['list_runs']:>9} "
                f"{calls['last_checkpoint']:>9} {ms:>8.1f}"
            )


if __name__ == "__main__":
    main()
