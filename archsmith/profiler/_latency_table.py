"""The pieces of a latency table that know no model: timing a call, naming tensors
in keys, and the JSON file (what was measured where, and how to rebuild the space
and the example input it was measured on)."""

from __future__ import annotations

import importlib
import json
import math
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from archsmith.nn import ModelSpace

from ._terms import ProfilerError

#: The ``format`` field of a saved table; a newer layout changes the number.
FORMAT = "archsmith.latency/1"


def check_device(device: Any, who: str) -> torch.device:
    """``device`` as a ``torch.device`` this machine has, else a clear error."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ProfilerError(f"{who}: unknown device {device!r} ({e}); use 'cpu', 'cuda' or 'cuda:N'") from None
    if parsed.type == "cpu":
        return parsed
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ProfilerError(
                f"{who}: device {device!r} asks for CUDA, which this machine (or this torch build) does not have; "
                "measure on 'cpu', or measure on the GPU machine and load the table here with measure_missing=False"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ProfilerError(
                f"{who}: {device!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)"
            )
        return parsed
    raise ProfilerError(f"{who}: cannot time on device {device!r}; use 'cpu', 'cuda' or 'cuda:N'")


def device_name(device: torch.device) -> str:
    """What the device is, for the table's record (the GPU model, or the CPU)."""
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return platform.processor() or platform.machine()


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``float32``."""
    return str(dtype).removeprefix("torch.")


def describe(value: Any) -> str:
    """Tensors by dtype and shape (``float32[2,3,8,8]``), lists and tuples of them
    in brackets, anything else by its ``repr``: what a key says of a call's inputs."""
    if isinstance(value, torch.Tensor):
        return f"{dtype_name(value.dtype)}[{','.join(str(d) for d in value.shape)}]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def example_spec(example_input: Any) -> list[dict[str, Any]]:
    """The shapes and dtypes of the example's tensors (a tuple: one per argument)."""
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    spec: list[dict[str, Any]] = []
    for a in args:
        if not isinstance(a, torch.Tensor):
            spec.append({"value": repr(a)})
        else:
            spec.append({"shape": list(a.shape), "dtype": dtype_name(a.dtype)})
    return spec


def example_from_spec(spec: list[dict[str, Any]], seed: int) -> Any:
    """An example input of the recorded shapes and dtypes: seeded normal floats,
    zeros for integers (valid indices for an embedding)."""
    generator = torch.Generator().manual_seed(seed)
    args: list[torch.Tensor] = []
    for i, item in enumerate(spec):
        if "shape" not in item:
            raise ProfilerError(
                f"the saved table's example input {i} was not a tensor ({item.get('value')}); "
                "pass example_input= to LatencyProfiler.load"
            )
        dtype = getattr(torch, item["dtype"])
        if dtype.is_floating_point:
            args.append(torch.randn(item["shape"], generator=generator).to(dtype))
        else:
            args.append(torch.zeros(item["shape"], dtype=dtype))
    return args[0] if len(args) == 1 else tuple(args)


def _to_json(value: Any) -> Any:
    """``value`` as JSON data (tuples tagged so they come back as tuples), or
    ``TypeError`` if it holds something JSON cannot."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{value!r}")
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        if "__tuple__" in value:
            raise TypeError("a dict with a '__tuple__' key")
        return {k: _to_json(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def space_recipe(space: ModelSpace) -> dict[str, Any]:
    """The space's class path and init arguments (``init`` is ``None``, with the
    reason, when an argument is not JSON data: then a loader passes the space)."""
    cls = type(space)
    recipe: dict[str, Any] = {"class": f"{cls.__module__}:{cls.__qualname__}"}
    args, kwargs = space.init_arguments
    try:
        recipe["init"] = {"args": _to_json(tuple(args))["__tuple__"], "kwargs": _to_json(dict(kwargs))}
    except TypeError as e:
        recipe["init"] = None
        recipe["why_no_init"] = f"an init argument is not JSON data ({e})"
    return recipe


def rebuild_space(recipe: Mapping[str, Any], path: str) -> ModelSpace:
    """The space a saved table was measured on, from its class path and init arguments."""
    class_path = recipe.get("class", "?")
    if recipe.get("init") is None:
        why = recipe.get("why_no_init", "no init arguments were recorded")
        raise ProfilerError(
            f"{path}: the space {class_path} cannot be rebuilt from the file ({why}); "
            "pass it: LatencyProfiler.load(path, space=MySpace(...))"
        )
    module_name, _, qualname = class_path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ProfilerError(
            f"{path}: the space class {class_path} cannot be imported here ({e}); "
            "pass it: LatencyProfiler.load(path, space=MySpace(...))"
        ) from None
    init = recipe["init"]
    space = obj(*_from_json(init["args"]), **_from_json(init["kwargs"]))
    if not isinstance(space, ModelSpace):
        raise ProfilerError(f"{path}: {class_path} did not build a model space")
    return space


def check_table(table: Any, who: str) -> dict[str, float]:
    """``table`` as ``{key: milliseconds}``, or an error naming the first bad entry."""
    if not isinstance(table, Mapping):
        raise ProfilerError(f"{who}: a latency table is a dict of key -> milliseconds, got {type(table).__name__}")
    checked = {}
    for key, value in table.items():
        if not isinstance(key, str):
            raise ProfilerError(f"{who}: table keys are strings (see profiler.keys(sample)), got {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ProfilerError(f"{who}: the entry {key!r} must be a non-negative number of ms, got {value!r}")
        checked[key] = float(value)
    return checked


def write_file(path: str | Path, record: dict[str, Any]) -> None:
    """``record`` as indented JSON at ``path`` (entries sorted, so files diff well)."""
    Path(path).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def read_file(path: str | Path) -> dict[str, Any]:
    """A saved table's record, checked for its format."""
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ProfilerError(f"no latency table at {path}") from None
    except json.JSONDecodeError as e:
        raise ProfilerError(f"{path} is not a latency table (not JSON: {e})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise ProfilerError(f"{path} is not a latency table of format {FORMAT!r} (found {found!r})")
    return record
