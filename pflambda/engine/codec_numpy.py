"""numpy and pandas values in shared: arrays, scalars, frames, series, timestamps.

Imported by the codec only when it meets a value whose type comes from numpy or
pandas, or a checkpoint tag of theirs -- so pflambda never imports either package
itself, and a deploy without them pays nothing::

    {"$pf": "ndarray", "dtype": <descr>, "shape": [...], "v": "<base64, C order>"}
    {"$pf": "ndarray", "dtype": "object", "shape": [...], "v": [<encoded items>]}
    {"$pf": "npscalar", "dtype": <descr>, "v": "<base64>"}
    {"$pf": "dataframe", "columns": <index>, "index": <index>, "data": [<column>, ...]}
    {"$pf": "series", "name": <encoded>, "index": <index>, "v": <column>}
    {"$pf": "pdtimestamp", "v": <ns since epoch>, "tz": "<zone>" | null}

Arrays keep dtype (structured ones too, via numpy's own ``descr``), shape and bytes
exactly. A column or index whose dtype is a pandas extension type (category, string,
nullable ints) keeps the dtype by name and its items as encoded values.
"""

from __future__ import annotations

import base64
import importlib
from typing import Any

from pflambda.engine.codec import (
    DECODERS,
    DISPLAYS,
    ENCODERS,
    FALLBACKS,
    TAG,
    JSONValue,
    Unsupported,
    b64,
    decode_inner,
    display_inner,
    encode_inner,
    encode_items,
    nest,
)


def _np() -> Any:
    return importlib.import_module("numpy")


def _pd() -> Any:
    return importlib.import_module("pandas")


# --- numpy ----------------------------------------------------------------------------------


def _encode_array(value: Any, depth: int) -> JSONValue:
    np = _np()
    shape: list[JSONValue] = list(value.shape)
    if value.dtype.hasobject:
        items = encode_items(value.ravel(order="C").tolist(), depth)
        return {TAG: "ndarray", "dtype": "object", "shape": shape, "v": items}
    descr = np.lib.format.dtype_to_descr(value.dtype)
    data = b64(np.ascontiguousarray(value).tobytes())
    return {TAG: "ndarray", "dtype": encode_inner(descr, depth), "shape": shape, "v": data}


def _decode_array(data: dict[str, Any]) -> Any:
    np = _np()
    shape = tuple(data["shape"])
    if data["dtype"] == "object":
        items: Any = decode_inner(data["v"])
        out = np.empty(len(items), dtype=object)
        for index, item in enumerate(items):
            out[index] = item
        return out.reshape(shape)
    dtype = np.lib.format.descr_to_dtype(decode_inner(data["dtype"]))
    raw = base64.b64decode(data["v"], validate=True)
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _encode_scalar(value: Any, depth: int) -> Any:
    np = _np()
    if not isinstance(value, np.generic):
        return NotImplemented
    if value.dtype.hasobject:
        raise Unsupported(value, "numpy object scalars are not supported; use .item()")
    descr = np.lib.format.dtype_to_descr(value.dtype)
    return {TAG: "npscalar", "dtype": encode_inner(descr, depth), "v": b64(value.tobytes())}


def _decode_scalar(data: dict[str, Any]) -> Any:
    np = _np()
    dtype = np.lib.format.descr_to_dtype(decode_inner(data["dtype"]))
    return np.frombuffer(base64.b64decode(data["v"], validate=True), dtype=dtype)[0]


# --- pandas ---------------------------------------------------------------------------------


def _encode_column(values: Any, depth: int) -> JSONValue:
    """A Series' or Index's values: a numpy array, or an extension dtype by name."""
    np = _np()
    if isinstance(values.dtype, np.dtype):
        return encode_inner(values.to_numpy(), depth)
    return {"ext": str(values.dtype), "v": encode_items(values.tolist(), depth)}


def _decode_column(data: Any) -> Any:
    if isinstance(data, dict) and "ext" in data:
        return _pd().array(decode_inner(data["v"]), dtype=data["ext"])
    return decode_inner(data)


def _encode_index(index: Any, depth: int) -> JSONValue:
    pd = _pd()
    name = encode_inner(index.name, depth)
    if isinstance(index, pd.MultiIndex):
        raise Unsupported(index, "a MultiIndex is not supported; reset_index() first")
    if isinstance(index, pd.RangeIndex):
        return {"range": [index.start, index.stop, index.step], "name": name}
    return {"v": _encode_column(index, depth), "name": name}


def _decode_index(data: dict[str, Any]) -> Any:
    pd = _pd()
    name = decode_inner(data["name"])
    if "range" in data:
        return pd.RangeIndex(*data["range"], name=name)
    return pd.Index(_decode_column(data["v"]), name=name)


def _encode_frame(value: Any, depth: int) -> JSONValue:
    depth = nest(value, depth)
    columns = [_encode_column(value.iloc[:, i], depth) for i in range(value.shape[1])]
    return {
        TAG: "dataframe",
        "columns": _encode_index(value.columns, depth),
        "index": _encode_index(value.index, depth),
        "data": columns,
    }


def _decode_frame(data: dict[str, Any]) -> Any:
    pd = _pd()
    index = _decode_index(data["index"])
    columns = {i: _decode_column(col) for i, col in enumerate(data["data"])}
    frame = pd.DataFrame(columns, index=index)
    frame.columns = _decode_index(data["columns"])
    return frame


def _encode_series(value: Any, depth: int) -> JSONValue:
    depth = nest(value, depth)
    return {
        TAG: "series",
        "name": encode_inner(value.name, depth),
        "index": _encode_index(value.index, depth),
        "v": _encode_column(value, depth),
    }


def _decode_series(data: dict[str, Any]) -> Any:
    pd = _pd()
    index = _decode_index(data["index"])
    return pd.Series(_decode_column(data["v"]), index=index, name=decode_inner(data["name"]))


def _encode_timestamp(value: Any, depth: int) -> JSONValue:
    tz = None if value.tz is None else str(value.tz)
    return {TAG: "pdtimestamp", "v": int(value.value), "tz": tz}


def _decode_timestamp(data: dict[str, Any]) -> Any:
    pd = _pd()
    stamp = pd.Timestamp(data["v"], unit="ns")
    return stamp if data["tz"] is None else stamp.tz_localize("UTC").tz_convert(data["tz"])


def _display_decoded(data: dict[str, Any]) -> Any:
    value: Any = DECODERS[data[TAG]](data)
    if hasattr(value, "to_json"):
        import json

        return json.loads(value.to_json(orient="split", date_format="iso"))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return display_inner(encode_inner(value.tolist(), 0))


def _register() -> None:
    try:
        np = importlib.import_module("numpy")
    except ImportError:
        np = None
    if np is not None:
        ENCODERS[np.ndarray] = _encode_array
        FALLBACKS.append(_encode_scalar)
    try:
        pd = importlib.import_module("pandas")
    except ImportError:
        pd = None
    if pd is not None:
        ENCODERS[pd.DataFrame] = _encode_frame
        ENCODERS[pd.Series] = _encode_series
        ENCODERS[pd.Timestamp] = _encode_timestamp
    DECODERS.update(
        {
            "ndarray": _decode_array,
            "npscalar": _decode_scalar,
            "dataframe": _decode_frame,
            "series": _decode_series,
            "pdtimestamp": _decode_timestamp,
        }
    )
    for tag in ("ndarray", "npscalar", "dataframe", "series", "pdtimestamp"):
        DISPLAYS[tag] = _display_decoded


_register()
