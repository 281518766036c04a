"""Tests for the shared-state codec: exact round-trips, determinism, escapes and failures."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import pickle
import socket
import subprocess
import sys
import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path, PosixPath, PurePosixPath, PureWindowsPath
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from pflambda.engine.codec import (
    MAX_DEPTH,
    DecodeError,
    decode,
    decode_key,
    dumps,
    encode,
    encode_key,
    loads,
)
from pflambda.errors import PflambdaError, SerializationError
from tests.budget import examples

# --- module-level classes the codec can import back ---------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = (1, 2)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


@dataclass
class Box:
    item: Any
    label: str = "box"


@dataclass(frozen=True)
class Pair:
    left: Any
    right: Any


@dataclass(slots=True)
class Slotted:
    a: Any
    b: list[Any] = field(default_factory=list)


@dataclass
class Counted:
    """__post_init__ is not idempotent: restoring must not re-run it."""

    n: int
    doubled: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.n += 1
        self.doubled = self.n * 2


@dataclass
class Titled:
    title: Any


class Doc(BaseModel):
    title: str
    tags: tuple[str, ...] = ()
    meta: Any = None


class Library(BaseModel):
    name: str
    docs: list[Doc] = []
    anything: Any = None


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    x: int = 0


class Aliased(BaseModel):
    user_name: str = Field(alias="userName")


class Opaque:
    """An ordinary class the codec must refuse."""


class OddZone(tzinfo):
    """A tzinfo that is neither datetime.timezone nor ZoneInfo."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "ODD"


# --- exact comparison ----------------------------------------------------------------------


def assert_same(a: object, b: object) -> None:
    """Assert ``b`` is an exact copy of ``a``: same types all the way down, same order, nan-safe."""
    assert type(a) is type(b), f"{type(a)} != {type(b)}: {a!r} vs {b!r}"
    if isinstance(a, dict):
        assert isinstance(b, dict)
        assert len(a) == len(b)
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
            assert_same(ka, kb)
            assert_same(va, vb)
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, set | frozenset):
        assert isinstance(b, set | frozenset)
        assert a == b
        assert sorted(map(dumps, a)) == sorted(map(dumps, b))
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, BaseModel):
        assert isinstance(b, BaseModel)
        assert_same(dict(a), dict(b))
        assert a.model_fields_set == b.model_fields_set
    elif isinstance(a, int):
        assert a == b
    else:
        assert repr(a) == repr(b)


def round_trip(value: object) -> object:
    """Encode to text and back, checking the text is stable and valid strict JSON."""
    text = dumps(value)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    restored = loads(text)
    assert dumps(restored) == text
    return restored


# --- strategies ------------------------------------------------------------------------------

offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23))
offsets |= st.timedeltas(min_value=timedelta(seconds=-2), max_value=timedelta(seconds=2))
fixed_zones = st.builds(timezone, offsets) | st.builds(timezone, offsets, st.sampled_from(["CET"]))
zones = st.none() | st.timezones() | fixed_zones
reserved_text = st.sampled_from(["$pf", "$pf:", "$pf:1", "$pfx", "v", "cls"])
keys_text = st.text() | reserved_text
docs = st.builds(Doc, title=st.text())
# Drive + parts: pathlib's Windows parser is not idempotent on junk like "//://", so
# str(path) cannot restore those; real Windows paths round-trip.
windows_paths = st.builds(
    lambda drive, parts: PureWindowsPath(drive, *parts),
    st.sampled_from(["", "C:", "C:\\", "\\\\server\\share\\", "\\"]),
    st.lists(st.text(alphabet="ab. -", min_size=1), max_size=3),
)

HASHABLE_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | keys_text
    | st.binary()
    | st.datetimes(timezones=zones)
    | st.dates()
    | st.times(timezones=zones)
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.sampled_from([*Color, *Level, Perm.R | Perm.W, Perm.X])
    | st.builds(PurePosixPath, st.text())
    | st.builds(PosixPath, st.text())
    | windows_paths
)


def compact(strategy: st.SearchStrategy[Any], name: str) -> st.SearchStrategy[Any]:
    """Draw from ``strategy`` through a composite whose repr is just ``name()``.

    Recursive strategies otherwise have reprs that grow exponentially with depth, and
    hypothesis renders them while drawing (warning about it, and warnings are errors here).
    """

    def draw_from(draw: st.DrawFn) -> Any:
        return draw(strategy)

    draw_from.__name__ = draw_from.__qualname__ = name
    return st.composite(draw_from)()


def hashable_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Hashable containers holding ``inner`` values."""
    inner = compact(inner, "hashable_inner")
    return (
        st.lists(inner, max_size=4).map(tuple)
        | st.frozensets(inner, max_size=4)
        | st.builds(Pair, inner, inner)
    )


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Every container the codec supports, holding ``inner`` values."""
    inner = compact(inner, "inner")
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(keys_text, inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
        | st.builds(Box, inner, st.text())
        | st.builds(Slotted, inner, st.lists(inner, max_size=2))
        | st.builds(Doc, title=st.text(), tags=st.lists(st.text()).map(tuple), meta=inner)
        | st.builds(Library, name=st.text(), docs=st.lists(docs, max_size=2), anything=inner)
    )


hashables = compact(st.recursive(HASHABLE_SCALARS, hashable_containers, max_leaves=10), "hashables")
scalars = (
    HASHABLE_SCALARS
    | st.floats()
    | st.decimals()
    | st.binary().map(bytearray)
    | st.builds(Titled, st.text())
)
values = compact(st.recursive(scalars, containers, max_leaves=20), "values")


# --- round-trip properties -------------------------------------------------------------------


@settings(max_examples=examples(300), deadline=None)
@given(values)
def test_any_supported_value_round_trips_exactly(value: object) -> None:
    assert_same(value, round_trip(value))


@settings(max_examples=examples(200), deadline=None)
@given(hashables)
def test_any_hashable_key_round_trips_exactly(key: object) -> None:
    text = encode_key(key)
    assert_same(key, decode_key(text))
    if type(key) is str and not key.startswith("$pf"):
        assert text == key


@settings(max_examples=examples(200), deadline=None)
@given(hashables, hashables)
def test_different_keys_give_different_strings(a: object, b: object) -> None:
    if encode_key(a) == encode_key(b):
        assert_same(a, b)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(hashables, max_size=8, unique=True), st.randoms())
def test_set_text_does_not_depend_on_insertion_order(items: list[object], rng: Any) -> None:
    # Items are unique by equality: equal items of different type or zone (``1`` and ``True``,
    # ``Pair(0, 0)`` and ``Pair(False, 0)``, one instant in two zones) make sets that hold
    # different objects depending on which came first -- see the test below.
    shuffled = list(items)
    rng.shuffle(shuffled)
    forward, backward = set(), set()
    for item in [*items, *items]:
        forward.add(item)
    for item in shuffled:
        backward.add(item)
    assert dumps(forward) == dumps(backward)
    assert dumps(frozenset(items)) == dumps(frozenset(reversed(items)))


def test_a_set_of_equal_items_encodes_the_one_it_holds() -> None:
    # A set keeps the first of two equal items; the codec records exactly what the set holds,
    # so the round trip gives back True, not 1 (and the other way round).
    holds_true, holds_one = {True, 1}, {1, True}
    assert holds_true == holds_one
    assert dumps(holds_true) != dumps(holds_one)
    assert_same(holds_true, round_trip(holds_true))
    assert_same(holds_one, round_trip(holds_one))
    moscow = datetime(2024, 1, 1, 12, tzinfo=ZoneInfo("Europe/Moscow"))
    utc = datetime(2024, 1, 1, 9, tzinfo=UTC)
    assert moscow == utc
    assert [d.tzinfo for d in round_trip({moscow, utc})] == [ZoneInfo("Europe/Moscow")]
    assert [d.tzinfo for d in round_trip({utc, moscow})] == [UTC]


@settings(max_examples=examples(100), deadline=None)
@given(values)
def test_encoding_twice_gives_identical_text(value: object) -> None:
    assert dumps(value) == dumps(value)
    assert json.dumps(encode(value), ensure_ascii=False, separators=(",", ":")) == dumps(value)


def test_set_text_is_the_same_across_hash_seeds() -> None:
    program = "from pflambda.engine.codec import dumps; print(dumps({'a', 'b', ('x', 1), 2.5}))"
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1


# --- exact types and plain JSON --------------------------------------------------------------


def test_plain_json_encodes_to_itself_in_insertion_order() -> None:
    value = {"zeta": 1, "alpha": [1.5, "x", None, True, {"n": -3}], "": 2**64 - 1}
    assert encode(value) == value
    assert dumps(value) == '{"zeta":1,"alpha":[1.5,"x",null,true,{"n":-3}],"":18446744073709551615}'
    assert dumps({"é": "☃"}) == '{"é":"☃"}'


@pytest.mark.parametrize(
    "value",
    [
        (1, (2, 3)),
        {1: "a", (2, "b"): [3], None: 4, 1.5: 5, frozenset({1}): 6},
        {True: "t", 2: "n"},
        [set(), frozenset(), {1, "1"}],
        b"\x00\xff",
        bytearray(b"ab"),
        2**64,
        -(2**64),
        10**5000,
        -0.0,
        float("inf"),
        float("-inf"),
        Decimal("1.10"),
        Decimal("-0"),
        Decimal("Infinity"),
        Decimal("-sNaN12"),
        Decimal("1E+1000"),
        datetime(2024, 2, 29, 23, 59, 59, 999999),  # noqa: DTZ001 - naive on purpose
        datetime(2024, 2, 29, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-5, seconds=1))),
        datetime(2024, 10, 27, 1, 30, fold=1, tzinfo=ZoneInfo("Europe/London")),
        time(1, 2, 3, 4, tzinfo=timezone(timedelta(hours=1), "CET")),
        time(tzinfo=timezone(timedelta(microseconds=-1))),
        datetime(2000, 1, 1, tzinfo=timezone(timedelta(microseconds=999_999))),
        date(1, 1, 1),
        timedelta(days=-3, microseconds=7),
        uuid.UUID(int=42),
        Path("a/b"),
        PureWindowsPath(r"C:\a\b"),
        Color.BLUE,
        Level.HIGH,
        Perm.R | Perm.W,
        Pair(Pair(1, (2,)), frozenset({3})),
        Library(name="lib", docs=[Doc(title="a", meta={(1, 2)})], anything=Doc(title="any")),
    ],
    ids=lambda value: type(value).__name__,
)
def test_examples_keep_exact_types(value: object) -> None:
    assert_same(value, round_trip(value))


def test_nan_float_and_decimal_round_trip() -> None:
    restored = round_trip([float("nan"), Decimal("NaN")])
    assert isinstance(restored, list)
    assert restored[0] != restored[0]
    assert repr(restored[1]) == "Decimal('NaN')"


def test_huge_int_is_tagged_not_digits() -> None:
    assert encode(2**64) == {"$pf": "int", "v": "0x10000000000000000"}
    assert encode(2**64 - 1) == 2**64 - 1


def test_user_dict_with_reserved_key_is_escaped() -> None:
    value = {"$pf": "tuple", "v": [1, 2]}
    encoded = encode(value)
    assert encoded == {"$pf": "dict", "v": [["$pf", "tuple"], ["v", [1, 2]]]}
    assert_same(value, decode(encoded))
    assert_same({"x": value}, round_trip({"x": value}))


def test_reserved_looking_str_keys_are_escaped_and_round_trip() -> None:
    for key in ["$pf", "$pf:", "$pf:1", '$pf:"a"', "$pfx"]:
        assert encode_key(key) != key
        assert decode_key(encode_key(key)) == key
    assert encode_key("plain") == "plain"
    assert encode_key("") == ""


def test_equal_keys_of_different_types_stay_distinct() -> None:
    keys = [1, True, 1.0, "1", Decimal(1)]
    assert len({encode_key(key) for key in keys}) == len(keys)
    assert type(decode_key(encode_key(True))) is bool
    assert type(decode_key(encode_key(1))) is int


def test_dataclass_restore_does_not_rerun_post_init() -> None:
    counted = Counted(1)
    assert (counted.n, counted.doubled) == (2, 4)
    restored = round_trip(counted)
    assert isinstance(restored, Counted)
    assert (restored.n, restored.doubled) == (2, 4)


def test_dataclass_field_added_since_checkpoint_gets_its_default() -> None:
    data = {"$pf": "dataclass", "cls": f"{__name__}:Box", "v": {"item": 1}}
    assert_same(Box(1), decode(data))


def test_pydantic_model_keeps_fields_set_extras_and_aliases() -> None:
    loose = Loose(extra_thing=(1, 2))  # type: ignore[call-arg]
    restored = round_trip(loose)
    assert isinstance(restored, Loose)
    assert restored.model_extra == {"extra_thing": (1, 2)}
    assert restored.model_fields_set == {"extra_thing"}
    assert restored.model_dump(exclude_unset=True) == {"extra_thing": (1, 2)}
    aliased = Aliased(userName="ada")
    assert_same(aliased, round_trip(aliased))


# --- failures --------------------------------------------------------------------------------


def failure(value: object) -> SerializationError:
    with pytest.raises(SerializationError) as caught:
        dumps(value)
    return caught.value


def test_socket_failure_names_path_and_type() -> None:
    with socket.socket() as sock:
        error = failure({"docs": [1, 2, 3, Titled(title=sock)]})
    assert error.path == "shared['docs'][3].title"
    assert error.type_name == "socket.socket"
    assert str(error).startswith("cannot serialise shared['docs'][3].title of type socket.socket: ")
    assert isinstance(error, PflambdaError)


@pytest.mark.parametrize(
    ("value", "path", "type_name"),
    [
        ({"f": lambda: 1}, "shared['f']", "function"),
        ([Opaque()], "shared[0]", f"{__name__}.Opaque"),
        ({"g": (x for x in [])}, "shared['g']", "generator"),
        ({"s": {1, Opaque}}, "shared['s']{<class '" + __name__ + ".Opaque'>}", "type"),
        ({Opaque(): 1}, "shared.keys()[0]", f"{__name__}.Opaque"),
        ({(1, 2): [object()]}, "shared[(1, 2)][0]", "object"),
        ({"o": OrderedDict(a=1)}, "shared['o']", "collections.OrderedDict"),
        ({"d": defaultdict(list)}, "shared['d']", "collections.defaultdict"),
        ({"m": Doc(title="t", meta=[print])}, "shared['m'].meta[0]", "builtin_function_or_method"),
        ({"t": datetime(2020, 1, 1, tzinfo=OddZone())}, "shared['t']", "datetime.datetime"),
    ],
)
def test_unsupported_values_fail_with_path_and_type(value: object, path: str, type_name: str):
    error = failure(value)
    assert (error.path, error.type_name) == (path, type_name)
    assert f"cannot serialise {path} of type {type_name}: " in str(error)


def test_subclass_of_builtin_says_what_to_convert_to() -> None:
    assert "convert to a plain dict" in str(failure(OrderedDict()))


def test_custom_path_is_used_in_messages() -> None:
    with pytest.raises(SerializationError, match=r"cannot serialise state\['x'\] of type"):
        dumps({"x": Opaque()}, path="state")


def test_cycles_fail_cleanly() -> None:
    looped: dict[str, object] = {}
    looped["self"] = looped
    error = failure(looped)
    assert error.type_name == "dict"
    assert "reference cycle" in str(error)
    assert error.path.startswith("shared['self']['self']")
    listed: list[object] = []
    listed.append(listed)
    assert "reference cycle" in str(failure(listed))


def test_thousand_deep_list_fails_without_recursion_error() -> None:
    deep: list[object] = []
    for _ in range(1000):
        deep = [deep]
    error = failure(deep)
    assert f"more than {MAX_DEPTH} levels" in str(error)


def test_nesting_up_to_the_limit_round_trips() -> None:
    deep: object = {1: ()}
    for _ in range(MAX_DEPTH - 2):
        deep = (deep,)
    assert_same(deep, round_trip(deep))
    deepest: object = 1
    for _ in range(MAX_DEPTH - 1):  # pairs-form dicts: three JSON levels per level
        deepest = {(1,): deepest}
    assert_same(deepest, round_trip(deepest))
    with pytest.raises(SerializationError):
        dumps({(1,): deepest})


def test_class_defined_in_a_function_fails_at_encode_time() -> None:
    @dataclass
    class Local:
        x: int

    class LocalModel(BaseModel):
        x: int

    class LocalEnum(enum.Enum):
        A = 1

    for value in (Local(1), LocalModel(x=1), LocalEnum.A):
        error = failure({"k": value})
        assert error.path == "shared['k']"
        assert "<locals>" in error.type_name
        assert "defined inside a function" in str(error)
        assert "module level" in str(error)


def test_class_in_main_or_not_importable_fails_at_encode_time() -> None:
    in_main = dataclasses.make_dataclass("InMain", ["x"])
    in_main.__module__, in_main.__qualname__ = "__main__", "InMain"
    assert "defined in __main__" in str(failure(in_main(1)))
    ghost = dataclasses.make_dataclass("Ghost", ["x"])
    ghost.__module__, ghost.__qualname__ = __name__, "NoSuchName"
    assert "does not give this class back" in str(failure(ghost(1)))


def test_unhashable_key_is_refused() -> None:
    with pytest.raises(SerializationError, match="unhashable"):
        encode_key([1])


def test_with_node_names_the_node_and_keeps_details() -> None:
    error = failure({"x": Opaque()})
    named = error.with_node("Summarise")
    assert named.node == "Summarise"
    assert (named.path, named.type_name) == (error.path, error.type_name)
    assert str(named) == f"node 'Summarise': {error}"
    assert error.node is None
    again = pickle.loads(pickle.dumps(named))
    assert (str(again), again.node) == (str(named), "Summarise")


# --- malformed checkpoints -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"$pf": "nope", "v": 1},
        {"$pf": "tuple"},
        {"$pf": "bytes", "v": "!!"},
        {"$pf": "enum", "cls": f"{__name__}:Color", "v": "green"},
        {"$pf": "dataclass", "cls": "builtins:int", "v": {}},
        {"$pf": "dataclass", "cls": f"{__name__}:Box", "v": {"item": 1, "gone": 2}},
        {"$pf": "dataclass", "cls": f"{__name__}:Pair", "v": {"left": 1}},
        {"$pf": "model", "cls": "no.such.module:Thing", "v": {}},
        {"$pf": "set", "v": [[1]]},
        {"$pf": "decimal", "v": "one"},
        {"$pf": "timedelta", "v": [10**12, 0, 0]},
        {"$pf": "path", "cls": "WindowsPath", "v": "C:\\x"},
        {"$pf": "path", "cls": "str", "v": "x"},
        {"$pf": "datetime", "v": "2020-01-01", "tz": "No/Such_Zone"},
        {"$pf": "model", "cls": f"{__name__}:Doc", "v": {"title": "t", "gone": 1}},
    ],
)
def test_malformed_checkpoints_raise_decode_error(data: Any) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def test_malformed_text_and_keys_raise_decode_error() -> None:
    with pytest.raises(DecodeError):
        loads("{not json")
    with pytest.raises(DecodeError):
        loads("[" * 100_000)
    with pytest.raises(DecodeError):
        decode_key("$pfx")
