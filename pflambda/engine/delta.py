"""Structural deltas: what changed inside a value of shared since it was committed.

A committed value is remembered as a *shadow* that mirrors its structure without
copying it: immutable scalars (str, int, float, bytes, datetime, Decimal, ...) are kept
as the objects themselves, plain lists and plain dicts (str keys) as shadows of their
items, and anything else (tuples, sets, dataclasses, models, registered types) as its
encoded JSON text. :func:`diff` walks a value against its shadow and emits operations
at the granularity of the change::

    ("s", path, json)   set the value at path (a dict key, a list index, or a top-level key)
    ("d", path, "")     delete the dict key at path
    ("a", path, json)   extend the list at path with the items of a JSON list
    ("t", path, "n")    truncate the list at path to n items

``path`` is a list: the encoded top-level key, then dict keys (str) and list indexes
(int). The walk compares identities first (``is``, at C speed over a list's prefix),
so a list that grew by one item costs one append and a pass over references, not an
encoding of the list. :func:`apply` replays operations onto the encoded JSON form of
shared (plain lists and str-keyed dicts encode to themselves, so paths carry over).
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from operator import is_
from types import NoneType
from typing import Any
from uuid import UUID

from pflambda.engine import codec

__all__ = ["Op", "apply", "diff", "shadow_of"]

Op = tuple[str, list[Any], str]
"""(kind, path, payload JSON text)."""

_EXACT = frozenset({str, int, bool, NoneType, bytes, UUID, date})
"""Immutable types whose equality (same type) means equal encodings."""
_IMMUTABLE = _EXACT | {float, Decimal, datetime, time, timedelta}
_TAG = "$pf"
_dump = codec.dump_json


class _List:
    """Shadow of a plain list: one shadow per item."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class _Dict:
    """Shadow of a plain dict (str keys, none of them ``$pf``): one shadow per value."""

    __slots__ = ("items",)

    def __init__(self, items: dict[str, Any]) -> None:
        self.items = items


class _Opaque:
    """Shadow of anything else: its encoded JSON text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def shadow_of(value: Any, tree: Any) -> Any:
    """The shadow of ``value``, whose encoded form is ``tree``."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is list:
        return _List([shadow_of(v, t) for v, t in zip(value, tree, strict=True)])
    if kind is dict and type(tree) is dict and _TAG not in tree:
        return _Dict({k: shadow_of(v, tree[k]) for k, v in value.items()})
    return _Opaque(_dump(tree))


def diff(old: Any, value: Any, path: list[Any], ops: list[Op]) -> Any:
    """Append to ``ops`` what turns ``old``'s value into ``value``; ``value``'s shadow."""
    kind = type(value)
    if kind in _IMMUTABLE:
        if old is value or (type(old) is kind and _same(old, value)):
            return old
    elif kind is list:
        if type(old) is _List:
            return _diff_list(old, value, path, ops)
    elif kind is dict:
        if type(old) is _Dict and _TAG not in value:
            return _diff_dict(old, value, path, ops)
    elif type(old) is _Opaque:
        text = _dump(codec.encode(value, where(path)))
        if text == old.text:
            return old
        ops.append(("s", path, text))
        return _Opaque(text)
    return replace(value, path, ops)


def replace(value: Any, path: list[Any], ops: list[Op]) -> Any:
    """Set the whole of ``value`` at ``path``; its shadow."""
    tree = codec.encode(value, where(path))
    ops.append(("s", path, _dump(tree)))
    return shadow_of(value, tree)


def _same(old: Any, new: Any) -> bool:
    """Whether two immutable scalars of one type encode the same."""
    if type(new) in _EXACT:
        return bool(old == new)
    if type(new) is float:
        return old == new and (new != 0.0 or math.copysign(1.0, old) == math.copysign(1.0, new))
    return codec.dumps(old) == codec.dumps(new)


def _diff_list(old: _List, value: list[Any], path: list[Any], ops: list[Op]) -> Any:
    items, m = old.items, len(value)
    n = len(items)
    if m >= n and all(map(is_, value, items)):
        if m == n:
            return old
        return _List(items + _append(value, n, path, ops))
    mine: list[Op] = []
    new = [diff(items[i], value[i], [*path, i], mine) for i in range(min(n, m))]
    if len(mine) > max(8, n // 2):
        return replace(value, path, ops)  # rewritten more than edited: one set is smaller
    ops.extend(mine)
    if m < n:
        ops.append(("t", path, str(m)))
    elif m > n:
        new += _append(value, n, path, ops)
    return _List(new)


def _append(value: list[Any], n: int, path: list[Any], ops: list[Op]) -> list[Any]:
    """Append op for ``value[n:]``; the new items' shadows."""
    tail = value[n:]
    trees = [codec.encode(item, where([*path, n + i])) for i, item in enumerate(tail)]
    ops.append(("a", path, _dump(trees)))
    return [shadow_of(item, tree) for item, tree in zip(tail, trees, strict=True)]


def _diff_dict(old: _Dict, value: dict[Any, Any], path: list[Any], ops: list[Op]) -> Any:
    olds = old.items
    n = len(olds)
    keys = list(value)
    if keys[:n] == list(olds):
        added = keys[n:]
        if not _plain(added):
            return replace(value, path, ops)
        if all(map(is_, value.values(), olds.values())):
            if not added:
                return old
            new = dict(olds)
        else:
            new = {k: diff(o, value[k], [*path, k], ops) for k, o in olds.items()}
        for key in added:
            new[key] = replace(value[key], [*path, key], ops)
        return _Dict(new)
    survivors = [k for k in olds if k in value]
    added = keys[len(survivors) :]
    if keys[: len(survivors)] != survivors or not _plain(added):
        return replace(value, path, ops)  # reordered: only a whole set keeps the order
    mine: list[Op] = [("d", [*path, k], "") for k in olds if k not in value]
    new = {k: diff(olds[k], value[k], [*path, k], mine) for k in survivors}
    for key in added:
        new[key] = replace(value[key], [*path, key], mine)
    if len(mine) > max(8, len(keys) // 2):
        return replace(value, path, ops)
    ops.extend(mine)
    return _Dict(new)


def _plain(keys: list[Any]) -> bool:
    """Whether new keys keep a dict plain (what the codec encodes as a JSON object)."""
    return all(type(k) is str and k != _TAG for k in keys)


def where(path: list[Any]) -> str:
    """``shared['key'][3]['name']``: a path as errors name it."""
    top = path[0]
    head = repr(codec.decode_key(top)) if top.startswith(_TAG + ":") else repr(top)
    return f"shared[{head}]" + "".join(f"[{seg!r}]" for seg in path[1:])


def apply(values: dict[str, Any], kind: str, path: list[Any], payload: Any) -> None:
    """Replay one operation onto ``values`` (encoded key -> encoded JSON)."""
    try:
        if kind in ("s", "d"):
            parent: Any = values
            for seg in path[:-1]:
                parent = parent[seg]
            last = path[-1]
            if type(parent) is list and not 0 <= last < len(parent):
                raise IndexError(f"index {last} out of range")
            if kind == "s":
                parent[last] = payload
            else:
                del parent[last]
            return
        target: Any = values
        for seg in path:
            target = target[seg]
        if kind == "a" and type(target) is list and type(payload) is list:
            target.extend(payload)
        elif kind == "t" and type(target) is list and type(payload) is int:
            del target[payload:]
        else:
            raise TypeError(f"cannot apply {kind!r} to {type(target).__name__}")
    except (LookupError, TypeError) as exc:
        raise codec.DecodeError(f"checkpoint op {kind!r} at {path}: {exc}") from exc
