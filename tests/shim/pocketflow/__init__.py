"""Test-only shim: a ``pocketflow`` package backed by pflambda's node-graph core.

Put ``tests/shim`` first on ``PYTHONPATH`` and code written against
``import pocketflow`` / ``from pocketflow import Node, Flow`` runs on pflambda
unchanged (see ``test_pocketflow_code_runs_unchanged_on_pflambda`` in
``tests/unit/test_core_differential.py``).
"""

from pflambda import (
    AsyncBatchFlow,
    AsyncBatchNode,
    AsyncFlow,
    AsyncNode,
    AsyncParallelBatchFlow,
    AsyncParallelBatchNode,
    BaseNode,
    BatchFlow,
    BatchNode,
    Flow,
    Node,
)

__all__ = [
    "AsyncBatchFlow",
    "AsyncBatchNode",
    "AsyncFlow",
    "AsyncNode",
    "AsyncParallelBatchFlow",
    "AsyncParallelBatchNode",
    "BaseNode",
    "BatchFlow",
    "BatchNode",
    "Flow",
    "Node",
]
