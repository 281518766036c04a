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
from pflambda.errors import InputRequired
from pflambda.runcontext import NoRunContext, RunContext, current_run, maybe_current_run

__version__ = "0.1.0"

_LAZY = {
    "Agent": "pflambda.a2a.agent",
    "Artifact": "pflambda.a2a.model",
    "Part": "pflambda.a2a.model",
    "Message": "pflambda.a2a.model",
    "Rejected": "pflambda.a2a.signals",
    "AuthRequired": "pflambda.a2a.signals",
    "Skill": "pflambda.a2a.card",
    "BearerAuth": "pflambda.a2a.auth",
    "Engine": "pflambda.engine.runner",
    "register_type": "pflambda.engine.codec",
    "allow_pickle": "pflambda.engine.codec",
    "to_display_json": "pflambda.engine.codec",
}


def __getattr__(name: str) -> object:
    """Import the A2A and engine layers only when they are used (cheap ``import pflambda``)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pflambda' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Agent",
    "Artifact",
    "AsyncBatchFlow",
    "AsyncBatchNode",
    "AsyncFlow",
    "AsyncNode",
    "AsyncParallelBatchFlow",
    "AsyncParallelBatchNode",
    "AuthRequired",
    "BaseNode",
    "BatchFlow",
    "BatchNode",
    "BearerAuth",
    "Engine",
    "Flow",
    "InputRequired",
    "NoRunContext",
    "Node",
    "RunContext",
    "Skill",
    "__version__",
    "allow_pickle",
    "current_run",
    "maybe_current_run",
    "register_type",
    "to_display_json",
]
