"""archsmith: neural architecture search for PyTorch.

The names a user types daily are here; the layers (``archsmith.space``,
``archsmith.nn``, ``archsmith.evaluator``, ``archsmith.strategy``,
``archsmith.execution``, ``archsmith.experiment``) hold the rest. They load on
first use, so ``import archsmith`` (and the command line) stay fast.
"""

from typing import TYPE_CHECKING, Any

from archsmith.space import (
    ArchsmithError,
    ExpressionError,
    LabelConflictError,
    NotFrozenError,
    SampleError,
    SpaceError,
    choice,
    load_arch,
    save_arch,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from archsmith.evaluator import (
        current_sample,
        report,
        report_final,
        report_final_result,
        report_intermediate_result,
        should_stop,
    )
    from archsmith.nn import ModelSpace, fixed_arch, model_wrapper

_LAZY = {
    "current_sample": "archsmith.evaluator",
    "report": "archsmith.evaluator",
    "report_final": "archsmith.evaluator",
    "report_final_result": "archsmith.evaluator",
    "report_intermediate_result": "archsmith.evaluator",
    "should_stop": "archsmith.evaluator",
    "ModelSpace": "archsmith.nn",
    "fixed_arch": "archsmith.nn",
    "model_wrapper": "archsmith.nn",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archsmith' has no attribute {name!r}")


__all__ = [
    "ArchsmithError",
    "ExpressionError",
    "LabelConflictError",
    "ModelSpace",
    "NotFrozenError",
    "SampleError",
    "SpaceError",
    "__version__",
    "choice",
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
