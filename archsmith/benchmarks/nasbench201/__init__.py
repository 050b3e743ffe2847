"""NAS-Bench-201: the table (15,625 cells, 12-epoch accuracies), its model space
and the ``"benchmark"`` engine that answers trials by lookup. The table ships in
``data/`` (xz-compressed) and is read the first time it is used."""

from typing import TYPE_CHECKING, Any

from ._space import OP_FACTORIES, NasBench201Space
from ._table import (
    DATASETS,
    EDGES,
    METRICS,
    OPS,
    BenchmarkError,
    NasBench201Table,
    default_path,
    packaged_file,
    sample_to_string,
    string_to_sample,
)

if TYPE_CHECKING:
    from ._engine import BenchmarkEngine, NasBench201Evaluator


def __getattr__(name: str) -> Any:
    # The engine needs the evaluator and execution layers; the space and the table
    # (what archsmith.hub re-exports) must not pull them in.
    if name in ("BenchmarkEngine", "NasBench201Evaluator"):
        from . import _engine

        return getattr(_engine, name)
    raise AttributeError(f"module 'archsmith.benchmarks.nasbench201' has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "EDGES",
    "METRICS",
    "OPS",
    "OP_FACTORIES",
    "BenchmarkEngine",
    "BenchmarkError",
    "NasBench201Evaluator",
    "NasBench201Space",
    "NasBench201Table",
    "default_path",
    "packaged_file",
    "sample_to_string",
    "string_to_sample",
]
