"""PyTorch primitives for model spaces. ``import archsmith.nn as nn`` is a drop-in
for ``torch.nn``: every layer is here and accepts choices as init arguments;
anything else (``nn.functional``, ``nn.init``, ``nn.Parameter``, containers) is
torch's own."""

from typing import TYPE_CHECKING, Any

import torch
from torch.nn import (
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    ParameterDict,
    ParameterList,
    Sequential,
    functional,
    init,
    utils,
)

from archsmith.space import (
    Categorical,
    CategoricalMultiple,
    Numerical,
    choice,
    condition,
    loguniform,
    quniform,
    randint,
    switch_case,
    to_float,
    to_int,
    uniform,
)

from ._autoactivation import AutoActivation
from ._cell import Cell
from ._choice import InputChoice, LayerChoice
from ._frozen import ChosenInputs
from ._graph import GraphNode, MutableGraph, UntraceableModelError
from ._layers import LAYERS, MutableLayer
from ._maybe_choice import MaybeFloatChoice, MaybeIntChoice, largest, make_divisible, maybe_choice, possible_values
from ._model_space import ModelSpace, collect_space, fixed_arch, model_wrapper
from ._mutable_module import MutableModule
from ._mutated_space import MutatedSpace, MutationError, mutate
from ._mutator import Mutator
from ._nasbench101 import NasBench101Cell
from ._nasbench201 import NasBench201Cell
from ._placeholder import Placeholder
from ._primitive import Primitive
from ._repeat import Repeat
from ._value_choice import ValueChoice

if TYPE_CHECKING:  # type checkers and IDEs see torch's layers and their signatures
    from torch.nn import *  # noqa: F403
else:
    globals().update(LAYERS)

#: NNI 3.0's names for the same layers (``MutableConv2d``, ``MutableLinear``, ...).
NNI_LAYER_NAMES = {f"Mutable{name}": cls for name, cls in LAYERS.items()}
globals().update(NNI_LAYER_NAMES)


def __getattr__(name: str) -> Any:
    # Whatever else torch.nn has (new submodules, helpers) is reachable as well.
    return getattr(torch.nn, name)


__all__ = [
    "AutoActivation",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "ParameterDict",
    "ParameterList",
    "Sequential",
    "functional",
    "init",
    "utils",
    "Categorical",
    "CategoricalMultiple",
    "Cell",
    "ChosenInputs",
    "InputChoice",
    "LayerChoice",
    "MaybeFloatChoice",
    "MaybeIntChoice",
    "ModelSpace",
    "MutableLayer",
    "MutableModule",
    "GraphNode",
    "MutableGraph",
    "MutatedSpace",
    "MutationError",
    "Mutator",
    "Placeholder",
    "UntraceableModelError",
    "mutate",
    "NasBench101Cell",
    "NasBench201Cell",
    "Numerical",
    "Primitive",
    "Repeat",
    "ValueChoice",
    "choice",
    "collect_space",
    "condition",
    "fixed_arch",
    "largest",
    "loguniform",
    "make_divisible",
    "maybe_choice",
    "model_wrapper",
    "possible_values",
    "quniform",
    "randint",
    "switch_case",
    "to_float",
    "to_int",
    "uniform",
    *sorted(LAYERS),
    *sorted(NNI_LAYER_NAMES),
]
