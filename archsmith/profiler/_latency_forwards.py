"""What each primitive of a searching space computes in its frozen form, for the
current sample, as forwards ``LatencyProfiler`` puts in the primitives' place; and
the readable paths its keys name modules by."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from archsmith.nn import Cell, InputChoice, LayerChoice, NasBench101Cell, Repeat
from archsmith.nn._frozen import reduce_tensors
from archsmith.nn._layers import MutableLayer
from archsmith.space import evaluate, fixed_sample, leaves_of

from ._sampled_forwards import cell_forward, repeat_forward
from ._terms import hashable, rebuild_nb101


class FrozenForwards:
    """Forwards computing what a primitive's frozen form computes for
    ``self._sample``; layers built for a sample are kept in ``self._layers``, with
    initial weights drawn from ``self.seed``."""

    _sample: Mapping[str, Any]
    _layers: dict[Any, torch.nn.Module]
    seed: int

    @contextlib.contextmanager
    def _building(self, device: torch.device) -> Iterator[None]:
        """Build on ``device``, drawing initial weights from a seeded generator of
        our own: the caller's random state stays as it was."""
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), torch.device(device):
            torch.manual_seed(self.seed)
            yield

    def _layer_forward(
        self, layer: MutableLayer, device: torch.device
    ) -> tuple[Callable[..., Any], Callable[[], Any], Callable[[], str]]:
        torch_class, arguments = layer._torch_class, dict(layer.init_arguments)
        labels = tuple(sorted({leaf.label for leaf in leaves_of(layer.mutable_arguments)}))
        signature = inspect.signature(torch_class)
        resolved: dict[Any, tuple[Any, str]] = {}

        def chosen() -> tuple[Any, str]:
            key = tuple(hashable(self._sample[label]) for label in labels)
            found = resolved.get(key)
            if found is None:
                values = evaluate(arguments, self._sample)
                text = ", ".join(f"{k}={v!r}" for k, v in values.items())
                found = resolved[key] = (hashable(list(values.items())), f"{torch_class.__name__}({text})")
            return found

        def forward(*args: Any, **kwargs: Any) -> Any:
            key = (id(layer), chosen()[0])
            built = self._layers.get(key)
            if built is None:
                bound = inspect.BoundArguments(signature, evaluate(arguments, self._sample))  # type: ignore[arg-type]
                with self._building(device):
                    built = self._layers[key] = torch_class(*bound.args, **bound.kwargs).eval()
            return built(*args, **kwargs)

        return forward, lambda: chosen()[0], lambda: chosen()[1]

    def _choice_forward(self, choice: LayerChoice) -> Callable[..., Any]:
        def forward(*args: Any, **kwargs: Any) -> Any:
            return choice[self._sample[choice.label]](*args, **kwargs)

        return forward

    def _input_forward(self, choice: InputChoice) -> tuple[Callable[..., Any], Callable[[], str]]:
        def chosen() -> list[int]:
            value = self._sample[choice.label]
            return [value] if choice.n_chosen == 1 else list(value)

        def forward(candidate_inputs: list[torch.Tensor]) -> Any:
            return reduce_tensors(choice.reduction, [candidate_inputs[i] for i in chosen()])

        return forward, lambda: f"InputChoice(chosen={chosen()}, reduction={choice.reduction!r})"

    def _repeat_forward(self, repeat: Repeat) -> Callable[..., Any]:
        return repeat_forward(repeat, lambda: self._sample)

    def _cell_forward(self, cell: Cell) -> Callable[..., Any]:
        return cell_forward(cell, lambda: self._sample)

    def _nb101_forward(
        self, cell: NasBench101Cell, device: torch.device
    ) -> tuple[Callable[..., Any], Callable[[], str]]:
        labels = tuple(leaf.label for leaf in cell.own_leaves())

        def values() -> dict[str, Any]:
            return {label: self._sample[label] for label in labels if label in self._sample}

        def forward(x: Any) -> Any:
            key = (id(cell), tuple(hashable(self._sample.get(label)) for label in labels))
            body = self._layers.get(key)
            if body is None:
                with fixed_sample(values()), self._building(device):
                    body = rebuild_nb101(cell).eval()
                self._layers[key] = body
            return body(x)

        return forward, lambda: f"NasBench101Cell({values()})"


def relative(path: str, parent: str) -> str:
    """``path`` seen from ``parent`` (``op[c5]`` from ``cells.0`` for ``cells.0.op[c5]``)."""
    if parent and path.startswith(parent) and path[len(parent) : len(parent) + 1] in (".", "["):
        return path[len(parent) :].removeprefix(".")
    return path


def readable_paths(model: torch.nn.Module) -> dict[int, str]:
    """Each module's path in the space, a ``LayerChoice`` candidate named by its key
    (``cells.0.op[sepconv3x3]`` rather than ``cells.0.op.2``)."""
    paths: dict[int, str] = {}

    def visit(module: torch.nn.Module, path: str) -> None:
        if id(module) in paths:
            return  # a shared module keeps its first path, as named_modules() gives it
        paths[id(module)] = path
        for name, child in module.named_children():
            if isinstance(module, LayerChoice) and name.isdigit() and int(name) < len(module.names):
                visit(child, f"{path}[{module.names[int(name)]}]")
            else:
                visit(child, f"{path}.{name}" if path else name)

    visit(model, "")
    return paths
