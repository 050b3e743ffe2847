"""The keys the FLOPs profiler's memo stands on."""

from __future__ import annotations

import pytest
import torch

from archsmith.profiler._memo import Unkeyable, arg_key, module_signature


def test_numbers_keyed_by_type() -> None:
    # 1, 1.0 and True promote an int tensor differently, so they are different calls.
    assert len({arg_key(1), arg_key(1.0), arg_key(True)}) == 3
    assert arg_key([1, 2]) != arg_key((1, 2))
    assert arg_key(slice(0, 4)) != arg_key(slice(0, 4, 2))


def test_meta_tensors_keyed_by_shape_dtype_and_strides() -> None:
    x = torch.zeros(2, 3, device="meta")
    assert arg_key(x) == arg_key(torch.empty(2, 3, device="meta"))
    assert arg_key(x) != arg_key(x.t().contiguous().t())  # same shape, other strides
    assert arg_key(x) != arg_key(x.to(torch.float16))
    with pytest.raises(Unkeyable):
        arg_key({"a": x})
    with pytest.raises(Unkeyable):  # its values could decide the result
        arg_key(torch.zeros(2, 3))


def test_module_signature_sees_hyper_parameters_and_hooks() -> None:
    memo: dict[int, object] = {}
    a, b, c = (torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(3, 4, 3, stride=2))
    assert module_signature(a, memo) == module_signature(b, memo) != module_signature(c, memo)
    hooked = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    hooked[0].register_forward_hook(lambda *args: None)
    assert module_signature(hooked, memo) is None
