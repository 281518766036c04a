"""What a node can raise to end or pause its task in an A2A state of its own.

``InputRequired`` (in :mod:`pflambda.errors`) pauses a task as ``input-required``; these
two say more::

    from pflambda import AuthRequired, Rejected

    class Check(Node):
        def prep(self, shared):
            if not shared.get("token"):
                raise AuthRequired("Sign in at https://example.com/login, then send the token",
                                   key="token")
            if "forbidden" in shared["question"]:
                raise Rejected("I do not answer that.")

Both carry a ``summary`` the engine stores on the run (and its listing indexes carry),
which is how the task state is told apart from a plain pause or failure without reading
the run's state. Raise them from ``prep`` or ``post``: ``exec`` retries on exceptions
(``max_retries``), so a ``Rejected`` there is retried before it ends the task.
"""

from __future__ import annotations

from typing import Any

from pflambda.errors import InputRequired, TerminalError

__all__ = ["AuthRequired", "Rejected"]


class AuthRequired(InputRequired):
    """Pause the task as ``auth-required``: the reply (the credentials) goes to
    ``shared[key]`` and the node runs again, exactly as with ``InputRequired``."""

    def __init__(self, prompt: str, key: str = "auth") -> None:
        super().__init__(prompt, key)
        self.summary: dict[str, Any] = {"state": "auth-required"}

    def __reduce__(self) -> tuple[object, ...]:
        return (AuthRequired, (self.prompt, self.key))


class Rejected(TerminalError):
    """End the task as ``rejected`` (the agent will not do it), with ``reason`` as the
    agent's last message. The run is recorded failed, with the reason as its error."""

    def __init__(self, reason: str) -> None:
        if not isinstance(reason, str):
            raise TypeError(f"Rejected reason must be a str, got {type(reason).__name__}")
        super().__init__(reason)
        self.reason = reason
        self.summary: dict[str, Any] = {"state": "rejected", "reason": reason[:500]}
