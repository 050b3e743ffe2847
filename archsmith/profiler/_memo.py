"""Memoised meta execution: a torch call, or a module free of choices, answered
from a table keyed by everything its result's shape and FLOPs can depend on.

On the ``meta`` device a tensor is its shape, dtype and strides, so a call's output
and the FLOPs torch's counter gives it are functions of its arguments' keys
(:func:`arg_key`); one recorded output object may stand for every later call with
the same key. Running a glue op on meta tensors costs milliseconds in this torch
(its shape functions are Python); a hit costs microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

#: Most memoised entries a profiler keeps (each a few hundred bytes).
MAX_MEMO = 200_000


class Unkeyable(Exception):
    """An argument whose effect on a call cannot be told from a key."""


_PLAIN = (str, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format, type(Ellipsis))


def arg_key(value: Any) -> Any:
    """A hashable key standing for ``value`` as a torch call sees it on ``meta``:
    a meta tensor by type, shape, dtype and strides; numbers by type and value
    (``1``, ``1.0`` and ``True`` promote differently); containers item by item.
    Anything else, a tensor off ``meta`` included, raises :class:`Unkeyable`."""
    kind = type(value)
    if kind is int or kind in _PLAIN:
        return value
    if isinstance(value, torch.Tensor):
        if not value.is_meta:  # its values may decide the result (a mask, an index read back)
            raise Unkeyable("a tensor holding values")
        return (kind, value.shape, value.dtype, value.stride())
    if kind is float or kind is bool or kind is complex:
        return (kind, value)
    if kind is tuple or kind is list or kind is torch.Size:
        return (kind, tuple([arg_key(v) for v in value]))
    if kind is slice:
        return (slice, arg_key(value.start), arg_key(value.stop), arg_key(value.step))
    raise Unkeyable(kind.__name__)


def _cacheable(out: Any) -> bool:
    """Outputs safe to hand out again: tensors (meta ones hold no data) and
    immutable values; a list could be mutated by its caller."""
    if isinstance(out, torch.Tensor):
        return out.device.type == "meta"
    if isinstance(out, tuple):  # torch.Size is one
        return all(_cacheable(v) for v in out)
    return isinstance(out, int | float | bool | complex | str | torch.dtype | type(None))


#: In-place ops that change a tensor's shape or strides: one may hit a recorded
#: output that later calls share, so the table is dropped after one.
_RESHAPING = {
    "resize_",
    "resize_as_",
    "set_",
    "as_strided_",
    "squeeze_",
    "unsqueeze_",
    "t_",
    "transpose_",
    "swapdims_",
    "swapaxes_",
    "__set__",
}


class Recorder:
    """The table and the running FLOP total of one profiler: ``total()`` is what
    torch's counter counted plus what hits added."""

    def __init__(self) -> None:
        self.memo: dict[Any, tuple[int, Any]] = {}
        self.extra = 0
        self.counter: Any = None

    def total(self) -> int:
        return int(self.counter.get_total_flops()) + self.extra

    def lookup(self, key: Any) -> Any:
        """The recorded output of ``key`` (its FLOPs added to the total), or ``None``."""
        hit = self.memo.get(key)
        if hit is None:
            return None
        self.extra += hit[0]
        return hit[1]

    def record(self, key: Any, run: Callable[[], Any]) -> Any:
        """``run()``, its FLOPs and output recorded under ``key`` where reusable."""
        before = self.total()
        out = run()
        if _cacheable(out):
            if len(self.memo) >= MAX_MEMO:  # bounded: a long search meets new shapes forever
                self.memo.clear()
            self.memo[key] = (self.total() - before, out)
        return out


class OpMemo(TorchFunctionMode):
    """Answers every torch call made inside it from ``recorder``'s table when its
    arguments' keys were seen before; calls it cannot key, in-place ops and calls
    with ``out=`` run as they are (under the flop counter, which counts them)."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "__get__" or (name.endswith("_") and not name.endswith("__")) or _mutating(name, kwargs):
            out = func(*args, **kwargs)
            if name in _RESHAPING:
                self.recorder.memo.clear()
            return out
        try:
            key = (func, arg_key(args), arg_key(sorted(kwargs.items())) if kwargs else None)
        except Unkeyable:
            return func(*args, **kwargs)
        found = self.recorder.lookup(key)
        if found is not None:
            return found
        return self.recorder.record(key, lambda: func(*args, **kwargs))


_IN_PLACE_OPERATORS = {
    f"__i{op}__"
    for op in (
        "add",
        "sub",
        "mul",
        "matmul",
        "truediv",
        "floordiv",
        "mod",
        "pow",
        "and",
        "or",
        "xor",
        "lshift",
        "rshift",
    )
}


def _mutating(name: str, kwargs: dict[str, Any]) -> bool:
    # x += y and the like, item assignment, and out= arguments write to a tensor.
    return name in _IN_PLACE_OPERATORS or name in ("__setitem__", "__delitem__") or "out" in kwargs


def module_signature(module: torch.nn.Module, memo: dict[int, Any]) -> Any:
    """What a module free of choices computes, as a hashable value, or ``None``:
    its class, its public attributes (hyper-parameters and mode), the shapes of its
    parameters and buffers, and its children's signatures. Two modules with one
    signature give the same output shapes and FLOPs on the same input; one with
    hooks or an attribute that cannot be keyed has none."""
    if id(module) in memo:
        return memo[id(module)]
    memo[id(module)] = None
    hooks = (module._forward_hooks, module._forward_pre_hooks, getattr(module, "_forward_hooks_with_kwargs", {}))
    if any(hooks):
        return None
    try:
        attributes = tuple(
            (name, arg_key(value)) for name, value in sorted(vars(module).items()) if not name.startswith("_")
        )
    except Unkeyable:
        return None
    tensors = tuple(
        (name, None if t is None else (tuple(t.shape), t.dtype))
        for table in (module._parameters, module._buffers)
        for name, t in table.items()
    )
    children = []
    for name, child in module._modules.items():
        signature = None if child is None else module_signature(child, memo)
        if child is not None and signature is None:
            return None
        children.append((name, signature))
    memo[id(module)] = (type(module), attributes, tensors, tuple(children))
    return memo[id(module)]
