"""Per-node orchestration overhead: pflambda's core vs pocketflow 0.0.3.

What it measures
    The cost the *framework* adds to every node visit when a flow runs in-process:
    ``Flow._orch`` (copy.copy of the node, set_params, successor lookup) plus the
    prep/_exec/post call chain and the retry loop -- the node bodies are trivial.

    The graph is the same on both implementations: two nodes in a loop,
    ``A >> B``, ``B - "loop" >> A``, ``B - "done" >> End``; every visit increments
    ``shared["n"]`` and B leaves the loop after ``--steps`` visits (100,000 by
    default).  The same graph is then built from async nodes and run with
    ``AsyncFlow.run_async`` (``--async-steps``, 20,000 by default).

    Implementations are run interleaved (alternating which goes first) for
    ``--rounds`` rounds after one warm-up run each; the table shows the best and
    the median CPU time (``time.process_time``, so other load on the machine
    matters less) per node visit and their ratio to pocketflow's.

How to run
    .venv/bin/python bench/core_overhead.py                  # ~10-20 s
    .venv/bin/python bench/core_overhead.py --rounds 3 --steps 20000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pocketflow

import pflambda

IMPLS: list[tuple[str, ModuleType]] = [("pocketflow", pocketflow), ("pflambda", pflambda)]


def build_sync(pf: Any, steps: int) -> Callable[[], int]:
    class A(pf.Node):
        def post(self, shared, prep_res, exec_res):
            shared["n"] += 1

    class B(pf.Node):
        def post(self, shared, prep_res, exec_res):
            shared["n"] += 1
            return "loop" if shared["n"] < steps else "done"

    class End(pf.Node):
        def post(self, shared, prep_res, exec_res):
            shared["n"] += 1

    a, b = A(), B()
    a >> b
    b - "loop" >> a
    b - "done" >> End()
    flow = pf.Flow(start=a)

    def run() -> int:
        shared = {"n": 0}
        flow.run(shared)
        return shared["n"]

    return run


def build_async(pf: Any, steps: int) -> Callable[[], int]:
    class A(pf.AsyncNode):
        async def post_async(self, shared, prep_res, exec_res):
            shared["n"] += 1

    class B(pf.AsyncNode):
        async def post_async(self, shared, prep_res, exec_res):
            shared["n"] += 1
            return "loop" if shared["n"] < steps else "done"

    class End(pf.AsyncNode):
        async def post_async(self, shared, prep_res, exec_res):
            shared["n"] += 1

    a, b = A(), B()
    a >> b
    b - "loop" >> a
    b - "done" >> End()
    flow = pf.AsyncFlow(start=a)

    def run() -> int:
        shared = {"n": 0}
        asyncio.run(flow.run_async(shared))
        return shared["n"]

    return run


def measure(run: Callable[[], int]) -> float:
    """CPU seconds per node visit for one run (process time: robust on a busy machine)."""
    gc.collect()
    t0 = time.process_time()
    visits = run()
    elapsed = time.process_time() - t0
    return elapsed / visits


def bench(label: str, build: Callable[[Any, int], Callable[[], int]], steps: int, rounds: int):
    runs = {name: build(mod, steps) for name, mod in IMPLS}
    for run in runs.values():  # warm-up (and a sanity check of the visit count)
        visits = run()
        assert visits == steps + 1, visits
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in order:
            samples[name].append(measure(runs[name]))
    rows = []
    ref_best = min(samples["pocketflow"])
    ref_median = statistics.median(samples["pocketflow"])
    for name in runs:
        best, median = min(samples[name]), statistics.median(samples[name])
        rows.append(
            (label, name, steps + 1, best * 1e6, median * 1e6, best / ref_best, median / ref_median)
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="sync loop visits")
    parser.add_argument("--async-steps", type=int, default=20_000, help="async loop visits")
    parser.add_argument("--rounds", type=int, default=7, help="timed runs per implementation")
    args = parser.parse_args()

    rows = bench("Flow", build_sync, args.steps, args.rounds)
    rows += bench("AsyncFlow", build_async, args.async_steps, args.rounds)

    header = (
        "flow",
        "implementation",
        "visits",
        "us/node best",
        "us/node median",
        "ratio best",
        "ratio median",
    )
    widths = (10, 15, 8, 13, 15, 11, 13)
    print(f"core overhead (CPU time), best and median of {args.rounds} interleaved runs")
    print(
        "  ".join(
            h.ljust(w) if i < 2 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    print("  ".join("-" * w for w in widths))
    for label, name, visits, best, median, rb, rm in rows:
        cells = (
            label,
            name,
            f"{visits:,}",
            f"{best:.3f}",
            f"{median:.3f}",
            f"{rb:.2f}x",
            f"{rm:.2f}x",
        )
        print(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    print("(ratio = implementation / pocketflow; < 1.00x means faster than pocketflow)")


if __name__ == "__main__":
    main()
