"""archsmith: neural architecture search for PyTorch.

The names a user types daily are here; the layers (``archsmith.space``,
``archsmith.nn``) hold the rest.
"""

from archsmith.nn import ModelSpace, fixed_arch, model_wrapper
from archsmith.space import (
    ArchsmithError,
    ExpressionError,
    LabelConflictError,
    NotFrozenError,
    SampleError,
    SpaceError,
    load_arch,
    save_arch,
)

__version__ = "0.1.0"

__all__ = [
    "ArchsmithError",
    "ExpressionError",
    "LabelConflictError",
    "ModelSpace",
    "NotFrozenError",
    "SampleError",
    "SpaceError",
    "__version__",
    "fixed_arch",
    "load_arch",
    "model_wrapper",
    "save_arch",
]
