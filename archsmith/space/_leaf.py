"""Leaves of a search space: the decisions themselves.

``Categorical`` (one of a list), ``CategoricalMultiple`` (a subset of a list) and
``Numerical`` (a number in a range). Each leaf is also an expression, so it can be
used in arithmetic. Inside a frozen build (``fixed_arch``) constructing a leaf
returns the sample's value for its label instead: that is how a model space's
``__init__`` runs unchanged to build a plain model.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ._errors import SampleError, SpaceError
from ._expression import Expression
from ._scope import auto_label, caller_site, current_scope, fixed_context

_TOLERANCE = 1e-9


def value_key(v: Any) -> Any:
    """A hashable, type-aware identity of a JSON value (``True`` is not ``1``;
    a list and a tuple with the same items are the same candidate)."""
    kind = type(v)
    if kind is int:  # the common cases first: validating a sample calls this per value
        return ("n", v)
    if kind is str:
        return ("s", v)
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        if isinstance(v, float) and math.isnan(v):
            raise TypeError("NaN is not a valid candidate")
        return ("n", v)
    if v is None:
        return ("0",)
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, (list, tuple)):
        return ("t", *(value_key(x) for x in v))
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return ("d", tuple(sorted((k, value_key(x)) for k, x in v.items())))
    raise TypeError(f"{type(v).__name__} is not a JSON value")


def index_candidates(what: str, values: Any) -> tuple[list[Any], dict[Any, int]]:
    """Check a candidate list and index it by :func:`value_key`."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range)):
        raise SpaceError(f"{what}: values must be a list of candidates, got {values!r}")
    values = list(values)
    if not values:
        raise SpaceError(f"{what}: the candidate list is empty; give at least one value")
    index: dict[Any, int] = {}
    for i, v in enumerate(values):
        try:
            key = value_key(v)
        except TypeError as e:
            raise SpaceError(
                f"{what}: candidate {v!r} is not a JSON value ({e}). "
                "Samples are stored as JSON, so candidates must be numbers, strings, "
                "booleans, None, or lists/tuples/dicts of them. To choose among "
                "modules use LayerChoice; for other objects choose among names and map them."
            ) from None
        if key in index:
            raise SpaceError(f"{what}: candidate {v!r} appears twice in {values!r}")
        index[key] = i
    return values, index


def _lookup(index: dict[Any, int], value: Any) -> int | None:
    try:
        return index.get(value_key(value))
    except TypeError:
        return None


def _type_name(v: Any) -> str:
    return type(v).__name__


def _rebuild(cls: type, state: dict[str, Any]) -> Leaf:
    obj: Any = object.__new__(cls)
    obj.__dict__.update(state)
    return obj


class Leaf(Expression):
    """A single decision with a label. Subclasses define the domain."""

    kind: ClassVar[str] = "leaf"
    label: str
    created_at: str

    def _register(self) -> None:
        self.created_at = caller_site()
        scope = current_scope()
        if scope is not None:
            scope.register(self)

    # A leaf is immutable: copies keep the identity (and so the shared decision).
    def __copy__(self) -> Leaf:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Leaf:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__))

    def leaves(self) -> list[Leaf]:
        return [self]

    def evaluate(self, sample: Mapping[str, Any]) -> Any:
        try:
            value = sample[self.label]
        except KeyError:
            raise SampleError(
                [f"{self.label!r}: missing; expected {self.describe()}"],
                context="fixed sample",
            ) from None
        return self.resolve(value)

    def resolve(self, value: Any) -> Any:
        """The canonical form of ``value``, or :class:`SampleError` if it is invalid."""
        problem = self.check(value)
        if problem is not None:
            raise SampleError([f"{self.label!r}: {problem}"])
        return self.canonical(value)

    def _formula(self) -> tuple[str, int]:
        return self._repr(), 100

    # Domain API (what strategies see) ---------------------------------------------
    def describe(self) -> str:
        raise NotImplementedError

    def check(self, value: Any) -> str | None:
        """``None`` if ``value`` is valid, else a sentence saying what is wrong."""
        raise NotImplementedError

    def canonical(self, value: Any) -> Any:
        return value

    def random(self, rng: random.Random) -> Any:
        raise NotImplementedError

    def grid(self, granularity: int | None = None) -> list[Any]:
        raise NotImplementedError

    def size(self) -> int | float:
        raise NotImplementedError

    def default(self) -> Any:
        raise NotImplementedError

    def domain(self) -> tuple[Any, ...]:
        """What makes two leaves with one label the same decision."""
        raise NotImplementedError

    def same_decision(self, other: Leaf) -> bool:
        return type(self) is type(other) and self.domain() == other.domain()

    def _repr(self) -> str:
        raise NotImplementedError

    def _checked_default(self, default: Any, fallback: Any) -> Any:
        """``fallback`` if no default is given, else the canonical default (checked)."""
        if default is None:
            return fallback
        problem = self.check(default)
        if problem is not None:
            raise SpaceError(f"{self.kind} {self.label!r}: default {default!r} is invalid: {problem}")
        return self.canonical(default)

    @property
    def is_discrete(self) -> bool:
        return self.size() != math.inf


def _fixed_value(cls: type[Leaf], label: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Inside ``fixed_arch``: the sample's value for this leaf. The common case (a
    categorical whose value is exactly one of its candidates) is answered without
    building the leaf; anything else builds it, so declarations are still checked
    and a bad value gets the full error."""
    ctx = fixed_context()
    assert ctx is not None
    label = auto_label(label, cls.kind)
    ctx.used.add(label)
    if issubclass(cls, Categorical) and args and label in ctx.sample:  # a candidate itself is canonical
        value = ctx.sample[label]
        for candidate in args[0]:
            if type(candidate) is type(value) and candidate == value:
                return candidate
    leaf: Any = object.__new__(cls)
    leaf.__init__(*args, label=label, **kwargs)
    return leaf.evaluate(ctx.sample)


class _FixableLeaf(Leaf):
    """Leaves whose construction resolves to a value inside ``fixed_arch``."""

    def __new__(cls, *args: Any, label: str | None = None, **kwargs: Any) -> Any:
        if fixed_context() is not None:
            return _fixed_value(cls, label, args, kwargs)
        return super().__new__(cls)


#: How far a prior's sum may be from 1.
PRIOR_TOLERANCE = 1e-6


def check_prior(where: str, prior: Sequence[float], n: int) -> list[float]:
    """``prior`` as floats: one probability per candidate, non-negative, summing to 1
    (NNI accepted a prior and ignored it; here it is what random sampling draws by)."""
    if isinstance(prior, (str, bytes)) or not isinstance(prior, Sequence):
        raise SpaceError(f"{where}: prior must be a list of probabilities, one per candidate, got {prior!r}")
    try:
        p = [float(x) for x in prior]
    except (TypeError, ValueError):
        raise SpaceError(f"{where}: prior must be a list of numbers, got {list(prior)!r}") from None
    if len(p) != n:
        raise SpaceError(f"{where}: prior has {len(p)} probabilities for {n} candidates; give one per candidate")
    if any(x < 0 or not math.isfinite(x) for x in p):
        raise SpaceError(f"{where}: prior {p} has a negative or non-finite probability; use values in [0, 1]")
    if abs(sum(p) - 1) > PRIOR_TOLERANCE:
        raise SpaceError(f"{where}: prior {p} sums to {sum(p)!r}, not 1; divide each by the sum")
    return p


class Categorical(_FixableLeaf):
    """One value out of ``values``.

    >>> from archsmith.space import Categorical
    >>> width = Categorical([16, 32, 64], label="width")
    >>> (width * 2).evaluate({"width": 32})
    64
    """

    kind = "choice"

    def __init__(
        self,
        values: Sequence[Any],
        *,
        label: str | None = None,
        default: Any = None,
        weights: Sequence[float] | None = None,
        prior: Sequence[float] | None = None,
    ) -> None:
        self.label = auto_label(label, self.kind)
        self.values, self._index = index_candidates(f"choice {self.label!r}", values)
        if prior is not None:
            if weights is not None:
                raise SpaceError(f"choice {self.label!r}: give weights or prior, not both")
            weights = check_prior(f"choice {self.label!r}", prior, len(self.values))
        self.weights = self._check_weights(weights)
        self._cum_weights = list(itertools.accumulate(self.weights)) if self.weights else None
        self._default = self._checked_default(default, self.values[0])
        self._register()

    def _check_weights(self, weights: Sequence[float] | None) -> list[float] | None:
        if weights is None:
            return None
        try:
            w = [float(x) for x in weights]
        except (TypeError, ValueError):
            raise SpaceError(f"choice {self.label!r}: weights must be numbers, got {list(weights)!r}") from None
        if len(w) != len(self.values):
            raise SpaceError(
                f"choice {self.label!r}: {len(w)} weights for {len(self.values)} candidates; give one weight per candidate"
            )
        if any(x < 0 or not math.isfinite(x) for x in w) or sum(w) <= 0:
            raise SpaceError(f"choice {self.label!r}: weights must be non-negative with a positive sum, got {w}")
        total = sum(w)
        return [x / total for x in w]

    def describe(self) -> str:
        return f"one of {self.values!r}"

    def index_of(self, value: Any) -> int | None:
        return _lookup(self._index, value)

    def check(self, value: Any) -> str | None:
        if self.index_of(value) is not None:
            return None
        kinds = {_type_name(v) for v in self.values}
        number = {"int", "float"}
        compatible = _type_name(value) in kinds or (_type_name(value) in number and kinds & number)
        if not compatible:
            return f"wrong type {_type_name(value)} ({value!r}); expected {self.describe()}"
        return f"{value!r} is out of range; expected {self.describe()}"

    def canonical(self, value: Any) -> Any:
        i = self.index_of(value)
        return self.values[i] if i is not None else value

    def random(self, rng: random.Random) -> Any:
        if self._cum_weights is None:
            return self.values[int(rng.random() * len(self.values))]
        i = bisect.bisect_right(self._cum_weights, rng.random() * self._cum_weights[-1])
        return self.values[min(i, len(self.values) - 1)]

    def sampler(self) -> Any:
        """A fast ``rng -> value`` function (used by ``Space.random``)."""
        values, n = self.values, len(self.values)
        if self._cum_weights is None:
            return lambda rng: values[int(rng.random() * n)]
        return self.random

    def grid(self, granularity: int | None = None) -> list[Any]:
        return list(self.values)

    def size(self) -> int:
        return len(self.values)

    def default(self) -> Any:
        return self._default

    def domain(self) -> tuple[Any, ...]:
        values = tuple(value_key(v) for v in self.values)
        # Two places sharing a label must draw it alike: a prior is part of the decision.
        return values if self.weights is None else (values, tuple(self.weights))

    def _repr(self) -> str:
        prior = "" if self.weights is None else f", prior={self.weights!r}"
        return f"Categorical({self.values!r}, label={self.label!r}{prior})"


class CategoricalMultiple(_FixableLeaf):
    """A subset of ``values``: exactly ``n_chosen`` of them, or any number if ``None``.

    The sample value is the list of chosen candidates, in candidate order.
    """

    kind = "multi_choice"

    def __init__(
        self,
        values: Sequence[Any],
        *,
        n_chosen: int | None = None,
        label: str | None = None,
        default: Sequence[Any] | None = None,
    ) -> None:
        self.label = auto_label(label, self.kind)
        self.values, self._index = index_candidates(f"choice {self.label!r}", values)
        n = len(self.values)
        if n_chosen is not None:
            if isinstance(n_chosen, bool) or not isinstance(n_chosen, int) or not 1 <= n_chosen <= n:
                raise SpaceError(
                    f"choice {self.label!r}: n_chosen={n_chosen!r} but there are {n} candidates; "
                    f"use an integer between 1 and {n}, or None for any number"
                )
        self.n_chosen = n_chosen
        self._default = self._checked_default(default, list(self.values[: n_chosen or 0]))
        self._register()

    def describe(self) -> str:
        count = "any number" if self.n_chosen is None else f"exactly {self.n_chosen}"
        return f"a list of {count} distinct items of {self.values!r}"

    def check(self, value: Any) -> str | None:
        if not isinstance(value, (list, tuple)):
            return f"wrong type {_type_name(value)} ({value!r}); expected {self.describe()}"
        idx = [_lookup(self._index, v) for v in value]
        bad = [v for v, i in zip(value, idx) if i is None]
        if bad:
            return f"{bad!r} not among the candidates; expected {self.describe()}"
        if len(set(idx)) != len(idx):
            return f"{list(value)!r} repeats a candidate; expected {self.describe()}"
        if self.n_chosen is not None and len(value) != self.n_chosen:
            return f"{len(value)} chosen; expected {self.describe()}"
        return None

    def canonical(self, value: Any) -> list[Any]:
        idx = sorted(i for i in (_lookup(self._index, v) for v in value) if i is not None)
        return [self.values[i] for i in idx]

    def random(self, rng: random.Random) -> list[Any]:
        if self.n_chosen is None:
            return [v for v in self.values if rng.random() < 0.5]
        idx = sorted(rng.sample(range(len(self.values)), self.n_chosen))
        return [self.values[i] for i in idx]

    def grid(self, granularity: int | None = None) -> list[Any]:
        n = len(self.values)
        sizes = range(n + 1) if self.n_chosen is None else [self.n_chosen]
        return [[self.values[i] for i in c] for k in sizes for c in itertools.combinations(range(n), k)]

    def size(self) -> int:
        n = len(self.values)
        return 2**n if self.n_chosen is None else math.comb(n, self.n_chosen)

    def default(self) -> list[Any]:
        return list(self._default)

    def domain(self) -> tuple[Any, ...]:
        return (tuple(value_key(v) for v in self.values), self.n_chosen)

    def _repr(self) -> str:
        return f"CategoricalMultiple({self.values!r}, n_chosen={self.n_chosen!r}, label={self.label!r})"


class Numerical(_FixableLeaf):
    """A number in ``[low, high]``; log-uniform if ``log``; on the grid
    ``low + k * quantize`` if ``quantize`` is set (then it is discrete, and
    integer-valued when ``low``, ``high`` and ``quantize`` are all integers)."""

    kind = "numerical"

    def __init__(
        self,
        low: float,
        high: float,
        *,
        log: bool = False,
        quantize: float | None = None,
        label: str | None = None,
        default: float | None = None,
    ) -> None:
        self.label = auto_label(label, self.kind)

        def is_number(x: Any) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        if not is_number(low) or not is_number(high) or not low < high:
            raise SpaceError(
                f"numerical {self.label!r}: need finite numbers low < high, got low={low!r}, high={high!r}"
            )
        if log and low <= 0:
            raise SpaceError(f"numerical {self.label!r}: log=True needs low > 0, got low={low!r}")
        if quantize is not None and (not is_number(quantize) or quantize <= 0):
            raise SpaceError(f"numerical {self.label!r}: quantize must be a positive number, got {quantize!r}")
        self.low, self.high, self.log, self.quantize = low, high, bool(log), quantize
        self.integer = all(isinstance(x, int) for x in (low, high, quantize))
        self._n = None if quantize is None else math.floor((high - low) / quantize + _TOLERANCE) + 1
        mid = math.sqrt(low * high) if log else (low + high) / 2
        self._default = self._checked_default(default, self._snap(mid))
        self._register()

    def _point(self, k: int) -> float | int:
        assert self.quantize is not None
        x = self.low + k * self.quantize
        return int(x) if self.integer else round(x, 12)

    def _snap(self, x: float) -> float | int:
        if self._n is None:
            return x
        assert self.quantize is not None
        k = round((x - self.low) / self.quantize)
        return self._point(min(max(k, 0), self._n - 1))

    def _from_unit(self, u: float) -> float:
        if self.log:
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        grid = f" on the grid {self.low} + k*{self.quantize}" if self.quantize is not None else ""
        return f"{kind} in [{self.low}, {self.high}]{grid}"

    def check(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"wrong type {_type_name(value)} ({value!r}); expected {self.describe()}"
        if isinstance(value, float) and math.isnan(value):
            return f"NaN is not {self.describe()}"
        span = _TOLERANCE * max(1.0, abs(self.high - self.low))
        if not self.low - span <= value <= self.high + span:
            return f"{value!r} is out of range; expected {self.describe()}"
        if self.quantize is not None:
            snapped = self._snap(value)
            if abs(snapped - value) > span:
                return f"{value!r} is not on the grid; expected {self.describe()}"
        return None

    def canonical(self, value: Any) -> Any:
        if self.quantize is not None:
            return self._snap(value)
        return float(min(max(value, self.low), self.high))

    def random(self, rng: random.Random) -> Any:
        if self._n is not None and not self.log:  # every grid point equally likely
            return self._point(min(int(rng.random() * self._n), self._n - 1))
        return self._snap(self._from_unit(rng.random()))

    def sampler(self) -> Any:
        return self.random

    def grid(self, granularity: int | None = None) -> list[Any]:
        if self._n is not None:
            return [self._point(k) for k in range(self._n)]
        if granularity is None:
            raise SpaceError(
                f"numerical {self.label!r} is continuous, so it has no finite grid; "
                "pass granularity=g (g >= 1 gives the 2**g - 1 quantiles k / 2**g), or quantize it"
            )
        if isinstance(granularity, bool) or not isinstance(granularity, int) or granularity < 1:
            raise SpaceError(f"granularity must be an integer >= 1, got {granularity!r}")
        parts = 2**granularity
        return [self._from_unit(k / parts) for k in range(1, parts)]

    def size(self) -> int | float:
        return math.inf if self._n is None else self._n

    def default(self) -> Any:
        return self._default

    def domain(self) -> tuple[Any, ...]:
        return (self.low, self.high, self.log, self.quantize, self.integer)

    def _repr(self) -> str:
        extra = (", log=True" if self.log else "") + (
            f", quantize={self.quantize!r}" if self.quantize is not None else ""
        )
        return f"Numerical({self.low!r}, {self.high!r}{extra}, label={self.label!r})"


# NNI-style shortcuts -----------------------------------------------------------


_NO_LABEL: Any = object()


def choice(
    first: Any,
    second: Sequence[Any] | None = None,
    /,
    *,
    label: str | None = _NO_LABEL,
    prior: Sequence[float] | None = None,
) -> Any:
    """One of the candidates, drawn by ``prior`` (one probability per candidate)
    when sampled at random. Both orders work: NNI 3.0's ``choice("width", [16, 32])``
    (label first, as ``nni.choice``) and ``choice([16, 32], label="width")``.

    >>> choice("width", [16, 32]).values == choice([16, 32], label="width").values
    True
    """
    if second is None:  # choice(candidates, label=...)
        if first is None or isinstance(first, str):
            raise SpaceError(
                f"choice({first!r}) has no candidates: write choice(label, [candidates]) "
                "or choice([candidates], label=label)"
            )
        return Categorical(first, label=None if label is _NO_LABEL else label, prior=prior)
    if label is not _NO_LABEL:
        raise SpaceError(
            f"choice got two labels ({first!r} and label={label!r}); "
            "write choice(label, [candidates]) or choice([candidates], label=label)"
        )
    if first is not None and not isinstance(first, str):
        raise SpaceError(f"choice(label, candidates): the label must be a string or None, got {first!r}")
    return Categorical(second, label=first, prior=prior)


def uniform(label: str | None, low: float, high: float) -> Any:
    """A float uniformly in ``[low, high]``."""
    return Numerical(low, high, label=label)


def quniform(label: str | None, low: float, high: float, quantize: float) -> Any:
    """A number on the grid ``low + k * quantize`` within ``[low, high]``."""
    return Numerical(low, high, quantize=quantize, label=label)


def loguniform(label: str | None, low: float, high: float) -> Any:
    """A float log-uniformly in ``[low, high]`` (``low > 0``)."""
    return Numerical(low, high, log=True, label=label)


def randint(label: str | None, low: int, high: int) -> Any:
    """An integer in ``[low, high)``, like ``random.randrange`` and NNI's ``randint``."""
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (low, high)) or high - low < 2:
        raise SpaceError(
            f"randint {label!r}: need integers with high - low >= 2 (high is exclusive), got {low!r}, {high!r}"
        )
    return Numerical(low, high - 1, quantize=1, label=label)
