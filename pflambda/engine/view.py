"""SharedView: the ``shared`` dict the nodes of a durable run are given, noting what they touch.

A ``dict`` subclass, so nodes see PocketFlow's semantics unchanged: ``post`` mutates it
in place, values are the objects the nodes put there, ``isinstance(shared, dict)`` holds.
What it adds is a record of the keys a step read or wrote: only those can have changed
(a value mutated in place was first read through the view), so the checkpoint looks at
those alone and an untouched value -- however large -- costs nothing per step.

Anything that hands out every value at once (``items()``, ``values()``, ``copy()``,
``dict(shared)``, ``json.dumps(shared)``, ``{**shared}``) marks every key touched.
Overriding ``__iter__`` keeps CPython's dict-merge fast path (which would read the
storage directly, unseen) from applying: merges go through ``keys()`` and
``__getitem__`` instead.

The one thing it cannot see is a reference kept across steps: a node that stashes a
value of shared on ``self`` in one visit and mutates it in a later visit without going
through shared again. Nodes are copied per visit, so this takes deliberate effort;
the docs (docs/durability.md) say to read values through shared in the step that
changes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["SharedView", "Touched"]


class Touched:
    """What one step touched: keys read or written, keys removed, or everything."""

    __slots__ = ("everything", "keys", "removed")

    def __init__(self) -> None:
        self.keys: set[Any] = set()
        self.removed: set[Any] = set()
        self.everything = False


class SharedView(dict[Any, Any]):
    """A dict that records the keys read or written since :meth:`take_touched`."""

    __slots__ = ("_touched",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._touched = Touched()
        self._touched.everything = True

    def take_touched(self) -> Touched:
        """What was touched since the last call, and start a new record."""
        touched, self._touched = self._touched, Touched()
        return touched

    def touch_all(self) -> None:
        """Mark every key touched (the next checkpoint looks at all of shared)."""
        self._touched.everything = True

    # -- reads that hand out a value -------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        self._touched.keys.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._touched.keys.add(key)
        return super().get(key, default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._touched.keys.add(key)
        return super().setdefault(key, default)

    def __iter__(self) -> Iterator[Any]:
        return super().__iter__()

    def values(self) -> Any:
        self._touched.everything = True
        return super().values()

    def items(self) -> Any:
        self._touched.everything = True
        return super().items()

    def copy(self) -> dict[Any, Any]:
        self._touched.everything = True
        return dict(super().items())

    def __or__(self, other: Any) -> Any:
        self._touched.everything = True
        return dict(super().items()) | other

    def __ror__(self, other: Any) -> Any:
        self._touched.everything = True
        return other | dict(super().items())

    def __reduce_ex__(self, protocol: Any) -> Any:
        self._touched.everything = True
        return (SharedView, (dict(super().items()),))

    # -- writes ------------------------------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        self._touched.keys.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._touched.keys.add(key)
        self._touched.removed.add(key)
        super().__delitem__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        self._touched.keys.add(key)
        if key in self:
            self._touched.removed.add(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[Any, Any]:
        key, value = super().popitem()
        self._touched.keys.add(key)
        self._touched.removed.add(key)
        return key, value

    def clear(self) -> None:
        self._touched.removed.update(super().keys())
        self._touched.everything = True
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        new = dict(*args, **kwargs)
        self._touched.keys.update(new)
        super().update(new)

    def __ior__(self, other: Any) -> SharedView:
        self.update(other)
        return self
