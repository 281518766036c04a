"""pflambda: PocketFlow agent flows as durable, serverless A2A agents on AWS Lambda.

The node classes are PocketFlow's (same behaviour, typed); the durable engine,
stores and the A2A layer are imported lazily from their sub-packages so that
``import pflambda`` stays as cheap as ``import pocketflow``.
"""

from pflambda.core import (
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

__version__ = "0.1.0"

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
    "__version__",
]
