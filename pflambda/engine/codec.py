"""Shared-state codec: the tagged JSON that checkpoints PocketFlow's ``shared`` exactly.

Plain JSON values (str, bool, None, finite float, int up to 64 bits, list, str-keyed dict)
encode to themselves, so checkpoints stay readable.  Everything else becomes a tagged object
whose reserved key is ``"$pf"``::

    {"$pf": "tuple" | "set" | "frozenset", "v": [...]}      sets sorted by encoded JSON text
    {"$pf": "dict", "v": [[key, value], ...]}                non-str keys, or a "$pf" key
    {"$pf": "int", "v": "-0x1f..."}                          ints wider than 64 bits
    {"$pf": "float", "v": "nan" | "inf" | "-inf"}
    {"$pf": "bytes" | "bytearray", "v": "<base64>"}
    {"$pf": "datetime" | "time", "v": "<isoformat>"}        + "fold": 1 and "tz": a ZoneInfo
    {"$pf": "date", "v": "<isoformat>"}                        key or [offset_us, (tzname)]
    {"$pf": "timedelta", "v": [days, seconds, microseconds]}
    {"$pf": "decimal" | "uuid", "v": "<str>"}
    {"$pf": "path", "cls": "PurePosixPath", "v": "<str>"}
    {"$pf": "enum", "cls": "module:Qual.Name", "v": <encoded value>}
    {"$pf": "dataclass" | "model", "cls": "module:Qual.Name", "v": {field: <encoded>}}
                                                             models add "extra" and "unset"

Dataclasses and pydantic models are restored field for field, without re-running
``__init__``/validators (their values were valid when checkpointed).  There is no pickle:
decoding only imports the classes a checkpoint names and checks they are enums, dataclasses
or models.  Anything unsupported raises :class:`SerializationError` naming its path and type.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import importlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import PosixPath, PurePosixPath, PureWindowsPath, WindowsPath
from types import NoneType
from typing import Any, TypeAlias
from uuid import UUID
from zoneinfo import ZoneInfo

from pflambda.errors import PflambdaError, SerializationError

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

MAX_DEPTH = 100
"""Deepest container nesting encoded; deeper (or cyclic) values raise SerializationError."""

_TAG = "$pf"
_SUPPORTED = (
    "only JSON types, tuple, set, frozenset, bytes, bytearray, datetime types, Decimal, UUID,"
    " pathlib paths, enums, dataclasses and pydantic models can be checkpointed"
)
_KEY_ESCAPE = _TAG + ":"
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
_PATH_TYPES = {
    cls.__name__: cls for cls in (PurePosixPath, PureWindowsPath, PosixPath, WindowsPath)
}
_DUMP = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


class DecodeError(PflambdaError, ValueError):
    """A checkpoint is malformed, or names a class that can no longer restore it."""


class _Failure(Exception):
    """Unwinds an encode failure; containers append path segments, innermost first."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(reason)
        self.type_name = _type_name(value)
        self.reason = reason
        self.segments: list[str] = []


def encode(value: object, path: str = "shared") -> JSONValue:
    """Turn ``value`` into a JSON-compatible structure; ``path`` names it in errors."""
    try:
        return _encode(value, 0)
    except _Failure as failure:
        where = _join_path(path, failure.segments)
        error = SerializationError(where, failure.type_name, failure.reason)
        raise error from failure.__cause__


def decode(data: JSONValue) -> object:
    """Rebuild the value that :func:`encode` turned into ``data``."""
    try:
        return _decode(data)
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


def encode_key(key: object) -> str:
    """Return a stable, distinct string for any encodable hashable dict key.

    str keys map to themselves unless they start with ``"$pf"``; those and all other keys
    become ``"$pf:" + dumps(key)``.  Keys that are equal but of different types (``1``,
    ``1.0``, ``True``) get different strings; a dict holds only one of them, and
    :func:`decode_key` gives back exactly the key object that dict holds.
    """
    if type(key) is str and not key.startswith(_TAG):
        return key
    try:
        hash(key)
    except TypeError as exc:
        raise SerializationError("key", _type_name(key), "it is unhashable") from exc
    return _KEY_ESCAPE + dumps(key, path="key")


def decode_key(text: str) -> object:
    """Invert :func:`encode_key`."""
    if not text.startswith(_TAG):
        return text
    if not text.startswith(_KEY_ESCAPE):
        raise DecodeError(f"malformed key {text!r}: reserved prefix {_TAG!r} without ':'")
    return loads(text[len(_KEY_ESCAPE) :])


# --- encoding -------------------------------------------------------------------------------


def _encode(value: object, depth: int) -> JSONValue:
    """Dispatch on the exact type; subclasses, enums, dataclasses and models go the slow way."""
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        return _encode_other(value, depth)
    return encoder(value, depth)


def _encode_other(value: object, depth: int) -> JSONValue:
    """Encode class-based values restored by import, or fail naming what is supported."""
    cls = type(value)
    if isinstance(value, enum.Enum):
        ref = _class_ref(value)
        return {_TAG: "enum", "cls": ref, "v": _encode_fields(value, ("value",), depth)["value"]}
    if isinstance(value, type):
        raise _Failure(value, "classes themselves cannot be checkpointed")
    if hasattr(cls, "__dataclass_fields__"):
        ref = _class_ref(value)
        names = [field.name for field in dataclasses.fields(value)]  # type: ignore[arg-type]
        return {_TAG: "dataclass", "cls": ref, "v": _encode_fields(value, names, depth)}
    if hasattr(value, "model_dump") and hasattr(cls, "model_validate"):
        return _encode_model(value, depth)
    base = next((base for base in cls.__mro__[1:] if base in _ENCODERS), None)
    if base is not None:
        name = base.__qualname__
        raise _Failure(value, f"subclasses of {name} are not supported; convert to a plain {name}")
    raise _Failure(value, _SUPPORTED)


def _encode_model(value: Any, depth: int) -> JSONValue:
    """Encode a pydantic v2 model (duck-typed) by its fields, extras and unset fields."""
    ref = _class_ref(value)
    try:
        names = list(type(value).model_fields)
        extra = list(value.model_extra or ())
        unset = sorted({*names, *extra} - set(value.model_fields_set))
    except AttributeError as exc:
        raise _Failure(value, f"it looks like a pydantic v2 model but lacks {exc.name}") from exc
    out: dict[str, JSONValue] = {
        _TAG: "model",
        "cls": ref,
        "v": _encode_fields(value, names, depth),
    }
    if extra:
        out["extra"] = _encode_fields(value, extra, depth)
    if unset:
        out["unset"] = list[JSONValue](unset)
    return out


def _encode_fields(value: object, names: Iterable[str], depth: int) -> dict[str, JSONValue]:
    """Encode the named attributes of ``value``; errors get a ``.name`` path segment."""
    depth = _enter(value, depth)
    out: dict[str, JSONValue] = {}
    for name in names:
        try:
            out[name] = _encode(getattr(value, name), depth)
        except AttributeError as exc:
            raise _Failure(value, f"its field {name!r} is not set") from exc
        except _Failure as failure:
            failure.segments.append(f".{name}")
            raise
    return out


def _enter(value: object, depth: int) -> int:
    """Return the depth one level down, failing past MAX_DEPTH (which also catches cycles)."""
    if depth >= MAX_DEPTH:
        reason = f"it is nested more than {MAX_DEPTH} levels deep (is there a reference cycle?)"
        raise _Failure(value, reason)
    return depth + 1


def _encode_items(value: Iterable[object], depth: int) -> list[JSONValue]:
    """Encode the items of a list or tuple; errors get an ``[index]`` path segment."""
    depth = _enter(value, depth)
    out: list[JSONValue] = []
    for index, item in enumerate(value):
        try:
            out.append(_encode(item, depth))
        except _Failure as failure:
            failure.segments.append(f"[{index}]")
            raise
    return out


def _encode_set(value: set[object] | frozenset[object], depth: int) -> JSONValue:
    """Encode a set's elements sorted by their JSON text, so equal sets give equal bytes."""
    depth = _enter(value, depth)
    out: list[JSONValue] = []
    for item in value:
        try:
            out.append(_encode(item, depth))
        except _Failure as failure:
            failure.segments.append(f"{{{_short_repr(item)}}}")
            raise
    out.sort(key=_DUMP)
    return {_TAG: type(value).__name__, "v": out}


def _encode_dict(value: dict[object, object], depth: int) -> JSONValue:
    """Encode a str-keyed dict as itself; other keys or a reserved key use the pairs form."""
    if _TAG in value:
        return _encode_pairs(value, depth)
    depth = _enter(value, depth)
    out: dict[str, JSONValue] = {}
    for key, item in value.items():
        if type(key) is not str:
            return _encode_pairs(value, depth - 1)
        try:
            out[key] = _encode(item, depth)
        except _Failure as failure:
            failure.segments.append(f"[{_short_repr(key)}]")
            raise
    return out


def _encode_pairs(value: dict[object, object], depth: int) -> JSONValue:
    """Encode a dict as ``[[key, value], ...]`` in insertion order."""
    depth = _enter(value, depth)
    pairs: list[JSONValue] = []
    for index, (key, item) in enumerate(value.items()):
        try:
            encoded_key = _encode(key, depth)
        except _Failure as failure:
            failure.segments.append(f".keys()[{index}]")
            raise
        try:
            pairs.append([encoded_key, _encode(item, depth)])
        except _Failure as failure:
            failure.segments.append(f"[{_short_repr(key)}]")
            raise
    return {_TAG: "dict", "v": pairs}


def _encode_clock(value: datetime | time, depth: int) -> JSONValue:
    """Encode a datetime or time as ISO text plus what ISO text cannot carry."""
    out: dict[str, JSONValue] = {_TAG: type(value).__name__, "v": value.isoformat()}
    zone, offset = value.tzinfo, value.utcoffset() or timedelta()
    if isinstance(zone, ZoneInfo) and zone.key is not None:
        out["tz"] = zone.key
    elif isinstance(zone, timezone):
        # fromisoformat() in 3.11 reads offsets under a second as UTC, and drops custom names.
        name = zone.tzname(None)
        named = name != timezone(offset).tzname(None)
        if offset.microseconds or named:
            out["tz"] = [offset // timedelta(microseconds=1), *([name] if named else [])]
    elif zone is not None:
        reason = f"its tzinfo {_type_name(zone)} is not datetime.timezone or a keyed ZoneInfo"
        raise _Failure(value, reason)
    if value.fold:
        out["fold"] = 1
    return out


def _b64(value: bytes | bytearray) -> str:
    """Base64 text of some bytes."""
    return base64.b64encode(value).decode("ascii")


_ENCODERS: dict[type, Callable[[Any, int], JSONValue]] = {
    # JSON holds these exactly.  Ints wider than 64 bits go as hex: int64 readers stay safe
    # and str() of huge ints hits Python's digit limit.  nan and infinities are not JSON.
    str: lambda v, d: v,
    bool: lambda v, d: v,
    NoneType: lambda v, d: v,
    int: lambda v, d: v if v.bit_length() <= 64 else {_TAG: "int", "v": hex(v)},
    float: lambda v, d: v if v - v == 0.0 else {_TAG: "float", "v": repr(v)},
    list: _encode_items,
    dict: _encode_dict,
    tuple: lambda value, depth: {_TAG: "tuple", "v": _encode_items(value, depth)},
    set: _encode_set,
    frozenset: _encode_set,
    bytes: lambda v, d: {_TAG: "bytes", "v": _b64(v)},
    bytearray: lambda v, d: {_TAG: "bytearray", "v": _b64(v)},
    datetime: _encode_clock,
    time: _encode_clock,
    date: lambda v, d: {_TAG: "date", "v": v.isoformat()},
    timedelta: lambda v, d: {_TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    Decimal: lambda v, d: {_TAG: "decimal", "v": str(v)},
    UUID: lambda v, d: {_TAG: "uuid", "v": str(v)},
    **{
        cls: lambda v, d: {_TAG: "path", "cls": type(v).__name__, "v": str(v)}
        for cls in _PATH_TYPES.values()
    },
}


# --- classes --------------------------------------------------------------------------------

_CLASS_REFS: dict[type, str] = {}


def _class_ref(value: object) -> str:
    """Return ``module:qualname`` for the class of ``value``, checking it imports back."""
    cls = type(value)
    ref = _CLASS_REFS.get(cls)
    if ref is not None:
        return ref
    ref = f"{cls.__module__}:{cls.__qualname__}"
    if "<locals>" in cls.__qualname__:
        reason = "it is defined inside a function, so a resumed Lambda cannot import it"
    elif cls.__module__ == "__main__":
        reason = "it is defined in __main__, which a resumed Lambda cannot import"
    else:
        try:
            found: object = _lookup_class(ref)
        except (ImportError, AttributeError, DecodeError):
            found = None
        if found is cls:
            _CLASS_REFS[cls] = ref
            return ref
        reason = f"importing {ref} does not give this class back"
    raise _Failure(value, f"{reason}; define the class at module level in an importable module")


def _lookup_class(ref: str) -> type:
    """Import ``module:qualname`` and return the class it names."""
    module, _, qualname = ref.partition(":")
    found: object = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, type):
        raise DecodeError(f"{ref} is not a class")
    return found


_KIND_CHECKS: dict[str, Callable[[type], bool]] = {
    "enum": lambda cls: issubclass(cls, enum.Enum),
    "dataclass": dataclasses.is_dataclass,
    "model": lambda cls: hasattr(cls, "model_construct") and hasattr(cls, "model_fields"),
}


@functools.lru_cache(maxsize=512)
def _import_class(ref: str, kind: str) -> type:
    """Import a class named by a checkpoint, checking it is the ``kind`` the tag claims."""
    cls = _lookup_class(ref)
    if not _KIND_CHECKS[kind](cls):
        raise DecodeError(f"checkpoint says {ref} is a {kind}, but it is not")
    return cls


# --- decoding -------------------------------------------------------------------------------


def _decode(data: Any) -> object:
    """Rebuild one value: lists and untagged dicts recurse, tagged dicts dispatch on the tag."""
    kind = type(data)
    if kind is list:
        return [_decode(item) for item in data]
    if kind is dict:
        if _TAG not in data:
            return {key: _decode(item) for key, item in data.items()}
        decoder = _DECODERS.get(data[_TAG])
        if decoder is None:
            raise DecodeError(f"unknown tag {data[_TAG]!r}")
        return decoder(data)
    return data


def _decode_clock(data: dict[str, Any]) -> object:
    """Rebuild a datetime or time from ISO text, then the zone and fold ISO cannot carry."""
    value: datetime | time = (datetime if data[_TAG] == "datetime" else time).fromisoformat(
        data["v"]
    )
    zone = data.get("tz")
    if isinstance(zone, str):
        value = value.replace(tzinfo=ZoneInfo(zone))
    elif zone is not None:
        value = value.replace(tzinfo=timezone(timedelta(microseconds=zone[0]), *zone[1:]))
    return value.replace(fold=data.get("fold", 0))


def _decode_dataclass(data: dict[str, Any]) -> object:
    """Rebuild a dataclass field by field, without re-running ``__init__``/``__post_init__``."""
    cls: Any = _import_class(data["cls"], "dataclass")
    values: dict[str, Any] = data["v"]
    fields = {field.name: field for field in dataclasses.fields(cls)}
    _check_fields(data["cls"], values, fields)
    obj = cls.__new__(cls)
    for name, field in fields.items():
        if name in values:
            value = _decode(values[name])
        elif field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            raise DecodeError(
                f"checkpoint lacks field {name!r} of {data['cls']}, which has no default"
            )
        object.__setattr__(obj, name, value)
    return obj


def _decode_model(data: dict[str, Any]) -> object:
    """Rebuild a pydantic model with ``model_construct``: exact values, fields-set kept."""
    cls: Any = _import_class(data["cls"], "model")
    _check_fields(data["cls"], data["v"], cls.model_fields)
    values = {name: _decode(item) for name, item in {**data["v"], **data.get("extra", {})}.items()}
    fields_set = set(values) - set(data.get("unset", ()))
    return cls.model_construct(_fields_set=fields_set, **values)


def _check_fields(ref: str, values: Mapping[str, object], fields: Mapping[str, object]) -> None:
    """Refuse a checkpoint holding fields its class no longer declares."""
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DecodeError(f"checkpoint has fields {unknown} that {ref} no longer declares")


_DECODERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "dict": lambda d: {_decode(key): _decode(item) for key, item in d["v"]},
    "tuple": lambda d: tuple(_decode(item) for item in d["v"]),
    "set": lambda d: {_decode(item) for item in d["v"]},
    "frozenset": lambda d: frozenset(_decode(item) for item in d["v"]),
    "int": lambda d: int(d["v"], 16),
    "float": lambda d: float(d["v"]),
    "bytes": lambda d: base64.b64decode(d["v"], validate=True),
    "bytearray": lambda d: bytearray(base64.b64decode(d["v"], validate=True)),
    "datetime": _decode_clock,
    "time": _decode_clock,
    "date": lambda d: date.fromisoformat(d["v"]),
    "timedelta": lambda d: timedelta(*d["v"]),
    "decimal": lambda d: Decimal(d["v"]),
    "uuid": lambda d: UUID(d["v"]),
    "path": lambda d: _PATH_TYPES[d["cls"]](d["v"]),
    "enum": lambda d: _import_class(d["cls"], "enum")(_decode(d["v"])),
    "dataclass": _decode_dataclass,
    "model": _decode_model,
}


# --- paths ----------------------------------------------------------------------------------


def _type_name(value: object) -> str:
    """Qualified type name, without the ``builtins.`` prefix."""
    module, name = type(value).__module__, type(value).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def _short_repr(value: object) -> str:
    """repr() cut to a length that keeps error paths readable."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join_path(root: str, segments: list[str]) -> str:
    """Join innermost-first segments into ``root[...]...``, eliding the middle of deep paths."""
    ordered = segments[::-1]
    if len(ordered) > 12:
        ordered = [*ordered[:6], "...", *ordered[-4:]]
    return root + "".join(ordered)
