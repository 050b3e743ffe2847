"""archsmith: neural architecture search for PyTorch.

The names a user types daily are here; the layers (``archsmith.space``,
``archsmith.nn``, ``archsmith.evaluator``, ``archsmith.strategy``,
``archsmith.execution``, ``archsmith.experiment``) hold the rest.
"""

from archsmith.evaluator import (
    current_sample,
    report,
    report_final,
    report_final_result,
    report_intermediate_result,
    should_stop,
)
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
    "current_sample",
    "fixed_arch",
    "load_arch",
    "model_wrapper",
    "report",
    "report_final",
    "report_final_result",
    "report_intermediate_result",
    "save_arch",
    "should_stop",
]
