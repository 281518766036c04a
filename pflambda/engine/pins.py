"""Which code versions live runs are pinned to: what an operator must keep deployed.

A running or paused run records where the code that admitted it is deployed
(``RunRecord.pinned``); a redeploy that its cursor does not map onto hands it back there
(docs/durability.md, "Deploying while runs are in flight"). Deleting such a version turns
that hand-off into a refusal naming ``pflambda migrate``. The listing indexes do not carry
``pinned`` (changing a GSI's projection would rebuild every index), so this reads each
live run's record: one read per running or paused run, for an operator's occasional look.
"""

from __future__ import annotations

from typing import Any

from pflambda.errors import RunNotFound
from pflambda.stores.base import RunStatus, Store

__all__ = ["live_pins"]

LIVE = (RunStatus.RUNNING, RunStatus.PAUSED)


def live_pins(store: Store, *, page_size: int = 100) -> list[dict[str, Any]]:
    """Per pinned site, how many live runs use it, the oldest last update among them and
    one example run id; runs pinned nowhere are counted under ``None``. Most runs first."""
    found: dict[str | None, dict[str, Any]] = {}
    token: str | None = None
    while True:
        page = store.list_runs(limit=page_size, next_token=token, status=LIVE)
        for listed in page.runs:
            try:
                record = store.get_run(listed.run_id)
            except RunNotFound:  # expired meanwhile
                continue
            if record.status not in LIVE:
                continue
            entry = found.setdefault(
                record.pinned,
                {"pinned": record.pinned, "runs": 0, "oldest_update": record.updated_at},
            )
            entry["runs"] += 1
            if record.updated_at <= entry["oldest_update"]:
                entry["oldest_update"], entry["example"] = record.updated_at, record.run_id
        token = page.next_token
        if token is None:
            break
    return sorted(found.values(), key=lambda e: (-e["runs"], str(e["pinned"])))
