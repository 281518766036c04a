"""Errors that say what Lambda should do.

Every error pflambda raises is one of these, and its branch of the tree tells the
caller (a Lambda handler, the CLI, the A2A layer) what to do with it::

    PflambdaError
    ├── RetryableError          transient (throttling, timeouts): let SQS redeliver
    ├── TerminalError           record the run FAILED and acknowledge the message
    │   ├── SerializationError  shared holds a value the codec cannot store (names key, node, type)
    │   ├── FingerprintMismatch the deployed flow changed under a paused run
    │   │   └── PinnedElsewhere the code the run started on may still be deployed: hand it there
    │   └── NodeFailed          a node raised after its retries and fallback
    ├── CheckpointConflict      another invocation owns this step: stop cleanly, change nothing
    ├── RunNotFound             no run with that id
    ├── RunExists               a run with that id already exists
    ├── InvalidRunState         e.g. resuming a completed run, replying to a run that asked nothing
    └── ConfigError             the environment or arguments are wrong: fix and retry by hand

``InputRequired`` is not an error: it is how a node pauses the run for a human.
It derives from ``BaseException`` so that a user's ``except Exception`` (and the
node's own retry loop) cannot swallow it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointConflict",
    "ConfigError",
    "FingerprintMismatch",
    "InputRequired",
    "InvalidRunState",
    "NodeFailed",
    "PflambdaError",
    "PinnedElsewhere",
    "RetryableError",
    "RunExists",
    "RunNotFound",
    "SerializationError",
    "TerminalError",
]


class PflambdaError(Exception):
    """Base of every error pflambda raises."""


class RetryableError(PflambdaError):
    """A transient failure: the same work may succeed if tried again later."""


class TerminalError(PflambdaError):
    """The run cannot go on: record it as failed, do not retry."""


class SerializationError(TerminalError):
    """A value in shared cannot be stored; names where it is and what it is."""

    def __init__(
        self, path: str, type_name: str, reason: str = "", node: str | None = None
    ) -> None:
        self.path, self.type_name, self.reason, self.node = path, type_name, reason, node
        where = f"node {node!r}: " if node else ""
        why = f": {reason}" if reason else ""
        super().__init__(f"{where}cannot serialise {path} of type {type_name}{why}")

    def with_node(self, node: str) -> SerializationError:
        """The same error, saying which node left the value in shared."""
        error = SerializationError(self.path, self.type_name, self.reason, node)
        error.__cause__ = self.__cause__
        return error

    def __reduce__(self) -> tuple[object, ...]:
        return (SerializationError, (self.path, self.type_name, self.reason, self.node))


class FingerprintMismatch(TerminalError):
    """The flow's structure changed since the run started."""


class PinnedElsewhere(FingerprintMismatch):
    """The deployed flow refuses the run, but the code it started on may still be
    deployed at ``pinned`` (a Lambda ``function:version``, or a local twin's id): an
    upper layer can hand the run there; otherwise it is the plain refusal."""

    def __init__(self, message: str, pinned: str, agent: str | None = None) -> None:
        super().__init__(message)
        self.pinned, self.agent = pinned, agent

    def __reduce__(self) -> tuple[object, ...]:
        return (PinnedElsewhere, (str(self), self.pinned, self.agent))


class NodeFailed(TerminalError):
    """A node raised (after its retries and fallback); the run is failed."""


class CheckpointConflict(PflambdaError):
    """Another invocation already wrote this step: this one must stop, changing nothing."""


class RunNotFound(PflambdaError):
    """No run has this id."""


class RunExists(PflambdaError):
    """A run with this id already exists."""


class InvalidRunState(PflambdaError):
    """The run is not in a state that allows this operation."""


class ConfigError(PflambdaError):
    """Configuration (environment, arguments) is missing or wrong."""


class InvalidRunId(ConfigError, ValueError):
    """A run id given for a new run has characters a run id cannot hold."""


class InputRequired(BaseException):
    """Raised by a node to pause the run until a human replies.

    The reply is stored at ``shared[key]`` and the node runs again from ``prep``.
    In a plain ``flow.run(shared)`` nothing catches it, so it propagates to the caller.
    """

    def __init__(self, prompt: str, key: str = "input") -> None:
        if not isinstance(prompt, str):
            raise TypeError(f"InputRequired prompt must be a str, got {type(prompt).__name__}")
        self.prompt, self.key = prompt, key
        super().__init__(prompt)

    def __reduce__(self) -> tuple[object, ...]:
        return (InputRequired, (self.prompt, self.key))
