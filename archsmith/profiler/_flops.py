"""``FlopsProfiler``: multiply-accumulates of a sample's frozen model on an example input.

The searching space is copied once onto the ``meta`` device and each primitive's
``forward`` replaced by what its frozen form computes for the current sample
(the chosen candidate, the chosen depth, a layer built with the chosen
arguments). A sample then runs the user's own ``forward`` on meta tensors — shapes
only, no arithmetic, no module built — under torch's flop counter, with two
tables in front of it (:mod:`._memo`): every torch call and every module free of
choices is answered from what an earlier call with the same input shapes (and
the same hyper-parameters) gave, and each primitive from what it gave for the
same input shapes and values of the choices inside it. So a new sample mostly
runs Python that looks things up.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any, ClassVar

import torch
from torch.utils.flop_counter import FlopCounterMode

from archsmith.nn import Cell, InputChoice, LayerChoice, ModelSpace, NasBench101Cell, Repeat
from archsmith.nn._frozen import reduce_tensors
from archsmith.nn._layers import MutableLayer
from archsmith.nn._mutable_module import MutableModule
from archsmith.nn._nasbench101 import NasBench101Body, vertex_channels
from archsmith.space import evaluate, fixed_sample, leaves_of

from ._base import Profiler
from ._check import check_space, searching_space
from ._memo import MAX_MEMO, OpMemo, Recorder, Unkeyable, arg_key, module_signature
from ._sampled_forwards import cell_forward, repeat_forward
from ._terms import ProfilerError, frozen_nb101_on_meta, hashable, nb101_graph

#: Primitives whose searching forward already calls only (replaced) children.
_PASS_THROUGH = ("AutoActivation", "NasBench201Cell")


def frozen_macs(model: torch.nn.Module, example_input: Any) -> float:
    """Multiply-accumulates of a plain module on ``example_input`` by torch's flop
    counter (its FLOPs halved), counted on the ``meta`` device."""
    # Inference: eval mode (no auxiliary heads); the counter reads shapes only.
    meta_model = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter:
        meta_model(*_as_args(_to_meta(example_input)))
    return float(counter.get_total_flops() // 2)


class _NoModuleTracker:
    """Stands in for the flop counter's module tracker: its per-module breakdown
    names every module on every call, most of a profile's time, and only the total
    (which it also keeps under "Global") is read here."""

    parents: ClassVar[set[str]] = {"Global"}

    def __enter__(self) -> _NoModuleTracker:
        return self

    def __exit__(self, *args: Any) -> None:
        return None


def _total_only_counter() -> FlopCounterMode:
    """torch's flop counter, counting totals only (its formulas and decompositions unchanged)."""
    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):  # a torch without it counts as is
        counter.mod_tracker = _NoModuleTracker()  # type: ignore[assignment]
    return counter


def _to_meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to("meta")
    if isinstance(value, list | tuple):
        return type(value)(_to_meta(v) for v in value)
    return value


def _meta_tensor(t: torch.Tensor) -> torch.Tensor:
    meta = torch.empty(t.shape, dtype=t.dtype, device="meta")
    return torch.nn.Parameter(meta, t.requires_grad) if isinstance(t, torch.nn.Parameter) else meta


def _meta_copy(module: torch.nn.Module, memo: dict[int, torch.nn.Module]) -> torch.nn.Module:
    """A copy of the module tree with its parameters and buffers on ``meta`` and
    every other attribute shared: ``deepcopy`` would also copy each choice and
    hook table, seconds on a cell space of thousands of modules."""
    if id(module) in memo:
        return memo[id(module)]
    new = memo[id(module)] = object.__new__(type(module))  # no __init__, and no MutableLayer.__new__
    new.__dict__.update(module.__dict__)
    new.__dict__["_parameters"] = {k: None if p is None else _meta_tensor(p) for k, p in module._parameters.items()}
    new.__dict__["_buffers"] = {k: None if b is None else _meta_tensor(b) for k, b in module._buffers.items()}
    new.__dict__["_modules"] = {k: None if c is None else _meta_copy(c, memo) for k, c in module._modules.items()}
    return new


def _as_args(example_input: Any) -> tuple[Any, ...]:
    return tuple(example_input) if isinstance(example_input, tuple) else (example_input,)


class FlopsProfiler(Profiler):
    """``profile(sample)``: the multiply-accumulates (MACs, what papers quote as
    "FLOPs" or "MAdds") of ``space.freeze(sample)`` run on ``example_input``, equal to
    torch's ``FlopCounterMode`` total halved. Checked against freezing on the
    default sample and ``check_samples`` seeded random ones at construction.

    >>> import torch, archsmith.nn as nn
    >>> class Net(nn.ModelSpace):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, nn.choice("hidden", [8, 16]))
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> FlopsProfiler(Net(), torch.zeros(2, 4)).profile({"hidden": 16})
    128.0
    """

    name = "flops"
    unit = "MACs"

    def __init__(self, space: ModelSpace, example_input: Any, *, check_samples: int = 2, seed: int = 0) -> None:
        self.space = searching_space(space, "FlopsProfiler")
        if not isinstance(example_input, torch.Tensor | tuple):
            raise ProfilerError(
                f"FlopsProfiler: example_input must be a tensor (or a tuple of the forward's arguments), "
                f"got {type(example_input).__name__}"
            )
        self.example_input = example_input
        self._args = _as_args(_to_meta(example_input))
        self._sample: Mapping[str, Any] = {}
        self._recorder = Recorder()
        self._model = _meta_copy(space, {}).eval()
        self._layers: dict[Any, Any] = {}
        self._signatures: dict[int, Any] = {}
        self._signature_ids: dict[Any, int] = {}
        for module in self._model.modules():
            module_signature(module, self._signatures)  # before any forward is replaced
        for module in self._model.modules():
            self._replace_forward(module)
        check_space(self.space, self._profile, self._frozen, "FlopsProfiler", check_samples, seed)

    def _frozen(self, model: torch.nn.Module, sample: Mapping[str, Any]) -> float:
        return frozen_macs(model, self.example_input)

    def profile(self, sample: Mapping[str, Any]) -> float:
        """The MACs of ``space.freeze(sample)`` on the example input; a bad sample
        raises the space's own ``SampleError``."""
        return self._profile(self.space._architecture(sample))

    def _profile(self, sample: Mapping[str, Any]) -> float:
        recorder = self._recorder
        self._sample, recorder.extra = sample, 0
        with torch.no_grad(), _total_only_counter() as counter, OpMemo(recorder):
            recorder.counter = counter
            try:
                self._model(*self._args)
            finally:
                recorder.counter = None
        return float((counter.get_total_flops() + recorder.extra) // 2)

    # Replacing primitives ----------------------------------------------------------
    def _replace_forward(self, module: torch.nn.Module) -> None:
        if isinstance(module, MutableLayer):
            forward, decided = self._layer_forward(module)
            ident: Any = module._torch_class  # layers built with equal arguments are one layer
        elif isinstance(module, MutableModule):
            if isinstance(module, LayerChoice):
                forward = self._choice_forward(module)
            elif isinstance(module, InputChoice):
                forward = self._input_forward(module)
            elif isinstance(module, Repeat):
                forward = self._repeat_forward(module)
            elif isinstance(module, Cell):
                forward = self._cell_forward(module)
            elif isinstance(module, NasBench101Cell):
                forward = self._nb101_forward(module)
            elif type(module).__name__ in _PASS_THROUGH:
                return
            else:
                raise ProfilerError(
                    f"{module.describe()}: FlopsProfiler does not know what the frozen form of "
                    f"{type(module).__name__} computes; count it by freezing the space instead"
                )
            ident = id(module)
            labels = tuple(sorted({leaf.label for m in module.modules() for leaf in _own_leaves(m)}))
            decided = self._sample_key(labels)
        elif type(module).forward is torch.nn.Module.forward or module is self._model:
            return  # a container that is never called, or the space's own glue
        elif any(isinstance(m, MutableModule) for m in module.modules()):
            return  # plain code around primitives: its torch calls are memoised one by one
        else:
            self._wrap_plain(module)
            return
        object.__setattr__(module, "forward", self._memoised(ident, decided, forward))

    def _wrap_plain(self, module: torch.nn.Module) -> None:
        """Memoise a module free of choices by its signature and input (a module
        with none, by itself)."""
        signature = self._signatures.get(id(module))
        if signature is None and id(module) not in self._signatures:
            signature = module_signature(module, self._signatures)
        ident: Any = (
            id(module) if signature is None else self._signature_ids.setdefault(signature, len(self._signature_ids))
        )
        object.__setattr__(module, "forward", self._memoised(("plain", ident), _no_decision, module.forward))

    def _sample_key(self, labels: tuple[str, ...]) -> Callable[[], Any]:
        def key() -> Any:
            return tuple([hashable(self._sample.get(label)) for label in labels])

        return key

    def _memoised(self, ident: Any, decided: Callable[[], Any], forward: Callable[..., Any]) -> Any:
        """``forward`` memoised by its inputs' keys and ``decided()`` (what the
        sample decides of the module): a hit adds the recorded FLOPs and returns the
        recorded output without running anything."""
        recorder = self._recorder

        def call(*args: Any, **kwargs: Any) -> Any:
            if kwargs:
                return forward(*args, **kwargs)
            try:
                with torch._C.DisableTorchFunction():  # the key's own .shape and .stride() are not calls to memoise
                    key = (ident, arg_key(args), decided())
            except Unkeyable:
                return forward(*args)
            found = recorder.lookup(key)
            if found is not None:
                return found
            return recorder.record(key, lambda: forward(*args))

        return call

    def _layer_forward(self, layer: MutableLayer) -> tuple[Callable[..., Any], Callable[[], Any]]:
        """The layer built with the sample's arguments, and those arguments as a key
        (many samples give one layer the same arguments through different choices)."""
        torch_class, arguments = layer._torch_class, dict(layer.init_arguments)
        labels = tuple(sorted({leaf.label for leaf in leaves_of(layer.mutable_arguments)}))
        signature = inspect.signature(torch_class)
        resolved: dict[Any, tuple[Any, ...]] = {}

        def decided() -> Any:
            key = tuple([hashable(self._sample[label]) for label in labels])
            found = resolved.get(key)
            if found is None:
                found = resolved[key] = hashable(list(evaluate(arguments, self._sample).items()))
            return found

        def forward(*args: Any, **kwargs: Any) -> Any:
            key = (torch_class, decided())
            built = self._layers.get(key)
            if built is None:
                bound = inspect.BoundArguments(signature, evaluate(arguments, self._sample))  # type: ignore[arg-type]
                with torch.device("meta"):
                    built = torch_class(*bound.args, **bound.kwargs)
                built.eval()
                self._keep(key, built)
            return built(*args, **kwargs)

        return forward, decided

    def _keep(self, key: Any, built: Any) -> None:
        if len(self._layers) >= MAX_MEMO:  # bounded, as the memo
            self._layers.clear()
        self._layers[key] = built

    def _choice_forward(self, choice: LayerChoice) -> Callable[..., Any]:
        def forward(*args: Any, **kwargs: Any) -> Any:
            return choice[self._sample[choice.label]](*args, **kwargs)

        return forward

    def _input_forward(self, choice: InputChoice) -> Callable[..., Any]:
        def forward(candidate_inputs: list[torch.Tensor]) -> Any:
            value = self._sample[choice.label]
            chosen = [value] if choice.n_chosen == 1 else list(value)
            return reduce_tensors(choice.reduction, [candidate_inputs[i] for i in chosen])

        return forward

    def _repeat_forward(self, repeat: Repeat) -> Callable[..., Any]:
        return repeat_forward(repeat, lambda: self._sample)

    def _cell_forward(self, cell: Cell) -> Callable[..., Any]:
        return cell_forward(cell, lambda: self._sample)

    def _nb101_forward(self, cell: NasBench101Cell) -> Callable[..., Any]:
        """The frozen cell's own forward over its pruned graph, its projections and
        ops built once per width (and memoised as plain modules)."""
        labels = tuple(leaf.label for leaf in cell.own_leaves())
        parts: dict[Any, torch.nn.Module] = {}

        def part(key: Any, factory: Callable[..., torch.nn.Module], *args: Any) -> torch.nn.Module:
            if key not in parts:
                with fixed_sample(dict(self._sample)), torch.device("meta"):
                    built = parts[key] = factory(*args).eval()
                for module in built.modules():
                    if type(module).forward is not torch.nn.Module.forward:
                        self._wrap_plain(module)
            return parts[key]

        def body(values: dict[str, Any]) -> Any:
            graph = nb101_graph(cell, values)
            if graph is None:
                return frozen_nb101_on_meta(cell, values)  # raises the cell's own error
            matrix, ops = graph
            channels = vertex_channels(cell.in_features, cell.out_features, matrix)
            n = len(matrix)
            projections = {
                str(t): part(("projection", channels[t]), cell.projection, cell.in_features, channels[t])
                for t in range(1, n)
                if matrix[0][t]
            }
            chosen = {
                str(t): part((ops[t - 1], channels[t]), cell.op_candidates[ops[t - 1]], channels[t])
                for t in range(1, n - 1)
            }
            frozen = SimpleNamespace(matrix=matrix, channels=channels, projections=projections, ops=chosen)
            return lambda x: NasBench101Body.forward(frozen, x)  # type: ignore[arg-type]

        def forward(x: Any) -> Any:
            key = (id(cell), tuple([hashable(self._sample.get(label)) for label in labels]))
            run = self._layers.get(key)
            if run is None:
                run = body({label: self._sample[label] for label in labels if label in self._sample})
                self._keep(key, run)
            return run(x)

        return forward

    def __repr__(self) -> str:
        return f"FlopsProfiler({type(self.space).__name__})"


def _no_decision() -> Any:
    return None


def _own_leaves(module: torch.nn.Module) -> list[Any]:
    if isinstance(module, MutableLayer):
        return leaves_of(module.mutable_arguments)
    if isinstance(module, MutableModule):
        return module.own_leaves()
    return []
