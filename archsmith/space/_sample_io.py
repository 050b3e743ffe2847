"""Architectures on disk: a sample as JSON that reads back exactly.

JSON has no tuples, so a tuple is written as ``{"__tuple__": [...]}``; everything
else is plain JSON that any tool can read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import SpaceError

_TUPLE = "__tuple__"


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        if _TUPLE in value:
            raise SpaceError(f"{where}: the key {_TUPLE!r} is reserved for tuples in architecture files; rename it")
        if not all(isinstance(k, str) for k in value):
            raise SpaceError(f"{where}: dict keys must be strings to be stored as JSON, got {value!r}")
        return {k: _encode(v, where) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        raise SpaceError(f"{where}: {value!r} is not a JSON number; samples hold finite numbers only")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SpaceError(
        f"{where}: {value!r} ({type(value).__name__}) is not a JSON value; a sample holds only "
        "numbers, strings, booleans, None and lists/tuples/dicts of them"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_TUPLE}:
            return tuple(_decode(v) for v in value[_TUPLE])
        return {k: _decode(v) for k, v in value.items()}
    return value


def encode_arch(sample: Mapping[str, Any]) -> dict[str, Any]:
    """A sample as plain JSON data (tuples tagged); the inverse of :func:`decode_arch`."""
    if not isinstance(sample, Mapping):
        raise SpaceError(f"a sample is a dict of label -> value, got {type(sample).__name__}")
    encoded = {}
    for label, value in sample.items():
        if not isinstance(label, str):
            raise SpaceError(f"sample labels must be strings, got {label!r}")
        encoded[label] = _encode(value, f"label {label!r}")
    return encoded


def decode_arch(data: Any) -> dict[str, Any]:
    """A sample from JSON data written by :func:`encode_arch`."""
    if not isinstance(data, dict):
        raise SpaceError(f"an architecture file holds a JSON object (label -> value), got {type(data).__name__}")
    return {k: _decode(v) for k, v in data.items()}


def dumps_arch(sample: Mapping[str, Any], *, indent: int | None = 2) -> str:
    """A sample as JSON text (see :func:`save_arch`)."""
    return json.dumps(encode_arch(sample), indent=indent, allow_nan=False)


def loads_arch(text: str) -> dict[str, Any]:
    """Read a sample back from JSON text."""
    return decode_arch(json.loads(text))


_ARCH_FILE_HINT = "expected a JSON file written by archsmith.save_arch or `archsmith export` (one sample object)"


def _json_kind(data: Any) -> str:
    """The JSON name of a parsed value's type (for messages: "array", not "list")."""
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "boolean"
    if isinstance(data, (int, float)):
        return "number"
    names: dict[type, str] = {dict: "object", list: "array", str: "string"}
    return names.get(type(data), type(data).__name__)


def read_json_file(
    path: str | os.PathLike[str],
    what: str,
    expected: str = "expected a JSON file written by archsmith (save_arch, `archsmith export`)",
) -> Any:
    """The JSON data in ``path``. Every way of not being a readable JSON file (missing,
    a directory, unreadable, not UTF-8, empty, not JSON) is a :class:`SpaceError`
    that names ``what`` and the file and ends with ``expected``."""
    where = f"{what} {str(path)!r}"
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpaceError(f"{where} does not exist; {expected}") from None
    except IsADirectoryError:
        raise SpaceError(f"{where} is a directory, not a file; {expected}") from None
    except OSError as e:
        raise SpaceError(f"cannot read {where}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")  # -sig: a byte-order mark some editors add is not an error
    except UnicodeDecodeError as e:
        raise SpaceError(
            f"{where} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}), so not a JSON file; {expected}"
        ) from None
    if not text.strip():
        raise SpaceError(f"{where} is empty; {expected}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SpaceError(f"{where} is not valid JSON ({e}); {expected}") from None


def save_arch(sample: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``sample`` to ``path`` as JSON; :func:`load_arch` reads it back exactly."""
    text = dumps_arch(sample)
    Path(path).write_text(text + "\n", encoding="utf-8")


def load_arch(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a sample written by :func:`save_arch` (or by hand). A file that is not
    one (missing, not JSON, a JSON list, ...) is a :class:`SpaceError` naming it."""
    data = read_json_file(path, "architecture file", _ARCH_FILE_HINT)
    if not isinstance(data, dict):
        hint = " (a list of samples: read it with archsmith.experiment.load_samples)" if isinstance(data, list) else ""
        raise SpaceError(
            f"architecture file {str(path)!r} holds a JSON {_json_kind(data)}, not an object of label -> value"
            f"{hint}; {_ARCH_FILE_HINT}"
        )
    return decode_arch(data)
