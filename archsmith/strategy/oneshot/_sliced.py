"""Weight-sharing ("sliced") layers: one set of tensors for every candidate of a layer.

``make_sliced(nn.Conv2d(3, nn.ValueChoice([8, 16]), nn.ValueChoice([3, 5])))`` allocates real
parameters at the largest size each argument can take (16 output channels, a 5x5
kernel), initialised as torch initialises that largest layer. Each configuration runs
on a slice of them:

- channels and features: a prefix (the first ``out_channels`` rows, the first
  ``in_channels // groups`` columns);
- kernel sizes: the centre crop, starting at ``(max - k) // 2`` in each dimension;
- groups: the weight keeps its ``(out, in // groups, *kernel)`` layout at the largest
  ``in // groups``, and a configuration uses ``weight[:out, :in // groups]``: every
  group reads the same leading columns (NNI's rule). Depthwise convolutions
  (``groups == in_channels``) use column 0;
- BatchNorm: prefixes of the affine parameters and running statistics; a training
  forward updates the running statistics of the slice in place;
- LayerNorm: a prefix in each normalised dimension;
- MultiheadAttention: the first ``embed_dim`` rows of each q/k/v block of ``in_proj``
  and a prefix of ``out_proj``; the heads split that prefix
  (``head_dim = embed_dim // num_heads``).

Stride, padding, dilation, eps, momentum and dropout change no tensor's shape: they may
be choices and pass through. The current decisions live in ``layer.decisions``, a plain
``{label: value}`` dict that a supernet shares among all its layers (``layer.bind``).

Weight mixing (``mixed_forward``): a weighted sum of several configurations' outputs,
computed as one run of the layer on the weighted sum of their slices, each slice
zero-padded to the largest (centred for kernels). Convolutions, linear layers and
batch norm compute exactly the output mixture that way (they are linear in their
weights, and batch norm normalises each channel on its own); the others say why not
(``weight_mixing_problem``).
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from archsmith.nn import MutableLayer
from archsmith.space import Leaf, SpaceError, contains_mutable, evaluate, leaves_of
from archsmith.space._expression import bounded_leaves

#: Evaluated arguments a sliced layer keeps at most (see ``_current_arguments``).
_MAX_REMEMBERED = 1024

# Finding a largest size by enumerating more combinations than this means the space
# is not what its author thinks; say so rather than hang.
_MAX_COMBINATIONS = 100_000


class SlicingError(SpaceError):
    """A layer, or a choice in it, cannot share weights across its candidates."""


class SlicedLayer(torch.nn.Module):
    """A layer whose candidates share one set of tensors, sized for the largest.

    Subclasses say which arguments may be choices (``shareable``), build the torch
    layer at the largest sizes (``_full_layer``), slice its tensors for concrete
    arguments (``sliced_state``) and run on the slices (``sliced_forward``).
    """

    shareable: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, layer: MutableLayer) -> None:
        super().__init__()
        self.torch_class: type[torch.nn.Module] = layer._torch_class
        self.description = layer.describe()
        parameters = inspect.signature(self.torch_class).parameters.values()
        defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        # Every argument of the torch layer (torch's defaults filled in), choices kept.
        self.init_arguments: dict[str, Any] = {**defaults, **layer.init_arguments}
        self.leaves: list[Leaf] = leaves_of(layer.mutable_arguments)
        self.decisions: dict[str, Any] = {leaf.label: leaf.default() for leaf in self.leaves}
        fixed_only = [name for name in layer.mutable_arguments if name not in self.shareable]
        if fixed_only:
            raise SlicingError(
                f"{self.description}: {', '.join(map(repr, fixed_only))} cannot be a choice when the candidates "
                f"share weights; a sliced {self.torch_class.__name__} takes choices in "
                f"{', '.join(sorted(self.shareable))}. Fix the argument to one value, or put the "
                "variants in a LayerChoice (each candidate then has weights of its own)."
            )
        self._check_arguments()
        self._adopt(self._full_layer())

    # What subclasses define -----------------------------------------------------------
    def _check_arguments(self) -> None:
        """Raise :class:`SlicingError` for argument combinations that cannot be shared."""

    def _full_layer(self) -> torch.nn.Module:
        """The torch layer at the largest sizes, initialised by torch."""
        raise NotImplementedError

    def sliced_state(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The slices (views where possible) of the shared tensors that the configuration
        ``arguments`` uses, named as in the plain torch layer's ``state_dict`` (``None``
        where that layer has no such tensor)."""
        raise NotImplementedError

    def sliced_forward(self, *inputs: Any, **arguments: Any) -> Any:
        """Run the configuration given by the concrete ``arguments`` (all of
        ``self.arguments(sample)``) on the shared tensors."""
        raise NotImplementedError

    def weight_mixing_problem(self, combinations: Sequence[Mapping[str, Any]]) -> str | None:
        """Why the configurations ``combinations`` (concrete arguments) cannot run as one
        layer on mixed weights; ``None`` when :meth:`mixed_forward` computes their mixture."""
        return f"a {self.torch_class.__name__} has no weight-mixing form"

    def mixed_forward(
        self, x: Any, *, combinations: Sequence[Mapping[str, Any]], weights: torch.Tensor, **kwargs: Any
    ) -> Any:
        """``sum_i weights[i] * output_i`` (outputs zero-padded to the largest) of the
        configurations ``combinations``, run once on their mixed weights. The input has
        the largest input width the configurations read."""
        raise SlicingError(f"{self.description}: {self.weight_mixing_problem(combinations)}")

    # The common part ---------------------------------------------------------------------
    def bind(self, decisions: dict[str, Any]) -> None:
        """Read the decisions from ``decisions`` (a dict shared by the whole supernet;
        later changes to it take effect at the next forward)."""
        self.decisions = decisions

    def arguments(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """Every init argument, evaluated against ``sample``."""
        return evaluate(self.init_arguments, sample)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.sliced_forward(*inputs, **kwargs, **self._current_arguments())

    def _current_arguments(self) -> dict[str, Any]:
        """``arguments(decisions)``, remembered per combination of this layer's values:
        evaluating the expressions on every forward is much of a small layer's cost."""
        key = tuple(self.decisions.get(leaf.label) for leaf in self.leaves)
        # Whoever changes an init argument (BN calibration sets momentum=None) starts
        # a new cache; the old values are held, so an identity check cannot be fooled.
        inits = tuple(self.init_arguments.values())
        held = self.__dict__.get("_arguments_inits")
        if held is None or len(held) != len(inits) or any(a is not b for a, b in zip(held, inits)):
            self.__dict__["_arguments_inits"], self.__dict__["_arguments_cache"] = inits, {}
        cache: dict[Any, dict[str, Any]] = self.__dict__["_arguments_cache"]
        try:
            found = cache.get(key)
        except TypeError:  # an unhashable value: evaluate every time
            return self.arguments(self.decisions)
        if found is None:
            # A layer read by many choices (a loose-end width) meets new keys for ever.
            if len(cache) >= _MAX_REMEMBERED:
                cache.clear()
            found = cache[key] = self.arguments(self.decisions)
        return found

    def export_layer(self, arguments_or_sample: Mapping[str, Any]) -> torch.nn.Module:
        """A plain torch layer for one configuration, holding a copy of its slices.

        ``arguments_or_sample`` is a sample when it has a value for every label of this
        layer, else init arguments (at least the ones that are choices here).
        """
        arguments = self._concrete(arguments_or_sample)
        state = {name: t.detach() for name, t in self.sliced_state(arguments).items() if t is not None}
        if not state:  # e.g. BatchNorm without affine parameters or running statistics
            return self.torch_class(**arguments).train(self.training)
        device = next(iter(state.values())).device
        dtype = next((t.dtype for t in state.values() if t.is_floating_point()), None)
        with torch.device("meta"):  # no memory, no random init: the weights are copied in
            layer = self.torch_class(**{**arguments, "device": None, "dtype": dtype})
        layer.to_empty(device=device)
        layer.load_state_dict(state)  # copies
        return layer.train(self.training)

    def extra_repr(self) -> str:
        return f"{self.description}, decisions={ {leaf.label: self.decisions.get(leaf.label) for leaf in self.leaves} }"

    # Helpers -------------------------------------------------------------------------------
    def _concrete(self, arguments_or_sample: Mapping[str, Any]) -> dict[str, Any]:
        if all(leaf.label in arguments_or_sample for leaf in self.leaves):
            return self.arguments(arguments_or_sample)
        unknown = sorted(set(arguments_or_sample) - set(self.init_arguments))
        arguments = {**self.init_arguments, **arguments_or_sample}
        unresolved = sorted(name for name, value in arguments.items() if contains_mutable(value))
        if unknown or unresolved:
            missing = [leaf.label for leaf in self.leaves if leaf.label not in arguments_or_sample]
            raise SlicingError(
                f"{self.description}: got neither a sample (missing labels {missing}) nor concrete "
                f"arguments (unknown names {unknown}, still choices {unresolved}); pass a sample with "
                "every label, or the result of .arguments(sample)."
            )
        return arguments

    def _adopt(self, full: torch.nn.Module) -> None:
        """Take over the tensors (and sub-modules) of ``full`` under the same names, so
        ``state_dict`` keys match the plain torch layer's."""
        for name, parameter in full._parameters.items():
            self.register_parameter(name, parameter)
        for name, buffer in full._buffers.items():
            self.register_buffer(name, buffer, persistent=name not in full._non_persistent_buffers_set)
        for name, child in full._modules.items():
            self.add_module(name, child)

    def _fixed(self, *names: str) -> dict[str, Any]:
        """The named arguments (those this torch version has), all of them fixed values."""
        return {name: self.init_arguments[name] for name in names if name in self.init_arguments}

    def _max_of(self, names: Sequence[str], size: Callable[..., Any] = lambda x: x) -> Any:
        """The largest ``size(*arguments)`` over every value the named arguments can take
        (the Cartesian product of their leaves' values); tuples are compared per element."""
        values = [self.init_arguments[name] for name in names]
        leaves = bounded_leaves(values)
        for leaf in leaves:
            if not leaf.is_discrete:
                raise SlicingError(
                    f"{self.description}: {'/'.join(names)} depends on {leaf.label!r} ({leaf.describe()}), "
                    "which has infinitely many values, so there is no largest size to allocate; "
                    "give it a quantize step or make it a choice."
                )
        grids = [leaf.grid() for leaf in leaves]
        if math.prod(len(grid) for grid in grids) > _MAX_COMBINATIONS:
            raise SlicingError(
                f"{self.description}: {'/'.join(names)} take more than {_MAX_COMBINATIONS} combinations "
                f"of {[leaf.label for leaf in leaves]}; cannot find their largest size."
            )
        largest: Any = None
        for combination in itertools.product(*grids):
            value = size(*evaluate(values, {leaf.label: v for leaf, v in zip(leaves, combination)}))
            if largest is None:
                largest = value
            elif isinstance(value, tuple):
                if len(value) != len(largest):
                    raise SlicingError(
                        f"{self.description}: {'/'.join(names)} takes values of different lengths "
                        f"({largest} and {value}); a shared tensor needs one number of dimensions."
                    )
                largest = tuple(max(a, b) for a, b in zip(largest, value))
            else:
                largest = max(largest, value)
        return largest

    def _crop(self, tensor: torch.Tensor | None, sizes: Sequence[int], centre_from: int | None = None) -> Any:
        """The leading ``sizes`` of ``tensor`` (the centred window from dimension
        ``centre_from`` on); an error if a size exceeds the shared tensor."""
        if tensor is None:
            return None
        centre_from = len(sizes) if centre_from is None else centre_from
        index = []
        for dim, (size, full) in enumerate(zip(sizes, tensor.shape)):
            if size > full:
                raise SlicingError(
                    f"{self.description}: size {tuple(sizes)} does not fit in the shared tensor of shape "
                    f"{tuple(tensor.shape)}; use only values that the layer's choices allow."
                )
            start = (full - size) // 2 if dim >= centre_from else 0
            index.append(slice(start, start + size))
        # A view (torch skips the full-size dimensions): gradients reach only the slice,
        # and BatchNorm's running statistics update in place through it.
        return tensor[tuple(index)]

    def _mixed(
        self,
        tensor: torch.Tensor | None,
        hull: Sequence[int],
        regions: Sequence[Sequence[int]],
        weights: torch.Tensor,
        centre_from: int | None = None,
    ) -> Any:
        """``sum_i weights[i] * pad(slice_i)``: the ``hull`` crop of ``tensor`` times the
        weighted sum of 0/1 masks of each region (a crop of ``hull`` like ``_crop``'s)."""
        if tensor is None:
            return None
        hull_tensor = self._crop(tensor, hull, centre_from)
        return hull_tensor * self._mask_mixture(hull_tensor.shape, regions, weights, tensor, centre_from)

    def _mask_mixture(
        self,
        shape: Sequence[int],
        regions: Sequence[Sequence[int]],
        weights: torch.Tensor,
        like: torch.Tensor,
        centre_from: int | None = None,
    ) -> torch.Tensor:
        """``sum_i weights[i] * mask_i`` over a tensor of ``shape``, ``mask_i`` being 1 on
        region ``i`` (placed as ``_crop`` places it) and 0 elsewhere."""
        key = (tuple(shape), tuple(map(tuple, regions)), centre_from, like.device, like.dtype)
        masks = self._mask_cache.get(key)
        if masks is None:  # fixed per layer and combination set: built once
            masks = torch.zeros((len(regions), *shape), dtype=like.dtype, device=like.device)
            for mask, region in zip(masks, regions):
                self._crop(mask, region, centre_from).fill_(1.0)
            masks = masks.flatten(1)
            self._mask_cache[key] = masks
        return (weights.to(like.dtype) @ masks).view(tuple(shape))

    @property
    def _mask_cache(self) -> dict[Any, torch.Tensor]:
        cache = self.__dict__.get("_masks")
        if cache is None:
            cache = self.__dict__["_masks"] = {}
        return cache  # type: ignore[no-any-return]

    def _check_input(self, what: str, got: int, expected: int) -> None:
        if got != expected:
            raise SlicingError(
                f"{self.description}: the input has {what} {got}, but the current decisions "
                f"({ {leaf.label: self.decisions.get(leaf.label) for leaf in self.leaves} }) make it {expected}; "
                "the layer before must produce what this layer expects (share the choice between them)."
            )


def _tuple(value: Any, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


_CONVOLUTIONS: dict[type[torch.nn.Module], tuple[int, Callable[..., torch.Tensor]]] = {
    torch.nn.Conv1d: (1, F.conv1d),
    torch.nn.Conv2d: (2, F.conv2d),
    torch.nn.Conv3d: (3, F.conv3d),
}


class SlicedConv(SlicedLayer):
    """``Conv1d``/``Conv2d``/``Conv3d``: channel prefixes, centre-cropped kernels."""

    shareable = frozenset({"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"})
    weight: torch.Tensor
    bias: torch.Tensor | None

    def _full_layer(self) -> torch.nn.Module:
        dims = _CONVOLUTIONS[self.torch_class][0]
        # Built with groups=1 and in_channels = the largest in_channels // groups: the
        # same weight shape, and the same fan-in (so the same init) as the largest layer.
        return self.torch_class(
            self._max_of(["in_channels", "groups"], lambda channels, groups: channels // groups),
            self._max_of(["out_channels"]),
            self._max_of(["kernel_size"], lambda k: _tuple(k, dims)),
            **self._fixed("bias", "device", "dtype"),
        )

    def sliced_state(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        dims = _CONVOLUTIONS[self.torch_class][0]
        channels_in, channels_out, groups = arguments["in_channels"], arguments["out_channels"], arguments["groups"]
        if channels_in % groups or channels_out % groups:
            raise SlicingError(
                f"{self.description}: in_channels={channels_in} and out_channels={channels_out} must both be "
                f"divisible by groups={groups}; constrain the choices so that every combination is."
            )
        kernel = _tuple(arguments["kernel_size"], dims)
        return {
            "weight": self._crop(self.weight, (channels_out, channels_in // groups, *kernel), centre_from=2),
            "bias": self._crop(self.bias, (channels_out,)),
        }

    def sliced_forward(self, x: torch.Tensor, **arguments: Any) -> torch.Tensor:
        dims, convolution = _CONVOLUTIONS[self.torch_class]
        self._check_input("channels", x.shape[x.dim() - dims - 1], arguments["in_channels"])
        state = self.sliced_state(arguments)
        padding, dilation, mode = arguments["padding"], arguments["dilation"], arguments["padding_mode"]
        if mode != "zeros":  # as torch does it: pad explicitly, then convolve unpadded
            x = F.pad(x, _explicit_padding(padding, _tuple(arguments["kernel_size"], dims), dilation, dims), mode=mode)
            padding = 0
        return convolution(
            x, state["weight"], state["bias"], arguments["stride"], padding, dilation, arguments["groups"]
        )

    def _mixing_plan(self, combinations: Sequence[Mapping[str, Any]]) -> tuple[str | None, dict[str, Any]]:
        """``(problem, plan)``: the one convolution that computes the mixture (hull
        sizes, each configuration's region, groups and explicit padding), or why none does."""
        cached = self.__dict__.get("_plan")
        if cached is not None and cached[0] is combinations:  # a mixed op passes one list each time
            return cached[1]  # type: ignore[no-any-return]
        found = self._find_mixing_plan(combinations)
        self.__dict__["_plan"] = (combinations, found)
        return found

    def _find_mixing_plan(self, combinations: Sequence[Mapping[str, Any]]) -> tuple[str | None, dict[str, Any]]:
        dims = _CONVOLUTIONS[self.torch_class][0]
        first = combinations[0]
        for name in ("stride", "dilation"):
            if any(_tuple(c[name], dims) != _tuple(first[name], dims) for c in combinations):
                return f"its {name} differs between the values, which changes the output grid", {}
        groups = [c["groups"] for c in combinations]
        per_group = {(c["in_channels"] // c["groups"], c["out_channels"] // c["groups"]) for c in combinations}
        if any(g != 1 for g in groups) and len(per_group) > 1:
            return (
                "its groups and widths change which input channels each output reads (only groups=1, or "
                "widths that are fixed multiples of groups, as in depthwise convolutions, mix into one)",
                {},
            )
        full_kernel = tuple(self.weight.shape[2:])
        dilation = _tuple(first["dilation"], dims)
        paddings: set[tuple[tuple[int, int], ...]] = set()
        for c in combinations:
            kernel = _tuple(c["kernel_size"], dims)
            pairs = _explicit_padding(c["padding"], kernel, c["dilation"], dims)
            taps = []  # the padding that puts this kernel's taps where the full kernel's crop has them
            for d in range(dims):
                start = (full_kernel[d] - kernel[d]) // 2
                left, right = pairs[2 * (dims - 1 - d)], pairs[2 * (dims - 1 - d) + 1]
                taps.append((left + start * dilation[d], right + (full_kernel[d] - kernel[d] - start) * dilation[d]))
            paddings.add(tuple(taps))
        if len(paddings) > 1:
            return (
                "its padding does not keep the kernels centred on the same positions (use padding=k // 2 "
                "with odd kernel sizes, or 'same')",
                {},
            )
        (needed,) = paddings
        hull = (
            max(c["out_channels"] for c in combinations),
            max(c["in_channels"] // c["groups"] for c in combinations),
            *full_kernel,
        )
        regions = [
            (c["out_channels"], c["in_channels"] // c["groups"], *_tuple(c["kernel_size"], dims)) for c in combinations
        ]
        return None, {"hull": hull, "regions": regions, "groups": max(groups), "padding": needed}

    def weight_mixing_problem(self, combinations: Sequence[Mapping[str, Any]]) -> str | None:
        return self._mixing_plan(combinations)[0]

    def mixed_forward(
        self, x: torch.Tensor, *, combinations: Sequence[Mapping[str, Any]], weights: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        dims, convolution = _CONVOLUTIONS[self.torch_class]
        problem, plan = self._mixing_plan(combinations)
        if problem is not None:
            raise SlicingError(f"{self.description}: {problem}")
        hull, regions, groups = plan["hull"], plan["regions"], plan["groups"]
        self._check_input("channels", x.shape[x.dim() - dims - 1], hull[1] * groups)
        weight = self._mixed(self.weight, hull, regions, weights, centre_from=2)
        bias = self._mixed(self.bias, hull[:1], [r[:1] for r in regions], weights)
        first = combinations[0]
        needed = plan["padding"]
        padding: Any = tuple(left for left, _ in needed)
        if any(left != right for left, right in needed) or first["padding_mode"] != "zeros":
            amounts = [amount for pair in reversed(needed) for amount in pair]
            mode = "constant" if first["padding_mode"] == "zeros" else first["padding_mode"]
            x, padding = F.pad(x, amounts, mode=mode), 0
        return convolution(x, weight, bias, first["stride"], padding, first["dilation"], groups)


def _explicit_padding(padding: Any, kernel: tuple[int, ...], dilation: Any, dims: int) -> list[int]:
    """``F.pad``'s amounts (last dimension first) for a convolution's ``padding``."""
    if padding == "valid":
        return [0] * (2 * dims)
    if padding == "same":  # an odd total puts the extra element on the right, as torch does
        totals = [d * (k - 1) for d, k in zip(_tuple(dilation, dims), kernel)]
        pairs = [(total // 2, total - total // 2) for total in totals]
    else:
        pairs = [(p, p) for p in _tuple(padding, dims)]
    return [amount for pair in reversed(pairs) for amount in pair]


class SlicedLinear(SlicedLayer):
    """``Linear``: ``weight[:out_features, :in_features]``, ``bias[:out_features]``."""

    shareable = frozenset({"in_features", "out_features"})
    weight: torch.Tensor
    bias: torch.Tensor | None

    def _full_layer(self) -> torch.nn.Module:
        return self.torch_class(
            self._max_of(["in_features"]), self._max_of(["out_features"]), **self._fixed("bias", "device", "dtype")
        )

    def sliced_state(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        features_in, features_out = arguments["in_features"], arguments["out_features"]
        return {
            "weight": self._crop(self.weight, (features_out, features_in)),
            "bias": self._crop(self.bias, (features_out,)),
        }

    def sliced_forward(self, x: torch.Tensor, **arguments: Any) -> torch.Tensor:
        self._check_input("features", x.shape[-1], arguments["in_features"])
        state = self.sliced_state(arguments)
        return F.linear(x, state["weight"], state["bias"])

    def weight_mixing_problem(self, combinations: Sequence[Mapping[str, Any]]) -> str | None:
        return None

    def mixed_forward(
        self, x: torch.Tensor, *, combinations: Sequence[Mapping[str, Any]], weights: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        regions = [(c["out_features"], c["in_features"]) for c in combinations]
        hull = tuple(max(sizes) for sizes in zip(*regions))
        self._check_input("features", x.shape[-1], hull[1])
        weight = self._mixed(self.weight, hull, regions, weights)
        bias = self._mixed(self.bias, hull[:1], [r[:1] for r in regions], weights)
        return F.linear(x, weight, bias)


_BATCH_NORM_INPUT_DIMS: dict[type[torch.nn.Module], tuple[int, ...]] = {
    torch.nn.BatchNorm1d: (2, 3),
    torch.nn.BatchNorm2d: (4,),
    torch.nn.BatchNorm3d: (5,),
}


class SlicedBatchNorm(SlicedLayer):
    """``BatchNorm1d/2d/3d``: prefixes of the affine parameters and running statistics.

    ``num_batches_tracked`` counts the batches of every width together (it only matters
    with ``momentum=None``, the cumulative average).
    """

    shareable = frozenset({"num_features", "eps", "momentum"})
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    num_batches_tracked: torch.Tensor | None

    def _full_layer(self) -> torch.nn.Module:
        return self.torch_class(
            self._max_of(["num_features"]), **self._fixed("affine", "track_running_stats", "bias", "device", "dtype")
        )

    def sliced_state(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        size = (arguments["num_features"],)
        return {
            "weight": self._crop(self.weight, size),
            "bias": self._crop(self.bias, size),
            # Prefixes of a 1-d buffer are views: batch_norm updates the shared buffer.
            "running_mean": self._crop(self.running_mean, size),
            "running_var": self._crop(self.running_var, size),
            "num_batches_tracked": self.num_batches_tracked,
        }

    def sliced_forward(self, x: torch.Tensor, **arguments: Any) -> torch.Tensor:
        dims = _BATCH_NORM_INPUT_DIMS[self.torch_class]
        if x.dim() not in dims:
            raise ValueError(f"{self.description}: expected a {' or '.join(map(str, dims))}-d input, got {x.dim()}-d")
        self._check_input("channels", x.shape[1], arguments["num_features"])
        return self._normalise(x, self.sliced_state(arguments), arguments)

    def weight_mixing_problem(self, combinations: Sequence[Mapping[str, Any]]) -> str | None:
        for name in ("eps", "momentum"):
            if any(c[name] != combinations[0][name] for c in combinations):
                return f"its {name} differs between the values, which is not a width"
        return None

    def mixed_forward(
        self, x: torch.Tensor, *, combinations: Sequence[Mapping[str, Any]], weights: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        problem = self.weight_mixing_problem(combinations)
        if problem is not None:
            raise SlicingError(f"{self.description}: {problem}")
        # Each channel is normalised on its own statistics, so a narrower width's
        # channels are the widest's: the mixture scales channel j by the weight of the
        # widths that have it, folded into the affine parameters (or applied after).
        widest = max(c["num_features"] for c in combinations)
        arguments = {**combinations[0], "num_features": widest}
        dims = _BATCH_NORM_INPUT_DIMS[self.torch_class]
        if x.dim() not in dims:
            raise ValueError(f"{self.description}: expected a {' or '.join(map(str, dims))}-d input, got {x.dim()}-d")
        self._check_input("channels", x.shape[1], widest)
        scale = self._mask_mixture((widest,), [(c["num_features"],) for c in combinations], weights, x)
        state = self.sliced_state(arguments)
        if state["weight"] is not None:
            state["weight"] = state["weight"] * scale
            state["bias"] = state["bias"] * scale if state["bias"] is not None else scale.new_zeros(widest)
            return self._normalise(x, state, arguments)
        return self._normalise(x, state, arguments) * scale.view(1, -1, *([1] * (x.dim() - 2)))

    def _normalise(self, x: torch.Tensor, state: Mapping[str, Any], arguments: Mapping[str, Any]) -> torch.Tensor:
        # This mirrors torch's _BatchNorm.forward.
        momentum = arguments["momentum"]
        factor = 0.0 if momentum is None else momentum
        tracking = arguments["track_running_stats"]
        if self.training and tracking and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        update = not self.training or tracking
        return F.batch_norm(
            x,
            state["running_mean"] if update else None,
            state["running_var"] if update else None,
            state["weight"],
            state["bias"],
            use_batch_stats,
            factor,
            arguments["eps"],
        )


def _shape(value: Any) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


class SlicedLayerNorm(SlicedLayer):
    """``LayerNorm``: a prefix of the affine parameters in each normalised dimension."""

    shareable = frozenset({"normalized_shape", "eps"})
    weight: torch.Tensor | None
    bias: torch.Tensor | None

    def _full_layer(self) -> torch.nn.Module:
        return self.torch_class(
            self._max_of(["normalized_shape"], _shape), **self._fixed("elementwise_affine", "bias", "device", "dtype")
        )

    def sliced_state(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        shape = _shape(arguments["normalized_shape"])
        return {"weight": self._crop(self.weight, shape), "bias": self._crop(self.bias, shape)}

    def sliced_forward(self, x: torch.Tensor, **arguments: Any) -> torch.Tensor:
        shape = _shape(arguments["normalized_shape"])
        if tuple(x.shape[-len(shape) :]) != shape:
            raise SlicingError(
                f"{self.description}: the input ends in shape {tuple(x.shape[-len(shape) :])}, but the current "
                f"decisions make normalized_shape {shape}; the layer before must produce it."
            )
        state = self.sliced_state(arguments)
        return F.layer_norm(x, shape, state["weight"], state["bias"], arguments["eps"])

    def weight_mixing_problem(self, combinations: Sequence[Mapping[str, Any]]) -> str | None:
        return (
            "a LayerNorm takes its statistics over each width's own features, so no one LayerNorm on mixed "
            "parameters computes the mixture (normalising over the widest width, as NNI does, changes the function)"
        )


class SlicedMultiheadAttention(SlicedLayer):
    """``MultiheadAttention``: ``embed_dim`` prefixes of the q, k, v and output
    projections; ``num_heads`` splits them. Keys and values must have ``embed_dim``
    features (``kdim``/``vdim`` left out, or the same choice as ``embed_dim``)."""

    shareable = frozenset({"embed_dim", "num_heads", "dropout", "kdim", "vdim"})
    in_proj_weight: torch.Tensor
    in_proj_bias: torch.Tensor | None
    out_proj: torch.nn.Linear

    def _check_arguments(self) -> None:
        embed_dim = self.init_arguments["embed_dim"]
        for name in ("kdim", "vdim"):
            value = self.init_arguments[name]
            same = value is None or value is embed_dim
            if not same and not contains_mutable(value) and not contains_mutable(embed_dim):
                same = value == embed_dim
            if not same:
                raise SlicingError(
                    f"{self.description}: {name}={value!r} differs from embed_dim={embed_dim!r}; a sliced "
                    "MultiheadAttention supports keys and values with embed_dim features only. Leave "
                    f"{name} out, pass the same choice as embed_dim, or project the inputs first."
                )

    def _full_layer(self) -> torch.nn.Module:
        # One head: the number of heads changes no tensor's shape.
        return self.torch_class(
            self._max_of(["embed_dim"]), 1, **self._fixed("bias", "add_bias_kv", "add_zero_attn", "device", "dtype")
        )

    def sliced_state(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        dim = arguments["embed_dim"]
        full = self.in_proj_weight.shape[1]
        in_proj_bias = self.in_proj_bias
        return {
            # in_proj stacks the q, k and v projections: slice each block.
            "in_proj_weight": self._crop(self.in_proj_weight.view(3, full, full), (3, dim, dim)).reshape(3 * dim, dim),
            "in_proj_bias": None
            if in_proj_bias is None
            else self._crop(in_proj_bias.view(3, full), (3, dim)).reshape(3 * dim),
            # Without add_bias_kv torch keeps bias_k/bias_v as plain None attributes.
            "bias_k": self._crop(self._parameters.get("bias_k"), (1, 1, dim)),
            "bias_v": self._crop(self._parameters.get("bias_v"), (1, 1, dim)),
            "out_proj.weight": self._crop(self.out_proj.weight, (dim, dim)),
            "out_proj.bias": self._crop(self.out_proj.bias, (dim,)),
        }

    def weight_mixing_problem(self, combinations: Sequence[Mapping[str, Any]]) -> str | None:
        return (
            "attention's softmax and its split into heads depend on embed_dim and num_heads, so no one "
            "attention on mixed projections computes the mixture"
        )

    def sliced_forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
        **arguments: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        dim, heads = arguments["embed_dim"], arguments["num_heads"]
        if dim % heads:
            raise SlicingError(
                f"{self.description}: embed_dim={dim} is not divisible by num_heads={heads}; "
                "constrain the choices so that every combination is."
            )
        for tensor in (query, key, value):
            self._check_input("features", tensor.shape[-1], dim)
        state = self.sliced_state(arguments)
        batch_first = arguments["batch_first"] and query.dim() == 3
        if batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        output, weights = F.multi_head_attention_forward(
            query,
            key,
            value,
            dim,
            heads,
            state["in_proj_weight"],
            state["in_proj_bias"],
            state["bias_k"],
            state["bias_v"],
            arguments["add_zero_attn"],
            arguments["dropout"],
            state["out_proj.weight"],
            state["out_proj.bias"],
            training=self.training,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            average_attn_weights=average_attn_weights,
            is_causal=is_causal,
        )
        return (output.transpose(0, 1) if batch_first else output), weights


SLICED_LAYERS: dict[type[torch.nn.Module], type[SlicedLayer]] = {
    torch.nn.Conv1d: SlicedConv,
    torch.nn.Conv2d: SlicedConv,
    torch.nn.Conv3d: SlicedConv,
    torch.nn.Linear: SlicedLinear,
    torch.nn.BatchNorm1d: SlicedBatchNorm,
    torch.nn.BatchNorm2d: SlicedBatchNorm,
    torch.nn.BatchNorm3d: SlicedBatchNorm,
    torch.nn.LayerNorm: SlicedLayerNorm,
    torch.nn.MultiheadAttention: SlicedMultiheadAttention,
}
"""Which sliced class shares the weights of each torch layer; one entry per layer type."""


def make_sliced(layer: torch.nn.Module) -> SlicedLayer:
    """The weight-sharing form of a mutable layer (``archsmith.nn.Conv2d`` with choices).

    >>> import torch, archsmith.nn as nn
    >>> conv = make_sliced(nn.Conv2d(3, nn.ValueChoice([8, 16], label="width"), 3, padding=1))
    >>> conv.weight.shape
    torch.Size([16, 3, 3, 3])
    >>> conv.bind({"width": 8})
    >>> conv(torch.zeros(1, 3, 5, 5)).shape
    torch.Size([1, 8, 5, 5])
    """
    if not isinstance(layer, MutableLayer):
        raise SlicingError(
            f"make_sliced takes a layer with choices in its arguments (such as "
            f"archsmith.nn.Conv2d(3, choice, 3)); {type(layer).__name__} has none to share weights across."
        )
    sliced_class = SLICED_LAYERS.get(layer._torch_class)
    if sliced_class is None:
        supported = ", ".join(sorted({cls.__name__ for cls in SLICED_LAYERS}))
        raise SlicingError(
            f"{layer.describe()}: weight sharing has no sliced form of {layer._torch_class.__name__}; "
            f"supported layers: {supported}. Put the variants in a LayerChoice instead (each candidate "
            "then has weights of its own), or add a SlicedLayer subclass to SLICED_LAYERS."
        )
    return sliced_class(layer)
