"""Expressions over choices: arithmetic, comparison, indexing, max/min,
``condition``, ``switch_case``, rounding and conversions.

An expression is a small tree evaluated against a sample; its ``repr`` prints
the formula with exactly the parentheses Python needs to read it back.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import ExpressionError

if TYPE_CHECKING:
    from ._leaf import Leaf

# Python's precedence levels, higher binds tighter.
_ATOM = 100
_POWER = 16
_UNARY = 15
_MUL = 14
_ADD = 13
_SHIFT = 12
_BITAND = 11
_BITXOR = 10
_BITOR = 9
_COMPARE = 8


def evaluate(obj: Any, sample: Mapping[str, Any]) -> Any:
    """Evaluate ``obj`` against ``sample``; lists, tuples and dicts are walked."""
    if isinstance(obj, Mutable):
        return obj.evaluate(sample)
    if isinstance(obj, list):
        return [evaluate(v, sample) for v in obj]
    if isinstance(obj, tuple):
        return tuple(evaluate(v, sample) for v in obj)
    if isinstance(obj, dict):
        return {k: evaluate(v, sample) for k, v in obj.items()}
    if isinstance(obj, slice):
        return slice(evaluate(obj.start, sample), evaluate(obj.stop, sample), evaluate(obj.step, sample))
    return obj


def contains_mutable(obj: Any) -> bool:
    """Whether ``obj`` (or anything in its lists, tuples, dicts) depends on a sample."""
    if isinstance(obj, Mutable):
        return True
    if isinstance(obj, (list, tuple)):
        for v in obj:  # a loop, not any(genexpr): this runs for every layer built
            if contains_mutable(v):
                return True
    elif isinstance(obj, dict):
        for v in obj.values():
            if contains_mutable(v):
                return True
    elif isinstance(obj, slice):
        return contains_mutable((obj.start, obj.stop, obj.step))
    return False


def _visit_mutables(obj: Any, visit: Callable[[Mutable], None]) -> None:
    """``visit`` each ``Mutable`` in ``obj`` and in its lists, tuples, dicts, slices."""
    if isinstance(obj, Mutable):
        visit(obj)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _visit_mutables(v, visit)
    elif isinstance(obj, dict):
        for v in obj.values():
            _visit_mutables(v, visit)
    elif isinstance(obj, slice):
        _visit_mutables((obj.start, obj.stop, obj.step), visit)


def leaves_of(obj: Any) -> list[Leaf]:
    """Distinct leaves reachable from ``obj``, in first-seen order."""
    found: dict[int, Leaf] = {}

    def visit(m: Mutable) -> None:
        for leaf in m.leaves():
            found.setdefault(id(leaf), leaf)

    _visit_mutables(obj, visit)
    return list(found.values())


class _Bounded:
    """Stands, in :func:`bounded_leaves`, for a :class:`Call` that lists its values:
    a leaf whose grid is those values (``Call.evaluate`` reads it from a sample)."""

    is_discrete = True

    def __init__(self, call: Call) -> None:
        self.call = call
        self.label = call.bound_label

    def grid(self) -> list[Any]:
        return list(self.call.values or [])

    def describe(self) -> str:
        return f"{self.call!r}, one of {self.call.values}"


def bounded_leaves(obj: Any) -> list[Any]:
    """Like :func:`leaves_of`, but a :class:`Call` that lists its values counts as one
    leaf of those values, so that the values of ``obj`` can be enumerated (a
    superset of them) when its real leaves have too many combinations."""
    found: dict[str, Any] = {}

    def visit(m: Mutable) -> None:
        if isinstance(m, Call) and m.values is not None:
            found.setdefault(m.bound_label, _Bounded(m))
        elif isinstance(m, Operation):
            _visit_mutables(m.operands, visit)
        else:
            for leaf in m.leaves():
                found.setdefault(leaf.label, leaf)

    _visit_mutables(obj, visit)
    return list(found.values())


def _text(obj: Any) -> tuple[str, int]:
    """Formula text of an operand and its precedence."""
    if isinstance(obj, Expression):
        return obj._formula()
    if isinstance(obj, (int, float)) and not isinstance(obj, bool) and math.copysign(1, obj) < 0:
        return repr(obj), _UNARY
    return repr(obj), _ATOM


_MISSING_VALUE = object()


class Mutable:
    """Anything whose value depends on a sample."""

    def leaves(self) -> list[Leaf]:
        raise NotImplementedError

    def evaluate(self, sample: Mapping[str, Any]) -> Any:
        raise NotImplementedError


class Expression(Mutable):
    """Base of choices and of formulas over them; supports Python operators."""

    __slots__ = ()

    def _formula(self) -> tuple[str, int]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self._formula()[0]

    # Equality builds an expression (NNI semantics); identity is the hash.
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise ExpressionError(
            f"{self!r} has no truth value until a sample is chosen, so it cannot be "
            "used in `if`, `and`/`or`, `while` or `bool()`. Use "
            "archsmith.space.condition(cond, if_true, if_false) to branch on a "
            "choice, or `&`/`|` to combine conditions."
        )

    def _no_conversion(self, target: str) -> Any:
        raise ExpressionError(
            f"{self!r} is a choice, not a {target}: pass it to an archsmith.nn layer "
            "(which accepts choices), or convert lazily with "
            "archsmith.space.to_int / to_float, or branch with "
            "archsmith.space.condition(cond, if_true, if_false). Plain torch.nn layers and "
            "Python built-ins such as range() need a frozen model (space.freeze(sample))."
        )

    def __int__(self) -> int:
        return self._no_conversion("int")

    def __float__(self) -> float:
        return self._no_conversion("float")

    def __index__(self) -> int:
        return self._no_conversion("int")

    def __iter__(self) -> Iterator[Any]:
        # Without this, __getitem__ would make every expression an endless iterable.
        raise ExpressionError(
            f"{self!r} cannot be iterated before a sample is chosen; index it "
            "instead (expr[0]), branch with archsmith.space.condition(cond, if_true, "
            "if_false), or freeze the space first."
        )

    def __contains__(self, item: Any) -> bool:
        raise ExpressionError(
            f"`in` on {self!r} needs a value, which exists only once a sample is chosen; "
            "compare with == inside archsmith.space.condition(...), or freeze the space first."
        )

    def __len__(self) -> int:
        raise ExpressionError(f"{self!r} has no length before a sample is chosen.")

    # Arithmetic -----------------------------------------------------------------
    def __add__(self, o: Any) -> Expression:
        return _binary(operator.add, "+", _ADD, self, o)

    def __radd__(self, o: Any) -> Expression:
        return _binary(operator.add, "+", _ADD, o, self)

    def __sub__(self, o: Any) -> Expression:
        return _binary(operator.sub, "-", _ADD, self, o)

    def __rsub__(self, o: Any) -> Expression:
        return _binary(operator.sub, "-", _ADD, o, self)

    def __mul__(self, o: Any) -> Expression:
        return _binary(operator.mul, "*", _MUL, self, o)

    def __rmul__(self, o: Any) -> Expression:
        return _binary(operator.mul, "*", _MUL, o, self)

    def __truediv__(self, o: Any) -> Expression:
        return _binary(operator.truediv, "/", _MUL, self, o)

    def __rtruediv__(self, o: Any) -> Expression:
        return _binary(operator.truediv, "/", _MUL, o, self)

    def __floordiv__(self, o: Any) -> Expression:
        return _binary(operator.floordiv, "//", _MUL, self, o)

    def __rfloordiv__(self, o: Any) -> Expression:
        return _binary(operator.floordiv, "//", _MUL, o, self)

    def __mod__(self, o: Any) -> Expression:
        return _binary(operator.mod, "%", _MUL, self, o)

    def __rmod__(self, o: Any) -> Expression:
        return _binary(operator.mod, "%", _MUL, o, self)

    def __pow__(self, o: Any) -> Expression:
        return _binary(operator.pow, "**", _POWER, self, o)

    def __rpow__(self, o: Any) -> Expression:
        return _binary(operator.pow, "**", _POWER, o, self)

    def __and__(self, o: Any) -> Expression:
        return _binary(operator.and_, "&", _BITAND, self, o)

    def __rand__(self, o: Any) -> Expression:
        return _binary(operator.and_, "&", _BITAND, o, self)

    def __or__(self, o: Any) -> Expression:
        return _binary(operator.or_, "|", _BITOR, self, o)

    def __ror__(self, o: Any) -> Expression:
        return _binary(operator.or_, "|", _BITOR, o, self)

    def __xor__(self, o: Any) -> Expression:
        return _binary(operator.xor, "^", _BITXOR, self, o)

    def __rxor__(self, o: Any) -> Expression:
        return _binary(operator.xor, "^", _BITXOR, o, self)

    def __lshift__(self, o: Any) -> Expression:
        return _binary(operator.lshift, "<<", _SHIFT, self, o)

    def __rshift__(self, o: Any) -> Expression:
        return _binary(operator.rshift, ">>", _SHIFT, self, o)

    def __rlshift__(self, o: Any) -> Expression:
        return _binary(operator.lshift, "<<", _SHIFT, o, self)

    def __rrshift__(self, o: Any) -> Expression:
        return _binary(operator.rshift, ">>", _SHIFT, o, self)

    def __neg__(self) -> Expression:
        return UnaryOp(operator.neg, "-", self)

    def __pos__(self) -> Expression:
        return UnaryOp(operator.pos, "+", self)

    def __invert__(self) -> Expression:
        return UnaryOp(operator.invert, "~", self)

    def __abs__(self) -> Expression:
        return Call(builtins.abs, "abs", (self,))

    def __round__(self, ndigits: int | None = None) -> Expression:
        args: tuple[Any, ...] = (self,) if ndigits is None else (self, ndigits)
        return Call(builtins.round, "round", args)

    def __floor__(self) -> Expression:
        return Call(math.floor, "math.floor", (self,))

    def __ceil__(self) -> Expression:
        return Call(math.ceil, "math.ceil", (self,))

    def __trunc__(self) -> Expression:
        return Call(math.trunc, "math.trunc", (self,))

    # Comparison -----------------------------------------------------------------
    def __lt__(self, o: Any) -> Expression:
        return _binary(operator.lt, "<", _COMPARE, self, o)

    def __le__(self, o: Any) -> Expression:
        return _binary(operator.le, "<=", _COMPARE, self, o)

    def __gt__(self, o: Any) -> Expression:
        return _binary(operator.gt, ">", _COMPARE, self, o)

    def __ge__(self, o: Any) -> Expression:
        return _binary(operator.ge, ">=", _COMPARE, self, o)

    def __eq__(self, o: Any) -> Expression:  # type: ignore[override]
        return _binary(operator.eq, "==", _COMPARE, self, o)

    def __ne__(self, o: Any) -> Expression:  # type: ignore[override]
        return _binary(operator.ne, "!=", _COMPARE, self, o)

    def __getitem__(self, key: Any) -> Expression:
        return Index(self, key)


class Operation(Expression):
    """An inner node: a function applied to operands (constants or expressions)."""

    def __init__(self, fn: Callable[..., Any], operands: tuple[Any, ...]) -> None:
        self.fn = fn
        self.operands = operands

    def leaves(self) -> list[Leaf]:
        return leaves_of(self.operands)

    def evaluate(self, sample: Mapping[str, Any]) -> Any:
        return self.fn(*(evaluate(o, sample) for o in self.operands))


class BinaryOp(Operation):
    def __init__(self, fn: Callable[..., Any], symbol: str, precedence: int, a: Any, b: Any):
        super().__init__(fn, (a, b))
        self.symbol = symbol
        self.precedence = precedence

    def _formula(self) -> tuple[str, int]:
        (left, lp), (right, rp) = (_text(o) for o in self.operands)
        p = self.precedence
        if p == _COMPARE:  # comparisons chain in Python, so never nest them bare
            need_left, need_right = lp <= p, rp <= p
        elif p == _POWER:  # right-associative; a unary operand binds looser on the left
            need_left, need_right = lp <= p, rp < _UNARY
        else:
            need_left, need_right = lp < p, rp <= p
        left = f"({left})" if need_left else left
        right = f"({right})" if need_right else right
        return f"{left} {self.symbol} {right}", p


def _binary(fn: Callable[..., Any], symbol: str, prec: int, a: Any, b: Any) -> BinaryOp:
    return BinaryOp(fn, symbol, prec, a, b)


class UnaryOp(Operation):
    def __init__(self, fn: Callable[..., Any], symbol: str, operand: Any) -> None:
        super().__init__(fn, (operand,))
        self.symbol = symbol

    def _formula(self) -> tuple[str, int]:
        text, p = _text(self.operands[0])
        if p < _UNARY:
            text = f"({text})"
        return f"{self.symbol}{text}", _UNARY


class Call(Operation):
    """A named function of operands, printed as ``name(a, b, ...)``.

    ``values``, when given, lists every value the call can take (a superset is
    fine): code that needs the largest value (sliced weights) reads it instead of
    enumerating the operands' combinations, which may be too many.
    """

    def __init__(
        self, fn: Callable[..., Any], name: str, operands: tuple[Any, ...], values: Sequence[Any] | None = None
    ) -> None:
        super().__init__(fn, operands)
        self.name = name
        self.values = None if values is None else list(values)
        #: the key under which a sample may give this call's value directly
        self.bound_label = f"<{name}@{id(self):x}>"

    def evaluate(self, sample: Mapping[str, Any]) -> Any:
        if self.values is not None:
            given = sample.get(self.bound_label, _MISSING_VALUE)
            if given is not _MISSING_VALUE:
                return given
        return super().evaluate(sample)

    def _formula(self) -> tuple[str, int]:
        return f"{self.name}({', '.join(_text(o)[0] for o in self.operands)})", _ATOM


class Index(Operation):
    def __init__(self, obj: Any, key: Any) -> None:
        super().__init__(operator.getitem, (obj, key))

    def _formula(self) -> tuple[str, int]:
        (obj, p), (key, _) = (_text(o) for o in self.operands)
        if p < _ATOM:
            obj = f"({obj})"
        return f"{obj}[{key}]", _ATOM


def _condition(cond: Any, if_true: Any, if_false: Any) -> Any:
    return if_true if cond else if_false


class Condition(Operation):
    """``condition(c, a, b)``: ``a`` where ``c`` holds, else ``b``; lazy in both arms."""

    def __init__(self, cond: Any, if_true: Any, if_false: Any) -> None:
        super().__init__(_condition, (cond, if_true, if_false))

    def evaluate(self, sample: Mapping[str, Any]) -> Any:
        cond, if_true, if_false = self.operands
        return evaluate(if_true if evaluate(cond, sample) else if_false, sample)

    def _formula(self) -> tuple[str, int]:
        args = ", ".join(_text(o)[0] for o in self.operands)
        return f"archsmith.space.condition({args})", _ATOM


class SwitchCase(Operation):
    """``switch_case(branch, {value: result, ...}, default=...)``."""

    _MISSING: Any = object()

    def __init__(self, branch: Any, cases: Mapping[Any, Any], default: Any = _MISSING) -> None:
        super().__init__(lambda *a: None, (branch, dict(cases), default))

    def leaves(self) -> list[Leaf]:
        branch, cases, default = self.operands
        extra = [] if default is self._MISSING else [default]
        return leaves_of([branch, list(cases.values()), *extra])

    def evaluate(self, sample: Mapping[str, Any]) -> Any:
        branch, cases, default = self.operands
        key = evaluate(branch, sample)
        if key in cases:
            return evaluate(cases[key], sample)
        if default is self._MISSING:
            raise ExpressionError(
                f"switch_case: value {key!r} of {_text(branch)[0]} matches no case "
                f"(cases: {list(cases)}); add a case or pass default=..."
            )
        return evaluate(default, sample)

    def _formula(self) -> tuple[str, int]:
        branch, cases, default = self.operands
        body = ", ".join(f"{k!r}: {_text(v)[0]}" for k, v in cases.items())
        tail = "" if default is self._MISSING else f", default={_text(default)[0]}"
        return f"archsmith.space.switch_case({_text(branch)[0]}, {{{body}}}{tail})", _ATOM


# Public helpers -------------------------------------------------------------------


def condition(cond: Any, if_true: Any, if_false: Any) -> Any:
    """``if_true`` if ``cond`` else ``if_false``, decided when a sample is chosen.

    >>> from archsmith.space import choice, condition
    >>> k = choice("k", [3, 5])
    >>> condition(k == 3, 1, 2).evaluate({"k": 5})
    2
    """
    if not contains_mutable(cond):
        return if_true if cond else if_false
    return Condition(cond, if_true, if_false)


def switch_case(branch: Any, cases: Mapping[Any, Any], default: Any = SwitchCase._MISSING) -> Any:
    """Look the value of ``branch`` up in ``cases`` once a sample is chosen."""
    if not contains_mutable(branch) and not contains_mutable(cases):
        if branch in cases:
            return cases[branch]
        if default is SwitchCase._MISSING:
            raise ExpressionError(f"switch_case: {branch!r} matches no case in {list(cases)}")
        return default
    return SwitchCase(branch, cases, default)


def _fold(fn: Callable[..., Any], name: str, args: tuple[Any, ...]) -> Any:
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = tuple(args[0])
    if not args:
        raise ExpressionError(f"{name}() needs at least one argument")
    if not contains_mutable(args):
        return fn(*args)
    return Call(fn, f"archsmith.space.{name}", args)


def max(*args: Any) -> Any:
    """Largest argument once a sample is chosen (``max(a, b)`` or ``max([a, b])``)."""
    return _fold(builtins.max, "max", args)


def min(*args: Any) -> Any:
    """Smallest argument once a sample is chosen."""
    return _fold(builtins.min, "min", args)


def to_int(x: Any) -> Any:
    """``int(x)`` once a sample is chosen."""
    return Call(int, "archsmith.space.to_int", (x,)) if contains_mutable(x) else int(x)


def to_float(x: Any) -> Any:
    """``float(x)`` once a sample is chosen."""
    return Call(float, "archsmith.space.to_float", (x,)) if contains_mutable(x) else float(x)
