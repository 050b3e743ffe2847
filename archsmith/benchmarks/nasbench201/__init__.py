"""NAS-Bench-201: the table (15,625 cells, 12-epoch accuracies), its model space
and the ``"benchmark"`` engine that answers trials by lookup. The table ships in
``data/`` (xz-compressed) and is read the first time it is used."""

from ._engine import BenchmarkEngine, NasBench201Evaluator
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
