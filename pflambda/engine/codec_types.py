"""The codec's built-in types: the standard library's values, enums, dataclasses, models.

Each registers an encoder (exact type), a decoder (tag) and a display form::

    {"$pf": "tuple" | "set" | "frozenset", "v": [...]}      sets sorted by encoded JSON text
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
``__init__``/validators (their values were valid when checkpointed). Decoding imports
only the classes a checkpoint names, and checks they are enums, dataclasses or models.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import importlib
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import PosixPath, PurePosixPath, PureWindowsPath, WindowsPath
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pflambda.engine.codec import (
    DECODERS,
    DISPLAYS,
    ENCODERS,
    FALLBACKS,
    TAG,
    DecodeError,
    JSONValue,
    Unsupported,
    b64,
    decode_inner,
    display_inner,
    dump_json,
    encode_inner,
    encode_items,
    nest,
    short_repr,
    type_name,
)
from pflambda.engine.view import SharedView

_PATH_TYPES = {
    cls.__name__: cls for cls in (PurePosixPath, PureWindowsPath, PosixPath, WindowsPath)
}


def _encode_set(value: set[object] | frozenset[object], depth: int) -> JSONValue:
    """Encode a set's elements sorted by their JSON text, so equal sets give equal bytes."""
    depth = nest(value, depth)
    out: list[JSONValue] = []
    for item in value:
        try:
            out.append(encode_inner(item, depth))
        except Unsupported as failure:
            failure.segments.append(f"{{{short_repr(item)}}}")
            raise
    out.sort(key=dump_json)
    return {TAG: type(value).__name__, "v": out}


def _encode_clock(value: datetime | time, depth: int) -> JSONValue:
    """Encode a datetime or time as ISO text plus what ISO text cannot carry."""
    out: dict[str, JSONValue] = {TAG: type(value).__name__, "v": value.isoformat()}
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
        reason = f"its tzinfo {type_name(zone)} is not datetime.timezone or a keyed ZoneInfo"
        raise Unsupported(value, reason)
    if value.fold:
        out["fold"] = 1
    return out


def _decode_clock(data: dict[str, Any]) -> object:
    """Rebuild a datetime or time from ISO text, then the zone and fold ISO cannot carry."""
    value: datetime | time = (datetime if data[TAG] == "datetime" else time).fromisoformat(
        data["v"]
    )
    zone = data.get("tz")
    if isinstance(zone, str):
        value = value.replace(tzinfo=ZoneInfo(zone))
    elif zone is not None:
        value = value.replace(tzinfo=timezone(timedelta(microseconds=zone[0]), *zone[1:]))
    return value.replace(fold=data.get("fold", 0))


# --- classes: enums, dataclasses, pydantic models -------------------------------------------

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
    raise Unsupported(value, f"{reason}; define the class at module level in an importable module")


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


def _encode_class_based(value: Any, depth: int) -> Any:
    """Enums, dataclasses and pydantic models (any class), or NotImplemented."""
    cls = type(value)
    if isinstance(value, enum.Enum):
        ref = _class_ref(value)
        return {TAG: "enum", "cls": ref, "v": _encode_fields(value, ("value",), depth)["value"]}
    if isinstance(value, type):
        return NotImplemented
    if hasattr(cls, "__dataclass_fields__"):
        ref = _class_ref(value)
        names = [field.name for field in dataclasses.fields(value)]
        return {TAG: "dataclass", "cls": ref, "v": _encode_fields(value, names, depth)}
    if hasattr(value, "model_dump") and hasattr(cls, "model_validate"):
        return _encode_model(value, depth)
    return NotImplemented


def _encode_model(value: Any, depth: int) -> JSONValue:
    """Encode a pydantic v2 model (duck-typed) by its fields, extras and unset fields."""
    ref = _class_ref(value)
    try:
        names = list(type(value).model_fields)
        extra = list(value.model_extra or ())
        unset = sorted({*names, *extra} - set(value.model_fields_set))
    except AttributeError as exc:
        raise Unsupported(value, f"it looks like a pydantic v2 model but lacks {exc.name}") from exc
    out: dict[str, JSONValue] = {TAG: "model", "cls": ref, "v": _encode_fields(value, names, depth)}
    if extra:
        out["extra"] = _encode_fields(value, extra, depth)
    if unset:
        out["unset"] = list[JSONValue](unset)
    return out


def _encode_fields(value: object, names: Iterable[str], depth: int) -> dict[str, JSONValue]:
    """Encode the named attributes of ``value``; errors get a ``.name`` path segment."""
    depth = nest(value, depth)
    out: dict[str, JSONValue] = {}
    for name in names:
        try:
            out[name] = encode_inner(getattr(value, name), depth)
        except AttributeError as exc:
            raise Unsupported(value, f"its field {name!r} is not set") from exc
        except Unsupported as failure:
            failure.segments.append(f".{name}")
            raise
    return out


def _decode_dataclass(data: dict[str, Any]) -> object:
    """Rebuild a dataclass field by field, without re-running ``__init__``/``__post_init__``."""
    cls: Any = _import_class(data["cls"], "dataclass")
    values: dict[str, Any] = data["v"]
    fields = {field.name: field for field in dataclasses.fields(cls)}
    _check_fields(data["cls"], values, fields)
    obj = cls.__new__(cls)
    for name, field in fields.items():
        if name in values:
            value = decode_inner(values[name])
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
    values = {k: decode_inner(item) for k, item in {**data["v"], **data.get("extra", {})}.items()}
    fields_set = set(values) - set(data.get("unset", ()))
    return cls.model_construct(_fields_set=fields_set, **values)


def _check_fields(ref: str, values: Mapping[str, object], fields: Mapping[str, object]) -> None:
    """Refuse a checkpoint holding fields its class no longer declares."""
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DecodeError(f"checkpoint has fields {unknown} that {ref} no longer declares")


def _display_fields(data: dict[str, Any]) -> Any:
    return {k: display_inner(v) for k, v in {**data["v"], **data.get("extra", {})}.items()}


_STDLIB: dict[type, Any] = {
    SharedView: ENCODERS[dict],
    tuple: lambda value, depth: {TAG: "tuple", "v": encode_items(value, depth)},
    set: _encode_set,
    frozenset: _encode_set,
    bytes: lambda v, d: {TAG: "bytes", "v": b64(v)},
    bytearray: lambda v, d: {TAG: "bytearray", "v": b64(v)},
    datetime: _encode_clock,
    time: _encode_clock,
    date: lambda v, d: {TAG: "date", "v": v.isoformat()},
    timedelta: lambda v, d: {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    Decimal: lambda v, d: {TAG: "decimal", "v": str(v)},
    UUID: lambda v, d: {TAG: "uuid", "v": str(v)},
    **{
        cls: lambda v, d: {TAG: "path", "cls": type(v).__name__, "v": str(v)}
        for cls in _PATH_TYPES.values()
    },
}
ENCODERS.update(_STDLIB)
FALLBACKS.append(_encode_class_based)
DECODERS.update(
    {
        "tuple": lambda d: tuple(decode_inner(item) for item in d["v"]),
        "set": lambda d: {decode_inner(item) for item in d["v"]},
        "frozenset": lambda d: frozenset(decode_inner(item) for item in d["v"]),
        "bytes": lambda d: base64.b64decode(d["v"], validate=True),
        "bytearray": lambda d: bytearray(base64.b64decode(d["v"], validate=True)),
        "datetime": _decode_clock,
        "time": _decode_clock,
        "date": lambda d: date.fromisoformat(d["v"]),
        "timedelta": lambda d: timedelta(*d["v"]),
        "decimal": lambda d: Decimal(d["v"]),
        "uuid": lambda d: UUID(d["v"]),
        "path": lambda d: _PATH_TYPES[d["cls"]](d["v"]),
        "enum": lambda d: _import_class(d["cls"], "enum")(decode_inner(d["v"])),
        "dataclass": _decode_dataclass,
        "model": _decode_model,
    }
)
DISPLAYS.update(
    {
        "timedelta": lambda d: timedelta(*d["v"]).total_seconds(),
        "dataclass": _display_fields,
        "model": _display_fields,
    }
)
