"""The NAS-Bench-201 table: 15,625 cells -> accuracies (12-epoch training).

Imports only the standard library and :mod:`archsmith.space`; the CSV is read with
:mod:`csv` and kept in plain dicts, so a query is one dict lookup. The table ships
inside the package (``data/mini_bench_12ep.csv.xz``) and is read on first use.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from archsmith.space import ArchsmithError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five NB201 operations, in the order the benchmark lists them."""

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet")
METRICS: tuple[str, ...] = ("val", "test")
NUM_NODES = 4
EDGES: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(1, NUM_NODES) for i in range(j))
"""The six edges ``(j, i)`` (node ``j`` reads node ``i``) in NB201 string order."""

DEFAULT_LABEL = "cell"
PACKAGED_FILE = "mini_bench_12ep.csv.xz"
"""The table shipped in ``archsmith/benchmarks/nasbench201/data/`` (see its README.md)."""
PATH_VARIABLE = "ARCHSMITH_NASBENCH201"
_COLUMNS = tuple(f"{d}-{m}" for d in DATASETS for m in METRICS)
_EDGE_LABEL = re.compile(r"^(.*)/(\d+)_(\d+)$")


class BenchmarkError(ArchsmithError, ValueError):
    """A benchmark file is missing or malformed, or a query names an unknown
    architecture, operation, dataset or metric."""


# The mapping sample <-> NB201 string ---------------------------------------------


def string_to_sample(arch: str, label: str = DEFAULT_LABEL) -> dict[str, str]:
    """The sample (``{"<label>/<j>_<i>": op}``) of an NB201 string.

    >>> string_to_sample("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")["cell/3_2"]
    'avg_pool_3x3'
    """
    if not isinstance(arch, str):
        raise BenchmarkError(f"an NB201 architecture is a string like '|op~0|+|op~0|op~1|+|...|', got {arch!r}")
    nodes = arch.strip().split("+")
    if len(nodes) != NUM_NODES - 1:
        raise BenchmarkError(f"{arch!r}: an NB201 cell string has {NUM_NODES - 1} nodes separated by '+'")
    sample: dict[str, str] = {}
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise BenchmarkError(f"{arch!r}: node {j} ({node!r}) must be enclosed in '|'")
        edges = node[1:-1].split("|")
        if len(edges) != j:
            raise BenchmarkError(f"{arch!r}: node {j} must have {j} edge(s) 'op~i', got {node!r}")
        for i, edge in enumerate(edges):
            op, sep, source = edge.partition("~")
            if not sep or source != str(i):
                raise BenchmarkError(f"{arch!r}: edge {i} of node {j} must read 'op~{i}', got {edge!r}")
            if op not in OPS:
                raise BenchmarkError(f"{arch!r}: unknown operation {op!r}; NB201 operations are {list(OPS)}")
            sample[f"{label}/{j}_{i}"] = op
    return sample


def sample_to_string(sample: Mapping[str, Any], label: str | None = None) -> str:
    """The NB201 string of a sample of the NB201 space. ``label`` is the cell's
    label; by default it is read off the sample (which must hold one cell).

    >>> s = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    >>> sample_to_string(string_to_sample(s)) == s
    True
    """
    if not isinstance(sample, Mapping):
        raise BenchmarkError(f"a sample is a dict of label -> op, got {type(sample).__name__}")
    if label is None:
        prefixes = {m.group(1) for m in map(_EDGE_LABEL.match, map(str, sample)) if m}
        if len(prefixes) != 1:
            raise BenchmarkError(
                f"cannot tell the NB201 cell in this sample (edge labels '<label>/<j>_<i>' found for "
                f"{sorted(prefixes) or 'no label'}); pass label=..."
            )
        label = prefixes.pop()
    nodes = []
    for j in range(1, NUM_NODES):
        ops = []
        for i in range(j):
            key = f"{label}/{j}_{i}"
            if key not in sample:
                raise BenchmarkError(f"the sample has no edge {key!r}; an NB201 cell has edges {_edge_labels(label)}")
            op = sample[key]
            if op not in OPS:
                raise BenchmarkError(f"{key!r}: unknown operation {op!r}; NB201 operations are {list(OPS)}")
            ops.append(f"{op}~{i}")
        nodes.append("|" + "|".join(ops) + "|")
    return "+".join(nodes)


def _edge_labels(label: str) -> list[str]:
    return [f"{label}/{j}_{i}" for j, i in EDGES]


# Finding and loading the file -----------------------------------------------------


def packaged_file() -> Path:
    """The table shipped inside the package (xz-compressed CSV, read with
    :mod:`importlib.resources`, so it works from a wheel or ``pip install``)."""
    resource = resources.files(__package__ or "archsmith.benchmarks.nasbench201") / "data" / PACKAGED_FILE
    # A package on disk (a checkout, a wheel installed by pip) gives a real path.
    return resource if isinstance(resource, Path) else Path(str(resource))


def _decompress(suffix: str, data: bytes) -> bytes:
    """``data`` uncompressed by the file's suffix (``.xz``, ``.gz``, else as is);
    each codec is imported only when used, so importing the package stays cheap."""
    if suffix == ".xz":
        import lzma

        return lzma.decompress(data)
    if suffix == ".gz":
        import gzip

        return gzip.decompress(data)
    return data


def default_path() -> Path:
    """The file :meth:`NasBench201Table.load` reads by default:
    ``$ARCHSMITH_NASBENCH201`` if set, else the table shipped with archsmith
    (:func:`packaged_file`)."""
    env = os.environ.get(PATH_VARIABLE)
    return Path(env).expanduser() if env else packaged_file()


_CACHE: dict[tuple[str, float], NasBench201Table] = {}
_CELL = re.compile(
    "\\+".join("".join(rf"\|(?:{'|'.join(OPS)})~{i}" for i in range(j)) + r"\|" for j in range(1, NUM_NODES))
)
"""A well-formed NB201 cell string: a match is valid, a miss is explained by string_to_sample."""


class NasBench201Table:
    """NB201 accuracies (%) per cell string, dataset and metric.

    >>> table = NasBench201Table.load()
    >>> len(table)
    15625
    >>> best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    >>> table.query(best, "cifar10", "val") > 80
    True
    """

    def __init__(self, rows: Mapping[str, Mapping[str, float]], indices: Mapping[str, int], path: Path | None = None):
        self._rows = {arch: {col: float(row[col]) for col in _COLUMNS} for arch, row in rows.items()}
        self._indices = dict(indices)
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> NasBench201Table:
        """Read a table: ``path``, else ``$ARCHSMITH_NASBENCH201``, else the one
        shipped with archsmith. A file is a CSV (plain, ``.xz`` or ``.gz``) with
        columns ``arch`` (index), ``cellstr`` and ``<dataset>-<metric>`` for
        cifar10/cifar100/imagenet x val/test. Nothing is read until this is
        called, and a file is read once per process (cached by path and
        modification time)."""
        env = os.environ.get(PATH_VARIABLE) if path is None else None
        file = Path(path if path is not None else env or packaged_file()).expanduser()
        if not file.is_file():
            if env:
                raise BenchmarkError(
                    f"${PATH_VARIABLE} is set to {env!r}, which is not a file; point it at a NAS-Bench-201 table "
                    f"(.csv, .csv.xz or .csv.gz) or unset it to use the table shipped with archsmith"
                )
            if path is None:
                raise BenchmarkError(
                    f"the NAS-Bench-201 table shipped with archsmith ({file}) is missing: the installation is "
                    f"incomplete; reinstall archsmith, or set ${PATH_VARIABLE} to the CSV file"
                )
            raise BenchmarkError(f"NAS-Bench-201 table {file} does not exist (or is not a file)")
        key = (str(file.resolve()), file.stat().st_mtime)
        if key not in _CACHE:
            _CACHE[key] = cls._read(file)
        return _CACHE[key]

    @classmethod
    def _read(cls, file: Path) -> NasBench201Table:
        try:
            text = _decompress(file.suffix, file.read_bytes()).decode("utf-8")
        except Exception as e:  # OSError, lzma.LZMAError, gzip.BadGzipFile, EOFError, UnicodeDecodeError
            raise BenchmarkError(
                f"{file}: cannot read it as an NB201 table (a UTF-8 CSV, plain, .xz or .gz): {e}"
            ) from None
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, [])
        missing = [c for c in ("cellstr", *_COLUMNS) if c not in header]
        if missing:
            raise BenchmarkError(f"{file}: not an NB201 table, columns {missing} are missing")
        cell, index = header.index("cellstr"), header.index("arch") if "arch" in header else None
        columns = [(col, header.index(col)) for col in _COLUMNS]
        rows: dict[str, dict[str, float]] = {}
        indices: dict[str, int] = {}
        for n, row in enumerate(reader):
            try:
                arch = row[cell]
                if not _CELL.fullmatch(arch):  # the regex is the fast check; the parser names the fault
                    string_to_sample(arch)
                    raise BenchmarkError(f"{arch!r} is not an NB201 cell string")
                if arch in rows:
                    raise BenchmarkError(f"{arch!r} is in the table twice")
                rows[arch] = {col: float(row[i]) for col, i in columns}
                indices[arch] = int(row[index]) if index is not None and row[index] != "" else n
            except (BenchmarkError, ValueError, IndexError) as e:
                raise BenchmarkError(f"{file}, row {n + 2}: {e}") from None
        if not rows:
            raise BenchmarkError(f"{file}: the table has no rows")
        table = cls.__new__(cls)  # the rows are already floats: skip __init__'s copy
        table._rows, table._indices, table.path = rows, indices, file
        return table

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, arch: object) -> bool:
        try:
            return self._key(arch) in self._rows  # type: ignore[arg-type]
        except BenchmarkError:
            return False

    def __repr__(self) -> str:
        return f"NasBench201Table({len(self)} cells, path={str(self.path)!r})"

    @staticmethod
    def _key(arch: str | Mapping[str, Any]) -> str:
        if isinstance(arch, str):
            if arch.count("~") != len(EDGES):  # fast path: a well-formed string is used as is
                string_to_sample(arch)
            return arch.strip()
        return sample_to_string(arch)

    def _row(self, arch: str | Mapping[str, Any]) -> dict[str, float]:
        key = self._key(arch)
        row = self._rows.get(key)
        if row is None:
            string_to_sample(key)  # names a malformed string precisely
            raise BenchmarkError(f"architecture {key!r} is not in the table {self.path}")
        return row

    def query(self, arch: str | Mapping[str, Any], dataset: str = "cifar10", metric: str = "val") -> float:
        """The accuracy (%) of ``arch`` (an NB201 string or a sample of the NB201
        space) on ``dataset`` (cifar10, cifar100, imagenet) by ``metric`` (val, test)."""
        column = column_name(dataset, metric)
        return self._row(arch)[column]

    def query_all(self, arch: str | Mapping[str, Any]) -> dict[str, float]:
        """Every accuracy of ``arch``, keyed ``"<dataset>-<metric>"``."""
        return dict(self._row(arch))

    def index(self, arch: str | Mapping[str, Any]) -> int:
        """The architecture's index in the official NB201 order."""
        key = self._key(arch)
        self._row(key)
        return self._indices[key]

    def archs(self) -> list[str]:
        """Every cell string in the table, in file order."""
        return list(self._rows)

    def best(self, dataset: str = "cifar10", metric: str = "val") -> tuple[str, float]:
        """The best cell by ``dataset``/``metric`` and its accuracy."""
        column = column_name(dataset, metric)
        arch = max(self._rows, key=lambda a: self._rows[a][column])
        return arch, self._rows[arch][column]


def column_name(dataset: str, metric: str) -> str:
    """``"<dataset>-<metric>"``, or a clear error for an unknown dataset or metric."""
    if dataset not in DATASETS:
        raise BenchmarkError(f"unknown dataset {dataset!r}; NB201 datasets are {list(DATASETS)}")
    if metric not in METRICS:
        raise BenchmarkError(f"unknown metric {metric!r}; NB201 metrics are {list(METRICS)} (accuracy, %)")
    return f"{dataset}-{metric}"
