"""The codec's type registry: user types, pickle opt-in, numpy/pandas lazily, display JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import subprocess
import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel

from pflambda.engine import codec
from pflambda.errors import SerializationError

ROOT = Path(__file__).resolve().parents[2]


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))


class Point3(Point):
    pass


class Unknown:
    pass


class Mood(enum.Enum):
    CALM = "calm"


@dataclasses.dataclass
class Note:
    at: dt.datetime
    amount: Decimal


class Reply(BaseModel):
    text: str
    tags: set[str] = set()


codec.register_type(
    Point, tag="tests.Point", encode=lambda p: [p.x, p.y], decode=lambda v: Point(*v)
)


def test_a_registered_type_round_trips_inside_containers() -> None:
    value = {"path": [Point(1, 2), (Point(3, 4),)], "set": {Point(5, 6)}}
    text = codec.dumps(value)
    assert '"$pf":"tests.Point"' in text
    assert codec.loads(text) == value


def test_subclasses_need_asking_for() -> None:
    with pytest.raises(SerializationError, match="subclasses of Point"):
        codec.dumps(Point3(1, 2))
    codec.register_type(
        Point,
        tag="tests.Point",
        encode=lambda p: [p.x, p.y],
        decode=lambda v: Point(*v),
        subclasses=True,
    )
    assert codec.loads(codec.dumps(Point3(1, 2))) == Point(1, 2)


def test_tags_cannot_be_taken_twice() -> None:
    with pytest.raises(ValueError, match="already taken"):
        codec.register_type(Unknown, tag="tests.Point", encode=str, decode=lambda v: Unknown())
    with pytest.raises(ValueError, match="already taken"):
        codec.register_type(Unknown, tag="datetime", encode=str, decode=lambda v: Unknown())


def test_a_failing_user_codec_names_the_path() -> None:
    class Bad:
        pass

    def boom(_: Bad) -> Any:
        raise RuntimeError("nope")

    codec.register_type(Bad, tag="tests.Bad", encode=boom, decode=lambda v: Bad())
    with pytest.raises(SerializationError, match=r"shared\['k'\]\[0\].*registered encoder"):
        codec.encode({"k": [Bad()]}, "shared")


def test_pickle_is_off_by_default_and_opt_in() -> None:
    with pytest.raises(SerializationError, match="allow_pickle"):
        codec.dumps({"u": Unknown()})
    codec.allow_pickle()
    try:
        text = codec.dumps({"u": Unknown()})
        assert isinstance(codec.loads(text)["u"], Unknown)  # type: ignore[index]
    finally:
        codec.allow_pickle(False)
    with pytest.raises(codec.DecodeError, match="pickled"):
        codec.loads(text)  # a reader that did not opt in runs no pickle


def test_display_json_has_no_tags() -> None:
    value = {
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 2),
        "price": Decimal("1.10"),
        "id": UUID(int=1),
        "raw": b"\x00\x01",
        "pair": (1, 2),
        "tags": {"b", "a"},
        1: "int key",
        "mood": Mood.CALM,
        "note": Note(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), Decimal("2")),
        "reply": Reply(text="hi"),
        "point": Point(1, 2),
        "big": 2**80,
        "wait": dt.timedelta(minutes=1),
    }
    shown = codec.to_display_json(value)
    assert "$pf" not in codec.dump_json(shown)
    assert shown["when"] == "2026-01-02T03:04:05+00:00"
    assert shown["price"] == "1.10"
    assert shown["pair"] == [1, 2]
    assert shown["tags"] == ["a", "b"]
    assert shown["1"] == "int key"
    assert shown["mood"] == "calm"
    assert shown["note"] == {"at": "2026-01-01T00:00:00+00:00", "amount": "2"}
    assert shown["reply"] == {"text": "hi", "tags": []}
    assert shown["point"] == [1, 2]
    assert shown["big"] == 2**80
    assert shown["wait"] == 60.0


def test_importing_pflambda_imports_neither_numpy_nor_pandas_nor_boto3() -> None:
    program = (
        "import sys, pflambda, pflambda.engine.codec, pflambda.engine.runner\n"
        "import pflambda.engine.codec as c\n"
        "c.dumps({'a': (1, 2)})\n"
        "bad = [m for m in ('numpy', 'pandas', 'boto3', 'botocore') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_numpy_types_are_found_through_their_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake numpy: the codec imports its numpy module only when it meets such a value."""
    fake = types.ModuleType("numpy")

    class Float(float):
        pass

    Float.__module__ = "numpy"
    fake.float64 = Float  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "numpy", fake)
    loaded: list[str] = []

    def fake_import(name: str) -> Any:
        loaded.append(name)
        codec.ENCODERS[Float] = lambda v, d: {codec.TAG: "tests.f64", "v": float(v)}
        codec.DECODERS["tests.f64"] = lambda d: Float(d["v"])
        return types.ModuleType(name)

    monkeypatch.setattr(codec, "_lazy_loaded", set())
    monkeypatch.setattr(codec.importlib, "import_module", fake_import)
    try:
        assert codec.dumps({"x": 1.5}) == '{"x":1.5}'
        assert loaded == []  # plain values never load it
        assert codec.loads(codec.dumps(Float(2.5))) == 2.5
        assert loaded == ["pflambda.engine.codec_numpy"]
    finally:
        codec.ENCODERS.pop(Float, None)
        codec.DECODERS.pop("tests.f64", None)


@pytest.mark.parametrize("make", ["array", "scalar", "structured", "object"])
def test_numpy_round_trips(make: str) -> None:
    numpy = pytest.importorskip("numpy")
    value = {
        "array": lambda: numpy.arange(6, dtype=numpy.int32).reshape(2, 3),
        "scalar": lambda: numpy.float32(1.25),
        "structured": lambda: numpy.zeros(2, dtype=[("x", "<f4"), ("y", "<i8")]),
        "object": lambda: numpy.array([1, "a", None], dtype=object),
    }[make]()
    back = codec.loads(codec.dumps(value))
    assert type(back) is type(value)
    assert back.dtype == value.dtype
    assert codec.dumps(back) == codec.dumps(value)
    assert "$pf" not in codec.dump_json(codec.to_display_json(value))


def test_pandas_round_trips() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"a": [1, 2], "b": ["x", "y"], "c": pd.Categorical(["u", "v"])}, index=["r1", "r2"]
    )
    series = pd.Series([1.5, 2.5], name="s")
    stamp = pd.Timestamp("2024-01-01 12:00:00.123456789", tz="Europe/Paris")
    pd.testing.assert_frame_equal(codec.loads(codec.dumps(frame)), frame)
    pd.testing.assert_series_equal(codec.loads(codec.dumps(series)), series)
    assert codec.loads(codec.dumps(stamp)) == stamp
    assert codec.to_display_json(frame)["data"] == [[1, "x", "u"], [2, "y", "v"]]
