"""Shared-state codec: the tagged JSON that checkpoints PocketFlow's ``shared`` exactly.

Plain JSON values (str, bool, None, finite float, int up to 64 bits, list, str-keyed dict)
encode to themselves, so checkpoints stay readable. Every other type is a *registered*
type: it becomes a tagged object ``{"$pf": tag, "v": ...}`` (the reserved key ``"$pf"``)
and its decoder rebuilds it. This module is the small core -- dispatch, containers,
keys, error paths, the registry and :func:`to_display_json`; the built-in types live in
:mod:`~pflambda.engine.codec_types` (datetime types, Decimal, UUID, bytes, paths, sets,
tuples, enums, dataclasses, pydantic models) and
:mod:`~pflambda.engine.codec_numpy` (numpy arrays and scalars, pandas frames and
series: imported only when such a value or tag is met, never otherwise).

Users add their own with :func:`register_type`. Anything else raises
:class:`SerializationError` naming its path in shared (and the node, once the engine
knows it) -- unless :func:`allow_pickle` was called: then it is pickled. Pickle is off
by default because loading a pickle runs code named by the data: anyone who can write
the checkpoint table could run code in every worker.
"""

from __future__ import annotations

import base64
import importlib
import json
import pickle
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias, TypeVar

from pflambda.errors import PflambdaError, SerializationError

__all__ = [
    "MAX_DEPTH",
    "DecodeError",
    "JSONValue",
    "allow_pickle",
    "decode",
    "decode_key",
    "dump_json",
    "dumps",
    "encode",
    "encode_key",
    "loads",
    "register_type",
    "to_display_json",
]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
T = TypeVar("T")

MAX_DEPTH = 100
"""Deepest container nesting encoded; deeper (or cyclic) values raise SerializationError."""

TAG = "$pf"
SUPPORTED = (
    "only JSON types, tuple, set, frozenset, bytes, bytearray, datetime types, Decimal, UUID,"
    " pathlib paths, enums, dataclasses, pydantic models, numpy and pandas values and types"
    " registered with pflambda.register_type can be checkpointed"
)
_KEY_ESCAPE = TAG + ":"
# What bad checkpoint data can make decoding raise (ArithmeticError: Decimal, timedelta;
# NotImplementedError: a WindowsPath on Linux; RecursionError: nesting no encoder wrote).
_DECODE_FAILURES = (
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    ImportError,
    ArithmeticError,
    NotImplementedError,
    RecursionError,
)
_DUMP = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode

Encoder = Callable[[Any, int], JSONValue]
"""Encodes a value at a nesting depth (pass the depth on to :func:`encode_inner`)."""
Decoder = Callable[[dict[str, Any]], object]
"""Rebuilds a value from its tagged object."""
Display = Callable[[dict[str, Any]], Any]
"""Turns a tagged object into plain, readable JSON."""

ENCODERS: dict[type, Encoder] = {}
"""Exact type -> encoder."""
FALLBACKS: list[Callable[[Any, int], JSONValue]] = []
"""Tried in order for types not in ENCODERS; each returns NotImplemented to pass."""
DECODERS: dict[str, Decoder] = {}
"""Tag -> decoder."""
DISPLAYS: dict[str, Display] = {}
"""Tag -> display form (default: the display form of ``"v"``)."""
LAZY_MODULES = {"numpy": "pflambda.engine.codec_numpy", "pandas": "pflambda.engine.codec_numpy"}
"""Top-level package of a value's type -> module that registers it (imported on first use)."""
LAZY_TAGS = {
    "ndarray": "pflambda.engine.codec_numpy",
    "npscalar": "pflambda.engine.codec_numpy",
    "dataframe": "pflambda.engine.codec_numpy",
    "series": "pflambda.engine.codec_numpy",
    "pdtimestamp": "pflambda.engine.codec_numpy",
}
_user_tags: dict[str, type] = {}
_lazy_loaded: set[str] = set()
_pickle = False


class DecodeError(PflambdaError, ValueError):
    """A checkpoint is malformed, or names a class that can no longer restore it."""


class Unsupported(Exception):
    """Unwinds an encode failure; containers append path segments, innermost first."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(reason)
        self.type_name = type_name(value)
        self.reason = reason
        self.segments: list[str] = []


# --- public API -----------------------------------------------------------------------------


def encode(value: object, path: str = "shared") -> JSONValue:
    """Turn ``value`` into a JSON-compatible structure; ``path`` names it in errors."""
    try:
        return encode_inner(value, 0)
    except Unsupported as failure:
        where = _join_path(path, failure.segments)
        error = SerializationError(where, failure.type_name, failure.reason)
        raise error from failure.__cause__


def decode(data: JSONValue) -> object:
    """Rebuild the value that :func:`encode` turned into ``data``."""
    try:
        return decode_inner(data)
    except DecodeError:
        raise
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"malformed checkpoint: {type(exc).__name__}: {exc}") from exc


def dumps(value: object, path: str = "shared") -> str:
    """Encode ``value`` to compact JSON text; the same value always gives the same text."""
    return _DUMP(encode(value, path))


def dump_json(data: JSONValue) -> str:
    """Compact JSON text of already-encoded data, byte for byte as :func:`dumps` writes it."""
    return _DUMP(data)


def loads(text: str | bytes) -> object:
    """Rebuild the value from JSON text written by :func:`dumps`."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"checkpoint is not valid JSON: {exc}") from exc
    return decode(data)


def to_display_json(value: object) -> Any:
    """``value`` as plain, readable JSON for people (CLI output, A2A artifacts): no codec
    tags -- datetimes and Decimals as text, sets and tuples as lists, dataclasses and
    models as objects, non-str keys as their JSON text. One way: it does not round-trip."""
    return display_inner(encode(value, "value"))


def encode_key(key: object) -> str:
    """Return a stable, distinct string for any encodable hashable dict key.

    str keys map to themselves unless they start with ``"$pf"``; those and all other keys
    become ``"$pf:" + dumps(key)``.  Keys that are equal but of different types (``1``,
    ``1.0``, ``True``) get different strings; a dict holds only one of them, and
    :func:`decode_key` gives back exactly the key object that dict holds.
    """
    if type(key) is str and not key.startswith(TAG):
        return key
    try:
        hash(key)
    except TypeError as exc:
        raise SerializationError("key", type_name(key), "it is unhashable") from exc
    return _KEY_ESCAPE + dumps(key, path="key")


def decode_key(text: str) -> object:
    """Invert :func:`encode_key`."""
    if not text.startswith(TAG):
        return text
    if not text.startswith(_KEY_ESCAPE):
        raise DecodeError(f"malformed key {text!r}: reserved prefix {TAG!r} without ':'")
    return loads(text[len(_KEY_ESCAPE) :])


def register_type(
    cls: type[T],
    *,
    tag: str,
    encode: Callable[[T], Any],
    decode: Callable[[Any], T],
    subclasses: bool = False,
) -> None:
    """Let values of ``cls`` be checkpointed.

    ``encode`` turns a value into something the codec already stores (JSON types, other
    registered types); ``decode`` gets that back and rebuilds the value. ``tag`` names the
    type in checkpoints: keep it stable across deploys (e.g. ``"myapp.Point"``). With
    ``subclasses``, subclasses of ``cls`` use it too (they decode as ``cls``).
    Registering a tag again for the same class replaces it; for another class, or a
    built-in tag, raises :class:`ValueError`.
    """
    known = _user_tags.get(tag)
    if (known is None and tag in DECODERS) or (known is not None and known is not cls):
        raise ValueError(f"codec tag {tag!r} is already taken; pick another tag for {cls}")
    to_json, from_json = encode, decode

    def encoder(value: Any, depth: int) -> JSONValue:
        try:
            inner = to_json(value)
        except Exception as exc:
            raise Unsupported(value, f"its registered encoder raised {exc!r}") from exc
        return {TAG: tag, "v": encode_inner(inner, nest(value, depth))}

    def decoder(data: dict[str, Any]) -> object:
        try:
            return from_json(decode_inner(data["v"]))
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"the registered decoder of {tag!r} raised {exc!r}") from exc

    _user_tags[tag] = cls
    ENCODERS[cls] = encoder
    DECODERS[tag] = decoder
    if subclasses:
        FALLBACKS.insert(0, lambda v, d: encoder(v, d) if isinstance(v, cls) else NotImplemented)


def allow_pickle(enabled: bool = True) -> None:
    """Pickle values no registered type handles (off by default).

    Only for stores nobody else can write: unpickling runs code the data names, so
    whoever can write a checkpoint could run code in every worker that loads it. Both
    the process that writes and the one that reads must have called this.
    """
    global _pickle
    _pickle = enabled


# --- for type modules -----------------------------------------------------------------------


def encode_inner(value: object, depth: int) -> JSONValue:
    """Encode a value nested inside another (type modules call this for their parts)."""
    encoder = ENCODERS.get(type(value))
    if encoder is None:
        return _encode_other(value, depth)
    return encoder(value, depth)


def decode_inner(data: Any) -> object:
    """Rebuild one value: lists and untagged dicts recurse, tagged dicts dispatch on the tag."""
    kind = type(data)
    if kind is list:
        return [decode_inner(item) for item in data]
    if kind is dict:
        if TAG not in data:
            return {key: decode_inner(item) for key, item in data.items()}
        tag = data[TAG]
        decoder = DECODERS.get(tag)
        if decoder is None and tag in LAZY_TAGS:
            importlib.import_module(LAZY_TAGS[tag])
            decoder = DECODERS.get(tag)
        if decoder is None:
            raise DecodeError(f"unknown tag {tag!r} (is the module that registers it imported?)")
        return decoder(data)
    return data


def nest(value: object, depth: int) -> int:
    """Return the depth one level down, failing past MAX_DEPTH (which also catches cycles)."""
    if depth >= MAX_DEPTH:
        reason = f"it is nested more than {MAX_DEPTH} levels deep (is there a reference cycle?)"
        raise Unsupported(value, reason)
    return depth + 1


def encode_items(value: Iterable[object], depth: int) -> list[JSONValue]:
    """Encode the items of a list or tuple; errors get an ``[index]`` path segment."""
    depth = nest(value, depth)
    out: list[JSONValue] = []
    for index, item in enumerate(value):
        try:
            out.append(encode_inner(item, depth))
        except Unsupported as failure:
            failure.segments.append(f"[{index}]")
            raise
    return out


def b64(value: bytes | bytearray | memoryview) -> str:
    """Base64 text of some bytes."""
    return base64.b64encode(value).decode("ascii")


def type_name(value: object) -> str:
    """Qualified type name, without the ``builtins.`` prefix."""
    module, name = type(value).__module__, type(value).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def short_repr(value: object) -> str:
    """repr() cut to a length that keeps error paths readable."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- internals ------------------------------------------------------------------------------


def _encode_other(value: object, depth: int) -> JSONValue:
    """Types without an exact encoder: fallbacks (classes), lazy modules, pickle, or fail."""
    for fallback in FALLBACKS:
        out = fallback(value, depth)
        if out is not NotImplemented:
            return out
    module = type(value).__module__.partition(".")[0]
    if module in LAZY_MODULES and module not in _lazy_loaded:
        importlib.import_module(LAZY_MODULES[module])
        _lazy_loaded.add(module)
        return encode_inner(value, depth)
    if isinstance(value, type):
        raise Unsupported(value, "classes themselves cannot be checkpointed")
    base = next((base for base in type(value).__mro__[1:] if base in ENCODERS), None)
    if _pickle:
        return _encode_pickle(value)
    if base is not None:
        name = base.__qualname__
        reason = f"subclasses of {name} are not supported; convert to a plain {name}"
        raise Unsupported(value, reason)
    raise Unsupported(value, SUPPORTED + " (or register_type / allow_pickle)")


def _encode_pickle(value: object) -> JSONValue:
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise Unsupported(value, f"allow_pickle is on but pickling failed: {exc!r}") from exc
    return {TAG: "pickle", "type": type_name(value), "v": b64(data)}


def _decode_pickle(data: dict[str, Any]) -> object:
    if not _pickle:
        raise DecodeError(
            f"checkpoint holds a pickled {data.get('type')}; call pflambda.allow_pickle() "
            "in the flow's module to load it (only if no one else can write your store)"
        )
    return pickle.loads(base64.b64decode(data["v"], validate=True))  # opt-in: see allow_pickle


def _encode_dict(value: dict[object, object], depth: int) -> JSONValue:
    """Encode a str-keyed dict as itself; other keys or a reserved key use the pairs form."""
    if TAG in value:
        return _encode_pairs(value, depth)
    depth = nest(value, depth)
    out: dict[str, JSONValue] = {}
    for key, item in value.items():
        if type(key) is not str:
            return _encode_pairs(value, depth - 1)
        try:
            out[key] = encode_inner(item, depth)
        except Unsupported as failure:
            failure.segments.append(f"[{short_repr(key)}]")
            raise
    return out


def _encode_pairs(value: dict[object, object], depth: int) -> JSONValue:
    """Encode a dict as ``[[key, value], ...]`` in insertion order."""
    depth = nest(value, depth)
    pairs: list[JSONValue] = []
    for index, (key, item) in enumerate(value.items()):
        try:
            encoded_key = encode_inner(key, depth)
        except Unsupported as failure:
            failure.segments.append(f".keys()[{index}]")
            raise
        try:
            pairs.append([encoded_key, encode_inner(item, depth)])
        except Unsupported as failure:
            failure.segments.append(f"[{short_repr(key)}]")
            raise
    return {TAG: "dict", "v": pairs}


def display_inner(data: Any) -> Any:
    """The plain JSON display form of encoded data (see :func:`to_display_json`)."""
    kind = type(data)
    if kind is list:
        return [display_inner(item) for item in data]
    if kind is dict:
        if TAG not in data:
            return {key: display_inner(item) for key, item in data.items()}
        show = DISPLAYS.get(data[TAG])
        return show(data) if show is not None else display_inner(data.get("v"))
    return data


def _display_pairs(data: dict[str, Any]) -> Any:
    out: dict[str, Any] = {}
    for key, item in data["v"]:
        shown = display_inner(key)
        out[shown if isinstance(shown, str) else _DUMP(shown)] = display_inner(item)
    return out


def _join_path(root: str, segments: list[str]) -> str:
    """Join innermost-first segments into ``root[...]...``, eliding the middle of deep paths."""
    ordered = segments[::-1]
    if len(ordered) > 12:
        ordered = [*ordered[:6], "...", *ordered[-4:]]
    return root + "".join(ordered)


_JSON_TYPES: dict[type, Encoder] = {
    # JSON holds these exactly. Ints wider than 64 bits go as hex: int64 readers stay
    # safe and str() of huge ints hits Python's digit limit. nan and inf are not JSON.
    str: lambda v, d: v,
    bool: lambda v, d: v,
    type(None): lambda v, d: v,
    int: lambda v, d: v if v.bit_length() <= 64 else {TAG: "int", "v": hex(v)},
    float: lambda v, d: v if v - v == 0.0 else {TAG: "float", "v": repr(v)},
    list: encode_items,
    dict: _encode_dict,
}
ENCODERS.update(_JSON_TYPES)
DECODERS.update(
    {
        "dict": lambda d: {decode_inner(key): decode_inner(item) for key, item in d["v"]},
        "int": lambda d: int(d["v"], 16),
        "float": lambda d: float(d["v"]),
        "pickle": _decode_pickle,
    }
)
DISPLAYS.update(
    {
        "dict": _display_pairs,
        "int": lambda d: int(d["v"], 16),
        "float": lambda d: d["v"],
        "pickle": lambda d: f"<pickled {d.get('type')}>",
    }
)

from pflambda.engine import codec_types  # noqa: E402, F401  -- registers the built-in types
