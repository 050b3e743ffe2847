"""The supernet: a model space whose primitives are replaced by mixed ops.

A *family* of algorithms (``"sampling"``: one path per step; ``"differentiable"``:
every path, weighted; ``"proxyless"``: binary gates) has a mixed op per primitive
type, kept in ``MIXED_OPS``. A new primitive or family is one small class plus a
``@register_mixed_op(family, primitive_type)``. ``check_supported`` lists, before
any training, every primitive a family cannot handle and the families that can.

Every mixed op reads the architecture from one :class:`Decisions` object owned by
the supernet, so ops that share a label share one decision (one sampled value, or
one vector of architecture parameters).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from archsmith.nn import ModelSpace, MutatedSpace
from archsmith.nn._layers import MutableLayer
from archsmith.nn._mutable_module import MutableModule
from archsmith.space import Categorical, CategoricalMultiple, Leaf, Sample, Space, SpaceError

from ._sliced import SLICED_LAYERS

MixedFactory = Callable[[Any, "Decisions", Callable[[torch.nn.Module], torch.nn.Module]], "MixedOp"]

#: family -> primitive type -> factory(primitive, decisions, transform) -> mixed op.
MIXED_OPS: dict[str, dict[type, MixedFactory]] = {}

#: Which algorithms use each family (for the messages of ``check_supported``).
FAMILY_ALGORITHMS: dict[str, list[str]] = {}


class UnsupportedSpaceError(SpaceError):
    """A one-shot algorithm cannot turn this model space into a supernet."""


def register_mixed_op(family: str, *primitive_types: type) -> Callable[[MixedFactory], MixedFactory]:
    """Record ``factory`` as the mixed op replacing ``primitive_types`` in ``family``."""

    def record(factory: MixedFactory) -> MixedFactory:
        ops = MIXED_OPS.setdefault(family, {})
        for primitive_type in primitive_types:
            ops[primitive_type] = factory
        return factory

    return record


def family_factory(family: str, module: torch.nn.Module) -> MixedFactory | None:
    """The factory of ``family`` for ``module``'s type (or a base of it)."""
    ops = MIXED_OPS.get(family, {})
    if isinstance(module, MutableLayer):
        return ops.get(MutableLayer) if module._torch_class in SLICED_LAYERS else None
    for cls in type(module).__mro__:
        if cls in ops:
            return ops[cls]
    return None


class Decisions(torch.nn.Module):
    """The architecture of a supernet: a current ``sample`` (label -> value) for
    sampling ops, and architecture parameters (one vector of logits per label) for
    weighted ops, created on first use so shared labels share them."""

    def __init__(self, space: Space) -> None:
        super().__init__()
        self.leaves: dict[str, Leaf] = dict(space.items())
        self.sample: dict[str, Any] = space.default()
        self.alphas = torch.nn.ParameterDict()
        self._keys: dict[str, str] = {}
        #: label -> weights over the leaf's values; set by the algorithm (softmax,
        #: Gumbel-softmax, ...). ``None``: softmax of the logits.
        self.weight_function: Callable[[str, torch.Tensor], torch.Tensor] | None = None
        #: What a family's ops share per supernet beyond the sample and the
        #: parameters (Proxyless: the binary gates drawn for the current step).
        self.state: dict[str, Any] = {}

    def options(self, label: str) -> list[Any]:
        """The values a label can take, in order (the axis of its parameters)."""
        leaf = self.leaves[label]
        if isinstance(leaf, (Categorical, CategoricalMultiple)):
            return list(leaf.values)
        raise UnsupportedSpaceError(
            f"{label!r} is a {type(leaf).__name__}; architecture parameters need a categorical choice"
        )

    def _key(self, label: str) -> str:
        # ParameterDict keys cannot hold '.'; map labels to safe, unique keys.
        if label not in self._keys:
            self._keys[label] = f"{re.sub(r'[^0-9a-zA-Z_]', '_', label)}_{len(self._keys)}"
        return self._keys[label]

    def alpha(self, label: str) -> torch.nn.Parameter:
        """The logits of ``label`` (near zero at first: every option about equally likely)."""
        key = self._key(label)
        if key not in self.alphas:
            self.alphas[key] = torch.nn.Parameter(torch.randn(len(self.options(label))) * 1e-3)
        return self.alphas[key]  # type: ignore[no-any-return]

    def weights(self, label: str) -> torch.Tensor:
        """The weight of each option of ``label`` in the current forward."""
        alpha = self.alpha(label)
        if self.weight_function is not None:
            return self.weight_function(label, alpha)
        return torch.softmax(alpha, dim=-1)

    def labels_with_alphas(self) -> list[str]:
        return [label for label in self._keys if self._keys[label] in self.alphas]

    def probabilities(self) -> dict[str, list[float]]:
        """label -> softmax of its logits, as plain floats."""
        return {
            label: torch.softmax(self.alpha(label).detach(), dim=-1).tolist() for label in self.labels_with_alphas()
        }

    def forward(self) -> None:  # pragma: no cover - a holder, not a layer
        raise RuntimeError("Decisions holds the architecture; it is not called")


class MixedOp(torch.nn.Module):
    """Base of the modules that replace a primitive in a supernet."""

    def __init__(self, decisions: Decisions) -> None:
        super().__init__()
        # Held in a list so it is not registered as a child once per op.
        self._decisions = [decisions]

    @property
    def decisions(self) -> Decisions:
        return self._decisions[0]

    def labels(self) -> list[str]:
        """The labels this op reads."""
        raise NotImplementedError

    def export_state(self, sample: Mapping[str, Any], prefix: str, recurse: ExportFn) -> dict[str, torch.Tensor]:
        """The state dict entries of the frozen module at ``prefix`` for ``sample``;
        ``recurse(module, sample, prefix)`` exports a child module."""
        raise NotImplementedError


ExportFn = Callable[[torch.nn.Module, Mapping[str, Any], str], dict[str, torch.Tensor]]


def subnet_state(module: torch.nn.Module, sample: Mapping[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict the frozen model of ``sample`` needs, read off the supernet."""
    if isinstance(module, MixedOp):
        return module.export_state(sample, prefix, subnet_state)
    if isinstance(module, Decisions):
        return {}
    state: dict[str, torch.Tensor] = {}
    for name, tensor in module.named_parameters(recurse=False):
        state[prefix + name] = tensor.detach()
    for name, buffer in module.named_buffers(recurse=False):
        if buffer is not None and name not in module._non_persistent_buffers_set:
            state[prefix + name] = buffer.detach()
    for name, child in module.named_children():
        state.update(subnet_state(child, sample, f"{prefix}{name}."))
    return state


def _primitives(module: torch.nn.Module, path: str = "") -> Iterator[tuple[str, torch.nn.Module]]:
    """``(path, module)`` of the outermost primitives (mutable modules) in ``module``."""
    for name, child in module.named_children():
        where = f"{path}.{name}" if path else name
        if isinstance(child, MutableModule) and not isinstance(child, ModelSpace):
            yield where, child
        else:
            yield from _primitives(child, where)


def _owns_leaves(module: torch.nn.Module) -> bool:
    return isinstance(module, MutableModule) and bool(module.own_leaves())


def check_supported(space: ModelSpace, family: str, algorithm: str) -> None:
    """Raise :class:`UnsupportedSpaceError` listing every primitive of ``space`` that
    ``family`` cannot handle, with the algorithms that can, before any training."""
    if isinstance(space, MutatedSpace):
        if family != "sampling":
            able = ", ".join(sorted(FAMILY_ALGORITHMS.get("sampling", [])))
            raise UnsupportedSpaceError(
                f"{algorithm} cannot build a supernet of a mutated space (nn.mutate): its mutators rewrite the "
                f"graph per architecture, so only one path can run at a time, and {algorithm} runs or weights "
                f"several at once; search it with {able} (one path per step), or a multi-trial strategy"
            )
        return
    problems = []
    for path, module in _primitives(space):
        problems += _check(module, path, family)
    leaves = dict(space.search_space.items())
    owned = {leaf.label for m in space.modules() if isinstance(m, MutableModule) for leaf in m.own_leaves()}
    loose = [label for label in leaves if label not in owned]
    if loose:
        problems.append(
            f"  - {', '.join(map(repr, loose))}: chosen in the model's own code (not inside an archsmith.nn "
            "layer or primitive), so no weights can be shared across its values; search it with a "
            "multi-trial strategy, or move it into a layer argument or a LayerChoice"
        )
    if problems:
        raise UnsupportedSpaceError(
            f"{algorithm} cannot build a supernet of {type(space).__name__}:\n" + "\n".join(problems)
        )


def _check(module: torch.nn.Module, path: str, family: str) -> list[str]:
    reason = unsupported_reason(family, module)
    if reason is not None:
        return [f"  - {path}: {_describe(module)}: {reason}; {_who_can(family, module)}"]
    if family_factory(family, module) is not None:
        out = []
        for name, child in module.named_children():
            for inner_path, inner in _primitives_including(child, f"{path}.{name}"):
                out += _check(inner, inner_path, family)
        return out
    if _owns_leaves(module):
        return [f"  - {path}: {_describe(module)}{_why_unsupported(module)}; {_who_can(family, module)}"]
    out = []
    for name, child in module.named_children():
        for inner_path, inner in _primitives_including(child, f"{path}.{name}"):
            out += _check(inner, inner_path, family)
    return out


def unsupported_reason(family: str, module: torch.nn.Module) -> str | None:
    """Why ``family`` has an op for this primitive type but not for this instance."""
    factory = family_factory(family, module)
    check = getattr(factory, "unsupported_reason", None)
    return check(module) if check is not None else None  # type: ignore[no-any-return]


def _who_can(family: str, module: torch.nn.Module) -> str:
    able = sorted(
        algorithm
        for other, algorithms in FAMILY_ALGORITHMS.items()
        if other != family and family_factory(other, module) is not None and unsupported_reason(other, module) is None
        for algorithm in algorithms
    )
    return f"supported by {', '.join(able)}" if able else "no one-shot algorithm supports it"


def _primitives_including(module: torch.nn.Module, path: str) -> Iterator[tuple[str, torch.nn.Module]]:
    if isinstance(module, MutableModule) and not isinstance(module, ModelSpace):
        yield path, module
    else:
        yield from _primitives(module, path)


def _describe(module: torch.nn.Module) -> str:
    return module.describe() if isinstance(module, MutableModule) else type(module).__name__


def _why_unsupported(module: torch.nn.Module) -> str:
    if isinstance(module, MutableLayer) and module._torch_class not in SLICED_LAYERS:
        supported = ", ".join(sorted({cls.__name__ for cls in SLICED_LAYERS}))
        return f" (weights are shared for choices in {supported} only)"
    return ""


def transform(module: torch.nn.Module, family: str, decisions: Decisions) -> torch.nn.Module:
    """Replace every primitive under ``module`` (in place) by ``family``'s mixed op."""

    def replace(child: torch.nn.Module) -> torch.nn.Module:
        factory = family_factory(family, child) if isinstance(child, MutableModule) else None
        if factory is not None and not isinstance(child, ModelSpace):
            return factory(child, decisions, replace)
        for name, grandchild in list(child.named_children()):
            new = replace(grandchild)
            if new is not grandchild:
                child._modules[name] = new
        return child

    return replace(module)


class Supernet(torch.nn.Module):
    """A model space with its primitives replaced by ``family``'s mixed ops.

    ``model`` is a deep copy of the space (the user's space is left as it was);
    ``decisions`` holds the architecture; ``architecture_parameters()`` and
    ``weight_parameters()`` split the parameters for the two optimizers.
    """

    def __init__(self, space: ModelSpace, family: str, algorithm: str = "this algorithm") -> None:
        super().__init__()
        if not isinstance(space, ModelSpace) or space.is_frozen:
            raise SpaceError(f"a supernet is built from a model space, got {type(space).__name__}")
        check_supported(space, family, algorithm)
        self.family = family
        self.space_class = type(space)
        self.search_space = space.search_space
        self.decisions = Decisions(space.search_space)
        whole = family_factory(family, space) if isinstance(space, MutatedSpace) else None
        if whole is not None:  # mutators rewrite the whole graph: one op stands for the model
            self.model: torch.nn.Module = whole(space, self.decisions, lambda m: m)
        else:
            self.model = transform(copy.deepcopy(space), family, self.decisions)
        self.mixed_ops = [m for m in self.model.modules() if isinstance(m, MixedOp)]
        self._create_alphas()

    def _create_alphas(self) -> None:
        for op in self.mixed_ops:
            create = getattr(op, "create_parameters", None)
            if create is not None:
                create()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def architecture_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.decisions.parameters())

    def weight_parameters(self) -> list[torch.nn.Parameter]:
        arch = {id(p) for p in self.architecture_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def active_labels(self, sample: Mapping[str, Any]) -> set[str]:
        """The labels that matter for ``sample``'s subnet: not those inside an
        unchosen candidate or a block beyond the chosen depth (the space's own
        :meth:`~archsmith.space.Space.active_labels`)."""
        return self.search_space.active_labels(sample)

    def architecture_key(self, sample: Mapping[str, Any]) -> str:
        """The same for two samples of one architecture (that differ only in
        decisions the subnet does not use)."""
        return self.search_space.architecture_key(sample)

    def set_sample(self, sample: Mapping[str, Any]) -> None:
        """Make the sampling ops run ``sample``'s path from the next forward on."""
        self.decisions.sample.clear()
        self.decisions.sample.update(sample)

    def subnet_state_dict(self, sample: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The weights of ``sample``'s subnet, named as in ``space.freeze(sample)``."""
        try:
            sample = self.search_space.validate(sample)
        except SpaceError as e:
            raise SpaceError(
                f"the sample does not fit this supernet of {self.space_class.__name__} (is weights_from the "
                f"supernet of another space?): {e}"
            ) from None
        return subnet_state(self.model, sample)

    def freeze(self, sample: Sample) -> torch.nn.Module:
        """The subnet of ``sample`` as a plain model, with the supernet's weights."""
        from archsmith.nn import fixed_arch

        sample = self.search_space.validate(sample)
        if isinstance(self.model, MixedOp):  # a mutated space's op builds its own plain model
            model = self.model.freeze(sample)  # type: ignore[operator]
        else:
            args, kwargs = self.model.init_arguments  # type: ignore[operator, misc]
            with fixed_arch(sample):
                model = self.space_class(*args, **kwargs)
        model.load_state_dict(self.subnet_state_dict(sample))
        return model
