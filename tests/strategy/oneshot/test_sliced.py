"""Sliced (weight-sharing) layers: every configuration computes exactly what a plain
torch layer with that configuration's slice of the shared weights computes."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
import torch

import archsmith.nn as nn
from archsmith.space import Categorical, SampleError, SpaceError, randint, to_int, uniform
from archsmith.strategy.oneshot._sliced import SLICED_LAYERS, SlicedLayer, SlicingError, make_sliced

Tensors = dict[str, torch.Tensor]


def C(*values: Any, label: str) -> Any:
    return Categorical(list(values), label=label)


def random_samples(layer: SlicedLayer, seed: int, n: int) -> list[dict[str, Any]]:
    """``n`` random samples plus the smallest and largest values of every leaf."""
    rng = random.Random(seed)
    samples = [{leaf.label: rng.choice(leaf.values) for leaf in layer.leaves} for _ in range(n)]
    samples.append({leaf.label: leaf.values[0] for leaf in layer.leaves})
    samples.append({leaf.label: leaf.values[-1] for leaf in layer.leaves})
    return samples


def _ntuple(value: Any, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


# The slicing rules, written out independently of the implementation --------------------
def conv_slices(t: Tensors, a: dict[str, Any]) -> Tensors:
    weight = t["weight"]
    out, in_per_group = a["out_channels"], a["in_channels"] // a["groups"]
    crops = []
    for size, full in zip(_ntuple(a["kernel_size"], weight.dim() - 2), weight.shape[2:]):
        start = (full - size) // 2
        crops.append(slice(start, start + size))
    found = {"weight": weight[(slice(0, out), slice(0, in_per_group), *crops)]}
    if "bias" in t:
        found["bias"] = t["bias"][:out]
    return found


def linear_slices(t: Tensors, a: dict[str, Any]) -> Tensors:
    found = {"weight": t["weight"][: a["out_features"], : a["in_features"]]}
    if "bias" in t:
        found["bias"] = t["bias"][: a["out_features"]]
    return found


def batchnorm_slices(t: Tensors, a: dict[str, Any]) -> Tensors:
    c = a["num_features"]
    return {name: (tensor if name == "num_batches_tracked" else tensor[:c]) for name, tensor in t.items()}


def layernorm_slices(t: Tensors, a: dict[str, Any]) -> Tensors:
    shape = _ntuple(a["normalized_shape"], 1)
    return {name: tensor[tuple(slice(0, s) for s in shape)] for name, tensor in t.items()}


def attention_slices(t: Tensors, a: dict[str, Any]) -> Tensors:
    e, full = a["embed_dim"], t["in_proj_weight"].shape[1]
    found = {
        "in_proj_weight": t["in_proj_weight"].view(3, full, full)[:, :e, :e].reshape(3 * e, e),
        "out_proj.weight": t["out_proj.weight"][:e, :e],
    }
    if "in_proj_bias" in t:
        found["in_proj_bias"] = t["in_proj_bias"].view(3, full)[:, :e].reshape(3 * e)
        found["out_proj.bias"] = t["out_proj.bias"][:e]
    for name in ("bias_k", "bias_v"):
        if name in t:
            found[name] = t[name][..., :e]
    return found


def first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def check_configuration(
    sliced: SlicedLayer,
    sample: dict[str, Any],
    make_inputs: Callable[[dict[str, Any]], tuple[torch.Tensor, ...]],
    slices: Callable[[Tensors, dict[str, Any]], Tensors],
) -> None:
    """Sliced forward == plain layer with the expected slices (outputs and gradients),
    and == the exported layer."""
    sliced.bind(dict(sample))
    arguments = sliced.arguments(sample)
    inputs = make_inputs(arguments)
    tensors = dict(sliced.state_dict(keep_vars=True))
    plain = sliced.torch_class(**arguments).train(sliced.training)
    plain.load_state_dict({name: t.detach().clone() for name, t in slices(tensors, arguments).items()})

    sliced.zero_grad()
    output, expected = sliced(*inputs), plain(*inputs)
    torch.testing.assert_close(output, expected)
    exported = sliced.export_layer(sample)
    assert type(exported) is sliced.torch_class
    with torch.no_grad():
        torch.testing.assert_close(exported(*inputs), output)

    # Gradients reach the shared tensors at the sliced positions only, with the plain values.
    if not any(p.requires_grad for p in plain.parameters()):
        return
    weights = torch.randn_like(first(output))
    (first(output) * weights).sum().backward()
    (first(expected) * weights).sum().backward()
    positions = slices({name: torch.arange(t.numel()).view(t.shape) for name, t in tensors.items()}, arguments)
    for name, parameter in sliced.named_parameters():
        assert parameter.grad is not None, name
        want = torch.zeros_like(parameter)
        want.view(-1)[positions[name].reshape(-1)] = plain.get_parameter(name).grad.reshape(-1)
        torch.testing.assert_close(parameter.grad, want)
        outside = torch.ones(parameter.numel(), dtype=torch.bool)
        outside[positions[name].reshape(-1)] = False
        assert (parameter.grad.view(-1)[outside] == 0).all(), name


# Convolutions -----------------------------------------------------------------------------
CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def conv_cases() -> dict[str, Callable[[], Any]]:
    def depthwise() -> Any:
        c = C(4, 8, 12, label="c")
        return nn.Conv2d(c, c, C(3, 5, label="k"), groups=c, padding="same")

    return {
        "channels-odd-even-kernels": lambda: nn.Conv2d(
            C(3, 4, 6, label="i"), C(4, 8, label="o"), C(1, 2, 3, 4, 5, label="k"), padding=C(0, 1, 2, label="p")
        ),
        "stride-dilation-1d": lambda: nn.Conv1d(
            C(2, 5, label="i"),
            C(3, 7, label="o"),
            C(2, 3, label="k"),
            stride=C(1, 2, 3, label="s"),
            dilation=C(1, 2, label="d"),
            padding=1,
        ),
        "groups-choice": lambda: nn.Conv2d(
            C(4, 8, label="i"), C(8, 16, label="o"), 3, groups=C(1, 2, 4, label="g"), padding=1
        ),
        "depthwise": depthwise,
        "3d-tuple-kernels": lambda: nn.Conv3d(
            C(2, 3, label="i"), C(2, 4, label="o"), C((1, 3, 2), (3, 1, 3), label="k"), padding=1, bias=False
        ),
        "same-even-kernels": lambda: nn.Conv2d(
            3, C(4, 6, label="o"), C(2, 4, label="k"), padding="same", dilation=C(1, 2, label="d")
        ),
        "reflect-padding": lambda: nn.Conv2d(
            3, C(4, 8, label="o"), C(2, 3, 5, label="k"), padding=C(1, 2, "same", label="p"), padding_mode="reflect"
        ),
        "per-dimension-kernels": lambda: nn.Conv2d(
            C(2, 3, label="i"), 4, C((1, 3), (3, 1), (2, 2), label="k"), stride=C(1, (2, 1), label="s")
        ),
    }


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's own, plain layer alike
@pytest.mark.parametrize("case", list(conv_cases()))
def test_conv_matches_the_plain_layer_with_the_sliced_weight(case: str) -> None:
    torch.manual_seed(0)
    sliced = make_sliced(conv_cases()[case]())
    dims = sliced.weight.dim() - 2
    size = 7 if dims == 3 else 11

    def inputs(a: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        return (torch.randn(2, a["in_channels"], *[size] * dims),)

    for sample in random_samples(sliced, seed=len(case), n=5):
        check_configuration(sliced, sample, inputs, conv_slices)


def test_kernel_is_centre_cropped_from_offset_max_minus_k_halved() -> None:
    for kernels, offsets in [((1, 2, 3, 4, 5), {1: 2, 2: 1, 3: 1, 4: 0, 5: 0}), ((2, 3, 4), {2: 1, 3: 0, 4: 0})]:
        sliced = make_sliced(nn.Conv1d(1, 1, C(*kernels, label="k")))
        full = max(kernels)
        with torch.no_grad():
            sliced.weight.copy_(torch.arange(float(full)).view(1, 1, full))
        for k, start in offsets.items():
            weight = sliced.sliced_state(sliced.arguments({"k": k}))["weight"]
            assert weight.flatten().tolist() == [float(start + i) for i in range(k)]
    sliced = make_sliced(nn.Conv2d(1, 1, C((1, 4), (3, 2), label="k")))
    assert sliced.weight.shape == (1, 1, 3, 4)
    weight = torch.arange(12.0).view(1, 1, 3, 4)
    with torch.no_grad():
        sliced.weight.copy_(weight)
    torch.testing.assert_close(sliced.sliced_state(sliced.arguments({"k": (1, 4)}))["weight"], weight[:, :, 1:2, :])
    torch.testing.assert_close(sliced.sliced_state(sliced.arguments({"k": (3, 2)}))["weight"], weight[:, :, :, 1:3])


def test_tensors_have_the_largest_sizes_and_torch_s_init_of_the_largest_layer() -> None:
    layer = nn.Conv2d(C(4, 8, label="i"), C(8, 16, label="o"), C(3, 5, label="k"), groups=C(1, 2, 4, label="g"))
    torch.manual_seed(3)
    sliced = make_sliced(layer)
    torch.manual_seed(3)
    largest = torch.nn.Conv2d(8, 16, 5)
    assert sliced.weight.shape == (16, 8, 5, 5)  # in_channels // groups is largest at 8 // 1
    torch.testing.assert_close(sliced.weight, largest.weight)
    torch.testing.assert_close(sliced.bias, largest.bias)
    assert isinstance(sliced.weight, torch.nn.Parameter)

    c = C(4, 8, 12, label="c")
    assert make_sliced(nn.Conv2d(c, c, 3, groups=c)).weight.shape == (12, 1, 3, 3)  # depthwise
    assert make_sliced(nn.Conv2d(c, c * 2, 3, groups=c // 4)).weight.shape == (24, 4, 3, 3)
    assert make_sliced(nn.Linear(randint("r", 4, 9), 3)).weight.shape == (3, 8)  # a quantized numerical


def test_defaults_arguments_and_bind() -> None:
    width = C(4, 8, label="w")
    sliced = make_sliced(nn.Conv2d(3, width, C(3, 5, label="k"), padding=1))
    assert [leaf.label for leaf in sliced.leaves] == ["w", "k"]
    assert sliced.decisions == {"w": 4, "k": 3}
    arguments = sliced.arguments({"w": 8, "k": 5, "unrelated": 1})
    assert arguments["out_channels"] == 8 and arguments["kernel_size"] == 5
    assert arguments["stride"] == 1 and arguments["groups"] == 1 and arguments["padding"] == 1  # torch's defaults
    x = torch.randn(1, 3, 8, 8)
    assert sliced(x).shape == (1, 4, 8, 8)
    decisions = {"w": 8, "k": 5}
    sliced.bind(decisions)
    assert sliced(x).shape == (1, 8, 6, 6)
    decisions["w"] = 4  # the supernet changes the shared dict in place
    assert sliced(x).shape == (1, 4, 6, 6)
    assert set(sliced.state_dict()) == {"weight", "bias"}
    assert "decisions={'w': 4, 'k': 5}" in repr(sliced)


def test_export_copies_and_accepts_arguments_too() -> None:
    sliced = make_sliced(nn.Conv2d(3, C(4, 8, label="w"), 3))
    by_sample = sliced.export_layer({"w": 4})
    by_arguments = sliced.export_layer(sliced.arguments({"w": 4}))
    by_choice_only = sliced.export_layer({"out_channels": 4})
    for exported in (by_sample, by_arguments, by_choice_only):
        assert type(exported) is torch.nn.Conv2d and exported.out_channels == 4
        torch.testing.assert_close(exported.weight, sliced.weight[:4])
        assert exported.weight.requires_grad
    with torch.no_grad():
        by_sample.weight.zero_()
    assert sliced.weight[:4].abs().sum() > 0  # a copy, not a view
    assert not sliced.eval().export_layer({"w": 8}).training


# Linear, BatchNorm, LayerNorm, MultiheadAttention ------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_the_plain_layer(bias: bool) -> None:
    torch.manual_seed(0)
    sliced = make_sliced(nn.Linear(C(3, 5, 8, label="i"), C(2, 6, label="o"), bias=bias))
    for sample in random_samples(sliced, seed=1, n=3):
        check_configuration(sliced, sample, lambda a: (torch.randn(2, 3, a["in_features"]),), linear_slices)


BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def batchnorm_input(dims: int) -> Callable[[dict[str, Any]], tuple[torch.Tensor, ...]]:
    spatial = {1: [5], 2: [4, 4], 3: [3, 3, 3]}[dims]
    return lambda a: (torch.randn(4, a["num_features"], *spatial) * 3 + 1,)


def randomised_running_stats(sliced: SlicedLayer) -> None:
    with torch.no_grad():
        sliced.running_mean.normal_()
        sliced.running_var.uniform_(0.5, 2)
        sliced.weight.normal_()
        sliced.bias.normal_()


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_the_plain_layer(dims: int, training: bool) -> None:
    torch.manual_seed(dims)
    layer = BATCH_NORM[dims](C(4, 6, 8, label="c"), eps=C(1e-5, 1e-3, label="e"), momentum=C(0.1, 0.5, None, label="m"))
    sliced = make_sliced(layer).train(training)
    randomised_running_stats(sliced)
    for sample in random_samples(sliced, seed=dims, n=3):
        check_configuration(sliced, sample, batchnorm_input(dims), batchnorm_slices)


@pytest.mark.parametrize("momentum", [0.3, None])
def test_batchnorm_training_updates_only_the_slice_of_the_running_stats(momentum: float | None) -> None:
    torch.manual_seed(0)
    sliced = make_sliced(nn.BatchNorm2d(C(3, 8, label="c"), momentum=momentum)).train()
    randomised_running_stats(sliced)
    sliced.num_batches_tracked.fill_(4)
    before = {name: t.clone() for name, t in sliced.state_dict().items()}
    plain = torch.nn.BatchNorm2d(3, momentum=momentum).train()
    plain.load_state_dict({name: t[:3] if t.dim() else t for name, t in before.items()})
    sliced.bind({"c": 3})
    x = torch.randn(5, 3, 4, 4) * 2 + 1
    torch.testing.assert_close(sliced(x), plain(x))
    for name in ("running_mean", "running_var"):
        shared = getattr(sliced, name)
        assert not torch.equal(shared[:3], before[name][:3])  # changed ...
        torch.testing.assert_close(shared[:3], getattr(plain, name))  # ... as torch's does
        assert torch.equal(shared[3:], before[name][3:])  # the rest untouched
    assert sliced.num_batches_tracked.item() == plain.num_batches_tracked.item() == 5


@pytest.mark.parametrize(("affine", "track"), [(False, True), (True, False), (False, False)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_without_affine_or_running_stats(affine: bool, track: bool, training: bool) -> None:
    sliced = make_sliced(nn.BatchNorm1d(C(4, 8, label="c"), affine=affine, track_running_stats=track))
    sliced.train(training)
    for sample in random_samples(sliced, seed=0, n=1):
        check_configuration(sliced, sample, batchnorm_input(1), batchnorm_slices)


@pytest.mark.parametrize(
    ("shape", "expected_shape"),
    [
        (lambda: C(4, 6, 8, label="n"), (8,)),
        (lambda: C((4, 6), (8, 3), label="n"), (8, 6)),
        (lambda: (C(2, 5, label="a"), C(3, 4, label="b")), (5, 4)),
    ],
)
def test_layernorm_matches_the_plain_layer(shape: Callable[[], Any], expected_shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    sliced = make_sliced(nn.LayerNorm(shape(), eps=C(1e-5, 1e-2, label="e")))
    assert sliced.weight.shape == expected_shape
    with torch.no_grad():
        sliced.weight.normal_()
        sliced.bias.normal_()

    def inputs(a: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        return (torch.randn(2, 3, *_ntuple(a["normalized_shape"], 1)),)

    for sample in random_samples(sliced, seed=2, n=3):
        check_configuration(sliced, sample, inputs, layernorm_slices)


def attention_cases() -> dict[str, Callable[[], Any]]:
    def same_kdim() -> Any:
        e = C(8, 16, label="e")
        return nn.MultiheadAttention(e, C(1, 2, 4, label="h"), kdim=e, vdim=e)

    return {
        "batch-first": lambda: nn.MultiheadAttention(C(8, 12, 16, label="e"), C(1, 2, 4, label="h"), batch_first=True),
        "sequence-first-bias-kv": lambda: nn.MultiheadAttention(
            C(8, 16, label="e"), C(2, 4, label="h"), add_bias_kv=True, add_zero_attn=True
        ),
        "no-bias-dropout-choice": lambda: nn.MultiheadAttention(
            C(4, 8, label="e"), 2, bias=False, dropout=C(0.0, 0.5, label="p"), batch_first=True
        ),
        "kdim-same-choice": same_kdim,
    }


@pytest.mark.parametrize("case", list(attention_cases()))
def test_multihead_attention_matches_the_plain_layer(case: str) -> None:
    torch.manual_seed(0)
    sliced = make_sliced(attention_cases()[case]())
    sliced.eval()  # dropout is random in training; the weights are the same either way
    with torch.no_grad():
        for parameter in sliced.parameters():
            parameter.normal_(std=0.5)

    def inputs(a: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        query, key = torch.randn(2, 5, a["embed_dim"]), torch.randn(2, 7, a["embed_dim"])
        if not a["batch_first"]:
            query, key = query.transpose(0, 1), key.transpose(0, 1)
        return query, key, key

    for sample in random_samples(sliced, seed=3, n=3):
        if sample["e"] % sliced.arguments(sample)["num_heads"] == 0:
            check_configuration(sliced, sample, inputs, attention_slices)


def test_multihead_attention_masks_and_self_attention() -> None:
    torch.manual_seed(0)
    sliced = make_sliced(nn.MultiheadAttention(C(8, 16, label="e"), C(2, 4, label="h"), batch_first=True))
    sliced.bind({"e": 8, "h": 4})
    x = torch.randn(3, 6, 8)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[:, -2:] = True
    plain = sliced.export_layer(sliced.decisions)
    got = sliced(x, x, x, key_padding_mask=mask, average_attn_weights=False)
    torch.testing.assert_close(got, plain(x, x, x, key_padding_mask=mask, average_attn_weights=False))
    assert got[1].shape == (3, 4, 6, 6) and (got[1][..., -2:] == 0).all()


# Shared decisions --------------------------------------------------------------------------
def test_layers_built_on_one_choice_follow_one_decision() -> None:
    torch.manual_seed(0)
    width = C(4, 8, label="width")
    convolution = make_sliced(nn.Conv2d(3, width, 3, padding=1))
    norm = make_sliced(nn.BatchNorm2d(width))
    head = make_sliced(nn.Linear(width, C(2, 5, label="classes")))
    decisions: dict[str, Any] = {"width": 4, "classes": 2}
    for layer in (convolution, norm, head):
        layer.bind(decisions)
    x = torch.randn(2, 3, 6, 6)

    def supernet() -> torch.Tensor:
        return head(norm(convolution(x)).mean((2, 3)))

    assert supernet().shape == (2, 2)
    decisions.update(width=8, classes=5)
    output = supernet()
    assert output.shape == (2, 5)
    frozen = torch.nn.Sequential(
        convolution.export_layer(decisions), norm.export_layer(decisions).train(), torch.nn.Identity()
    )
    expected = head.export_layer(decisions)(frozen(x).mean((2, 3)))
    torch.testing.assert_close(output, expected)


# Errors ------------------------------------------------------------------------------------
def test_unsupported_layer_names_the_layer_its_choices_and_what_is_supported() -> None:
    with pytest.raises(SlicingError, match=r"ConvTranspose2d.*out_channels=Categorical") as caught:
        make_sliced(nn.ConvTranspose2d(3, C(4, 8, label="w"), 3))
    message = str(caught.value)
    for supported in ("BatchNorm2d", "Conv1d", "Conv2d", "Conv3d", "LayerNorm", "Linear", "MultiheadAttention"):
        assert supported in message
    assert "LayerChoice" in message and "SLICED_LAYERS" in message
    assert isinstance(caught.value, SpaceError)
    with pytest.raises(SlicingError, match="Conv2d has none"):
        make_sliced(torch.nn.Conv2d(3, 4, 3))
    assert torch.nn.ConvTranspose2d not in SLICED_LAYERS


@pytest.mark.parametrize(
    ("build", "argument", "supported"),
    [
        (lambda: nn.Conv2d(3, 8, 3, bias=C(True, False, label="b")), "'bias'", "in_channels, kernel_size"),
        (lambda: nn.Conv2d(3, 8, 3, padding_mode=C("zeros", "reflect", label="m")), "'padding_mode'", "groups"),
        (lambda: nn.MultiheadAttention(8, 2, batch_first=C(True, False, label="f")), "'batch_first'", "embed_dim"),
        (lambda: nn.BatchNorm2d(8, affine=C(True, False, label="a")), "'affine'", "momentum, num_features"),
    ],
)
def test_a_choice_that_cannot_share_weights_is_named(build: Callable[[], Any], argument: str, supported: str) -> None:
    with pytest.raises(SlicingError, match=f"{argument} cannot be a choice.*{supported}"):
        make_sliced(build())


def test_input_that_does_not_match_the_decisions() -> None:
    sliced = make_sliced(nn.Conv2d(C(4, 8, label="i"), 8, 3))
    sliced.bind({"i": 8})
    with pytest.raises(SlicingError, match=r"input has channels 4.*\{'i': 8\}.* make it 8"):
        sliced(torch.randn(1, 4, 5, 5))
    linear = make_sliced(nn.Linear(C(4, 8, label="i"), 2))
    with pytest.raises(SlicingError, match="input has features 8"):
        linear(torch.randn(2, 8))
    norm = make_sliced(nn.LayerNorm(C(4, 8, label="n")))
    with pytest.raises(SlicingError, match=r"ends in shape \(8,\).*normalized_shape \(4,\)"):
        norm(torch.randn(2, 8))
    sliced.bind({"i": 16})
    with pytest.raises(SampleError, match="'i'"):
        sliced(torch.randn(1, 16, 5, 5))


def test_arguments_that_do_not_fit_are_errors() -> None:
    with pytest.raises(SlicingError, match=r"'u'.*infinitely many values"):
        make_sliced(nn.Conv2d(3, to_int(uniform("u", 4, 8)), 3))
    groups = make_sliced(nn.Conv2d(C(4, 6, label="i"), 12, 3, groups=C(1, 4, label="g")))
    groups.bind({"i": 6, "g": 4})
    with pytest.raises(SlicingError, match="in_channels=6 and out_channels=12 must both be divisible by groups=4"):
        groups(torch.randn(1, 6, 5, 5))
    sliced = make_sliced(nn.Conv2d(3, C(4, 8, label="w"), 3))
    with pytest.raises(SlicingError, match=r"size \(32, 3, 3, 3\) does not fit .* \(8, 3, 3, 3\)"):
        sliced.sliced_forward(torch.randn(1, 3, 5, 5), **sliced.arguments({"w": 8}) | {"out_channels": 32})
    with pytest.raises(SlicingError, match=r"neither a sample \(missing labels \['w'\]\).*unknown names \['x'\]"):
        sliced.export_layer({"x": 1})
    with pytest.raises(SlicingError, match="different lengths"):
        make_sliced(nn.LayerNorm(C(4, (4, 2), label="n")))
    with pytest.raises(SlicingError, match="kdim=10 differs from embed_dim"):
        make_sliced(nn.MultiheadAttention(C(8, 16, label="e"), 2, kdim=10))
    with pytest.raises(SlicingError, match=r"vdim=.*'v'.* differs"):
        make_sliced(nn.MultiheadAttention(C(8, 16, label="e"), 2, vdim=C(8, 16, label="v")))
    attention = make_sliced(nn.MultiheadAttention(C(8, 12, label="e"), C(1, 8, label="h")))
    attention.bind({"e": 12, "h": 8})
    x = torch.randn(3, 2, 12)
    with pytest.raises(SlicingError, match="embed_dim=12 is not divisible by num_heads=8"):
        attention(x, x, x)


@pytest.mark.parametrize("kernel", [2, 4, (2, 3)])
def test_same_padding_with_a_padding_mode_pads_like_torch(kernel: Any) -> None:
    sliced = make_sliced(
        nn.Conv2d(2, C(3, 4, label="o"), kernel, padding="same", dilation=C(1, 3, label="d"), padding_mode="circular")
    )
    for sample in ({"o": 3, "d": 3}, {"o": 4, "d": 1}):
        check_configuration(sliced, sample, lambda a: (torch.randn(1, 2, 9, 10),), conv_slices)


def test_a_changed_decision_or_init_argument_takes_effect_at_the_next_forward() -> None:
    """The evaluated arguments are remembered per decision; changing either (BN
    calibration sets momentum=None in place) is seen by the next forward."""
    norm = make_sliced(nn.BatchNorm1d(C(2, 4, label="w"), momentum=0.5))
    norm.bind({"w": 4})
    x = torch.randn(8, 4)
    norm(x)
    assert torch.allclose(norm.running_mean, 0.5 * x.mean(0))  # type: ignore[arg-type]
    norm.decisions["w"] = 2
    assert norm(x[:, :2]).shape == (8, 2)
    norm.init_arguments["momentum"] = 1.0
    norm(x[:, :2])
    assert torch.allclose(norm.running_mean[:2], x[:, :2].mean(0))  # type: ignore[index]


def test_remembered_arguments_stay_bounded() -> None:
    from archsmith.strategy.oneshot import _sliced

    widths = list(range(1, _sliced._MAX_REMEMBERED + 200))
    sliced = make_sliced(nn.Linear(3, Categorical(widths, label="w")))
    decisions: dict[str, Any] = {}
    sliced.bind(decisions)
    x = torch.randn(2, 3)
    for w in widths:
        decisions["w"] = w
        assert sliced(x).shape == (2, w)
        assert len(sliced.__dict__["_arguments_cache"]) <= _sliced._MAX_REMEMBERED
