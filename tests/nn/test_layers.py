"""``archsmith.nn`` is a drop-in for ``torch.nn``: every layer, accepting choices."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith.nn._layers import LAYERS
from archsmith.space import Categorical, evaluate

from ._helpers import assert_plain, count_params

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore:enable_nested_tensor:UserWarning")

# Arguments that build each layer (layers missing here take none).
PLAIN_ARGS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "AdaptiveAvgPool1d": ((2,), {}),
    "AdaptiveAvgPool2d": ((2,), {}),
    "AdaptiveAvgPool3d": ((2,), {}),
    "AdaptiveLogSoftmaxWithLoss": ((4, 6, [2]), {}),
    "AdaptiveMaxPool1d": ((2,), {}),
    "AdaptiveMaxPool2d": ((2,), {}),
    "AdaptiveMaxPool3d": ((2,), {}),
    "AvgPool1d": ((2,), {}),
    "AvgPool2d": ((2,), {}),
    "AvgPool3d": ((2,), {}),
    "BatchNorm1d": ((3,), {}),
    "BatchNorm2d": ((3,), {}),
    "BatchNorm3d": ((3,), {}),
    "Bilinear": ((2, 3, 4), {}),
    "ChannelShuffle": ((2,), {}),
    "CircularPad1d": ((1,), {}),
    "CircularPad2d": ((1,), {}),
    "CircularPad3d": ((1,), {}),
    "ConstantPad1d": ((1, 0.5), {}),
    "ConstantPad2d": ((1, 0.5), {}),
    "ConstantPad3d": ((1, 0.5), {}),
    "Conv1d": ((2, 3, 3), {}),
    "Conv2d": ((2, 3, 3), {}),
    "Conv3d": ((2, 3, 3), {}),
    "ConvTranspose1d": ((2, 3, 3), {}),
    "ConvTranspose2d": ((2, 3, 3), {}),
    "ConvTranspose3d": ((2, 3, 3), {}),
    "CrossMapLRN2d": ((3,), {}),
    "DataParallel": ((torch.nn.Linear(2, 2),), {}),
    "Embedding": ((5, 3), {}),
    "EmbeddingBag": ((5, 3), {}),
    "Fold": (((4, 4), 2), {}),
    "FractionalMaxPool2d": ((2,), {"output_size": 2}),
    "FractionalMaxPool3d": ((2,), {"output_size": 2}),
    "GRU": ((2, 3), {}),
    "GRUCell": ((2, 3), {}),
    "GroupNorm": ((2, 4), {}),
    "InstanceNorm1d": ((3,), {}),
    "InstanceNorm2d": ((3,), {}),
    "InstanceNorm3d": ((3,), {}),
    "LPPool1d": ((2, 2), {}),
    "LPPool2d": ((2, 2), {}),
    "LPPool3d": ((2, 2), {}),
    "LSTM": ((2, 3), {}),
    "LSTMCell": ((2, 3), {}),
    "LayerNorm": ((4,), {}),
    "LazyConv1d": ((3, 3), {}),
    "LazyConv2d": ((3, 3), {}),
    "LazyConv3d": ((3, 3), {}),
    "LazyConvTranspose1d": ((3, 3), {}),
    "LazyConvTranspose2d": ((3, 3), {}),
    "LazyConvTranspose3d": ((3, 3), {}),
    "LazyLinear": ((3,), {}),
    "Linear": ((2, 3), {}),
    "LinearCrossEntropyLoss": ((4, 5), {}),
    "LocalResponseNorm": ((3,), {}),
    "MaxPool1d": ((2,), {}),
    "MaxPool2d": ((2,), {}),
    "MaxPool3d": ((2,), {}),
    "MaxUnpool1d": ((2,), {}),
    "MaxUnpool2d": ((2,), {}),
    "MaxUnpool3d": ((2,), {}),
    "MultiheadAttention": ((4, 2), {}),
    "PixelShuffle": ((2,), {}),
    "PixelUnshuffle": ((2,), {}),
    "RMSNorm": ((4,), {}),
    "RNN": ((2, 3), {}),
    "RNNBase": (("LSTM", 2, 3), {}),
    "RNNCell": ((2, 3), {}),
    "RNNCellBase": ((2, 3, True, 1), {}),
    "ReflectionPad1d": ((1,), {}),
    "ReflectionPad2d": ((1,), {}),
    "ReflectionPad3d": ((1,), {}),
    "ReplicationPad1d": ((1,), {}),
    "ReplicationPad2d": ((1,), {}),
    "ReplicationPad3d": ((1,), {}),
    "SyncBatchNorm": ((3,), {}),
    "Threshold": ((0.1, 0.0), {}),
    "Transformer": (
        (),
        {"d_model": 4, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 8},
    ),
    "TransformerDecoder": ((torch.nn.TransformerDecoderLayer(4, 2, dim_feedforward=8), 1), {}),
    "TransformerDecoderLayer": ((4, 2), {"dim_feedforward": 8}),
    "TransformerEncoder": (
        (torch.nn.TransformerEncoderLayer(4, 2, dim_feedforward=8), 1),
        {"enable_nested_tensor": False},
    ),
    "TransformerEncoderLayer": ((4, 2), {"dim_feedforward": 8}),
    "Unflatten": ((1, (2, 2)), {}),
    "Unfold": ((2,), {}),
    "ZeroPad1d": ((1,), {}),
    "ZeroPad2d": ((1,), {}),
    "ZeroPad3d": ((1,), {}),
}

CONTAINERS = ["Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


def torch_layer_names() -> list[str]:
    """Every public module class of ``torch.nn`` except the containers (computed
    independently of ``archsmith.nn._layers``)."""
    return sorted(
        name
        for name in dir(torch.nn)
        if not name.startswith("_")
        and isinstance(getattr(torch.nn, name), type)
        and issubclass(getattr(torch.nn, name), torch.nn.Module)
        and name not in [*CONTAINERS, "Container"]
    )


def plain_args(name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return PLAIN_ARGS.get(name, ((), {}))


def is_json_value(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    return isinstance(v, (tuple, list)) and all(is_json_value(x) for x in v)


def init_parameters(torch_class: type) -> list[inspect.Parameter]:
    params = list(inspect.signature(torch_class).parameters.values())
    if [p.kind for p in params] == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]:
        # a decorated __init__ (deprecated layers): read the wrapped one
        params = list(inspect.signature(inspect.unwrap(torch_class.__init__)).parameters.values())[1:]
    return params


def takes_no_arguments(torch_class: type) -> bool:
    return torch_class.__init__ is torch.nn.Module.__init__


def with_one_choice(name: str, label: str) -> tuple[tuple[Any, ...], dict[str, Any], str]:
    """The plain arguments of ``name`` with one of them replaced by a one-candidate
    choice; returns (args, kwargs, argument name)."""
    args, kwargs = plain_args(name)
    params = init_parameters(nn.LAYERS[name]._torch_class)
    for i, value in enumerate(args):
        if is_json_value(value):
            new = list(args)
            new[i] = Categorical([value], label=label)
            return tuple(new), dict(kwargs), params[i].name
    for p in params:
        if p.name in kwargs or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if is_json_value(p.default):
            return args, {**kwargs, p.name: Categorical([p.default], label=label)}, p.name
    if [p.kind for p in params] == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]:
        return (Categorical([0], label=label),), {}, params[0].name  # Identity ignores its arguments
    raise AssertionError(f"{name}: no argument to put a choice in")


WITH_ARGUMENTS = sorted(name for name in LAYERS if not takes_no_arguments(getattr(torch.nn, name)))


def test_every_torch_layer_is_wrapped() -> None:
    assert sorted(LAYERS) == torch_layer_names()
    assert len(LAYERS) > 100


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_exists_and_subclasses_torch(name: str) -> None:
    layer = getattr(nn, name)
    torch_class = getattr(torch.nn, name)
    assert layer is LAYERS[name]
    assert layer is not torch_class
    assert issubclass(layer, torch_class)
    assert issubclass(layer, nn.MutableModule)
    assert layer.__module__ == "archsmith.nn"
    assert name in nn.__all__


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_plain_arguments_give_a_plain_torch_layer(name: str) -> None:
    args, kwargs = plain_args(name)
    torch_class = getattr(torch.nn, name)
    layer = getattr(nn, name)(*args, **kwargs)
    assert type(layer) is torch_class
    assert repr(layer) == repr(torch_class(*args, **kwargs))


def test_layers_without_arguments_are_only_activations_and_the_like() -> None:
    without = sorted(set(LAYERS) - set(WITH_ARGUMENTS))
    assert {"Sigmoid", "Tanh", "Softsign"} <= set(without)
    assert {"Conv2d", "Linear", "Identity", "Softmax", "NLLLoss2d"} <= set(WITH_ARGUMENTS)
    assert len(WITH_ARGUMENTS) > 120


@pytest.mark.parametrize("name", WITH_ARGUMENTS)
def test_every_layer_accepts_a_choice(name: str) -> None:
    label = f"arg_of_{name}"
    args, kwargs, arg_name = with_one_choice(name, label)
    layer = getattr(nn, name)(*args, **kwargs)
    assert isinstance(layer, LAYERS[name])
    assert isinstance(layer, getattr(torch.nn, name))
    assert [leaf.label for leaf in layer.own_leaves()] == [label]
    # (a deprecated layer's decorated __init__ binds everything to **kwargs)
    assert list(layer.mutable_arguments) in ([arg_name], ["kwargs"])

    sample = {label: layer.own_leaves()[0].values[0]}
    with archsmith.fixed_arch(sample):
        frozen = getattr(nn, name)(*args, **kwargs)
    torch_class = getattr(torch.nn, name)
    plain = torch_class(*evaluate(args, sample), **evaluate(kwargs, sample))
    assert type(frozen) is torch_class
    assert repr(frozen) == repr(plain)


@pytest.mark.parametrize("name", WITH_ARGUMENTS)
def test_calling_a_searching_layer_raises_not_frozen(name: str) -> None:
    # Lazy layers run a shape-inference hook before forward: it must not get there first.
    label = f"called_{name}"
    args, kwargs, _ = with_one_choice(name, label)
    layer = getattr(nn, name)(*args, **kwargs)
    with pytest.raises(archsmith.NotFrozenError, match=label):
        layer(torch.zeros(1, 2, 4, 4, 4))


def test_containers_and_helpers_are_torch_own() -> None:
    for name in CONTAINERS:
        assert getattr(nn, name) is getattr(torch.nn, name)
    assert nn.functional is torch.nn.functional
    assert nn.init is torch.nn.init
    assert nn.utils is torch.nn.utils
    assert nn.Parameter is torch.nn.Parameter
    # anything else torch.nn has is reachable too
    assert nn.Buffer is torch.nn.Buffer
    assert nn.modules is torch.nn.modules
    with pytest.raises(AttributeError):
        nn.NoSuchLayer


def test_value_choice_is_the_nni_name_for_a_categorical() -> None:
    width = nn.ValueChoice([16, 32], label="vc_width")
    assert isinstance(width, Categorical)
    assert width.label == "vc_width"
    assert width.values == [16, 32]
    weighted = nn.ValueChoice([1, 2], label="vc_weighted", prior=[0.25, 0.75])
    assert weighted.weights == [0.25, 0.75]
    assert nn.ValueChoice.max is archsmith.space.max
    assert nn.ValueChoice.condition is archsmith.space.condition
    assert nn.choice("vc_c", [1, 2]).values == [1, 2]


def test_plain_torch_instances_are_instances_of_the_archsmith_layer() -> None:
    # Drop-in: weight-init code written as `isinstance(m, nn.Conv2d)` must keep
    # matching the (plain torch) layers archsmith.nn builds.
    conv = nn.Conv2d(3, 8, 3)
    assert isinstance(conv, nn.Conv2d)
    assert isinstance(torch.nn.Linear(2, 2), nn.Linear)
    assert not isinstance(torch.nn.Linear(2, 2), nn.Conv2d)


class InitsLinearsToOnes(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, nn.choice("ones_width", [2, 4]))
        self.out = nn.Linear(2, 2)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.ones_(m.weight)


def test_isinstance_weight_init_reaches_frozen_layers() -> None:
    model = InitsLinearsToOnes().freeze({"ones_width": 2})
    assert torch.equal(model.fc.weight, torch.ones(2, 3))
    assert torch.equal(model.out.weight, torch.ones(2, 2))


# Representative layers with choices in several arguments: (name, builder).
# A builder returns (args, kwargs) holding explicitly labelled choices.
def _conv2d() -> Any:
    k = nn.choice("conv_k", [1, 3])
    return (3, nn.choice("conv_w", [4, 8])), {
        "kernel_size": k,
        "padding": k // 2,
        "bias": nn.choice("conv_b", [True, False]),
    }


def _linear() -> Any:
    return (nn.choice("lin_in", [2, 5]), nn.choice("lin_in", [2, 5]) * 3), {}


def _batchnorm() -> Any:
    return (nn.choice("bn_c", [3, 6]),), {
        "momentum": nn.uniform("bn_m", 0.05, 0.2),
        "affine": nn.choice("bn_a", [True, False]),
    }


def _layernorm() -> Any:
    return ([2, nn.choice("ln_c", [3, 6])],), {}


def _groupnorm() -> Any:
    return (nn.choice("gn_g", [1, 2]), 4), {}


def _dropout() -> Any:
    return (), {"p": nn.choice("do_p", [0.0, 0.25, 0.5])}


def _maxpool() -> Any:
    return (nn.choice("mp_k", [2, 3]),), {"stride": nn.choice("mp_s", [1, 2])}


def _embedding() -> Any:
    return (10, nn.choice("emb_d", [2, 4])), {}


def _lstm() -> Any:
    return (3,), {"hidden_size": nn.choice("lstm_h", [2, 4]), "num_layers": nn.choice("lstm_l", [1, 2])}


def _mha() -> Any:
    return (), {"embed_dim": nn.choice("mha_e", [4, 8]), "num_heads": nn.choice("mha_h", [1, 2])}


def _encoder_layer() -> Any:
    d = nn.choice("enc_d", [4, 8])
    return (d, 2), {"dim_feedforward": d * 2}


def _prelu() -> Any:
    return (), {"num_parameters": nn.choice("prelu_n", [1, 3])}


def _conv_transpose() -> Any:
    return (2, nn.choice("ct_w", [2, 3]), (nn.choice("ct_kh", [1, 2]), 3)), {}


def _leaky_relu() -> Any:
    return (nn.quniform("lrelu_s", 0.0, 0.2, 0.1),), {}


REPRESENTATIVE = {
    "Conv2d": _conv2d,
    "Linear": _linear,
    "BatchNorm2d": _batchnorm,
    "LayerNorm": _layernorm,
    "GroupNorm": _groupnorm,
    "Dropout": _dropout,
    "MaxPool2d": _maxpool,
    "Embedding": _embedding,
    "LSTM": _lstm,
    "MultiheadAttention": _mha,
    "TransformerEncoderLayer": _encoder_layer,
    "PReLU": _prelu,
    "ConvTranspose2d": _conv_transpose,
    "LeakyReLU": _leaky_relu,
}


class OneLayer(nn.ModelSpace):
    def __init__(self, name: str) -> None:
        super().__init__()
        args, kwargs = REPRESENTATIVE[name]()
        self.layer = getattr(nn, name)(*args, **kwargs)


@pytest.mark.parametrize("name", sorted(REPRESENTATIVE))
def test_layer_with_choices_is_mutable_then_frozen_to_plain_torch(name: str) -> None:
    space = OneLayer(name)
    args, kwargs = REPRESENTATIVE[name]()
    labels = {leaf.label for leaf in archsmith.space.leaves_of([args, kwargs])}
    layer = space.layer
    assert isinstance(layer, LAYERS[name]) and isinstance(layer, nn.MutableModule)
    assert {leaf.label for leaf in layer.own_leaves()} == labels
    assert set(space.search_space) == labels
    # The searching layer is built on the meta device: the space holds no weights.
    assert all(p.device.type == "meta" for p in layer.parameters())
    with pytest.raises(archsmith.NotFrozenError):
        space.layer(torch.zeros(1))

    samples = [space.default(), *(space.random(seed) for seed in range(4))]
    for sample in samples:
        frozen = space.freeze(sample)
        torch_class = getattr(torch.nn, name)
        plain = torch_class(*evaluate(args, sample), **evaluate(kwargs, sample))
        assert type(frozen.layer) is torch_class
        assert repr(frozen.layer) == repr(plain)
        assert count_params(frozen.layer) == count_params(plain)
        assert {k: v.shape for k, v in frozen.state_dict().items()} == {
            f"layer.{k}": v.shape for k, v in plain.state_dict().items()
        }
        assert_plain(frozen)


def test_frozen_conv_has_the_evaluated_arguments() -> None:
    space = OneLayer("Conv2d")
    model = space.freeze({"conv_k": 3, "conv_w": 8, "conv_b": False})
    conv = model.layer
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.padding) == (3, 8, (3, 3), (1, 1))
    assert conv.bias is None
    assert conv(torch.zeros(1, 3, 5, 5)).shape == (1, 8, 5, 5)


def test_searching_layer_shows_its_choices() -> None:
    layer = nn.Linear(4, nn.choice("shown_width", [8, 16]))
    assert repr(nn.choice("shown_width", [8, 16])) in repr(layer)
    assert layer.out_features.label == "shown_width"
    assert layer.in_features == 4
    assert layer.init_arguments == {"in_features": 4, "out_features": layer.out_features}


def test_bad_layer_arguments_name_the_layer() -> None:
    with pytest.raises(TypeError, match=r"Linear: .*'foo'"):
        nn.Linear(4, nn.choice("bad_arg_width", [1, 2]), foo=3)
