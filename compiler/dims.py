"""Symbolic sizes: `inputs: {image: [3, H, W]}` with `sizes: {H: {min: 32, max: 1024, multiple_of: 32}}`.

A `Dim` is a size that depends on declared symbols. It is held exactly, as its value at every point of
its symbols' finite domain (a table), so arithmetic is pointwise and exact, and a decision (`out < 1`,
`a != b`) is either the same at every point, and then a plain bool, or raises `Undecided` naming a point
where it holds and one where it does not. Shape rules written for ints therefore run unchanged on Dims,
and a rule that fails at some size of the declared range fails here, naming that size. A Dim whose value
is the same everywhere is an int. Torch-free.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

MAX_VALUES = 4096
"""The most values one symbol may take (its range divided by its step)."""
MAX_POINTS = 1 << 16
"""The most combinations of symbols one size may depend on."""
MAX_WRITTEN = 80
"""The longest formula shown as computed; a longer one that no polynomial fits is shown as `f(H, W)`."""

Point = Mapping[str, int]


@dataclass(frozen=True)
class Size:
    """A declared symbol: every multiple of `multiple_of` from `minimum` to `maximum`; `default` is the
    size used for example inputs, summaries and export checks."""

    name: str
    minimum: int
    maximum: int
    multiple_of: int = 1
    default: int | None = None

    @property
    def values(self) -> range:
        first = -(-self.minimum // self.multiple_of) * self.multiple_of
        return range(first, self.maximum + 1, self.multiple_of)

    @property
    def example(self) -> int:
        return self.default if self.default is not None else self.values[0]

    def admits(self, value: int) -> bool:
        return self.minimum <= value <= self.maximum and value % self.multiple_of == 0

    def describe(self) -> str:
        step = f", a multiple of {self.multiple_of}" if self.multiple_of > 1 else ""
        return f"{self.name} from {self.minimum} to {self.maximum}{step}"


class Undecided(Exception):
    """A decision about sizes that holds at some points of the domain and not at others."""

    def __init__(self, holds: Point, fails: Point):
        super().__init__(f"holds at {show_point(holds)} but not at {show_point(fails)}")
        self.holds = dict(holds)
        self.fails = dict(fails)


class SymbolicError(Exception):
    """A symbolic size was used where only a fixed int will do, or sizes combine into too many points."""


def show_point(point: Point) -> str:
    return ", ".join(f"{name}={value}" for name, value in point.items())


class Dim:
    """A size that depends on symbols: its value at each point of the product of their values. Its
    text (a formula, or how it was computed) is made when it is first shown."""

    __slots__ = ("_text", "_written", "symbols", "table")

    def __init__(self, symbols: tuple[Size, ...], table: tuple[int, ...], written: str | Callable[[], str]):
        self.symbols = symbols
        self.table = table
        self._written = written
        self._text: str | None = None

    @property
    def text(self) -> str:
        """A formula: a short polynomial where one fits, else how it was computed, else (when that is
        longer than a line, or built on such a one) `f(H, W)`."""
        if self._text is None:
            written = self._written() if callable(self._written) else self._written
            opaque = len(written) > MAX_WRITTEN or "f(" in written.replace("_f(", "")
            self._text = _fit(self.symbols, self.table) or (f"f({', '.join(s.name for s in self.symbols)})" if opaque else written)
        return self._text

    @staticmethod
    def of(size: Size) -> Dim:
        values = size.values
        if not 0 < len(values) <= MAX_VALUES:
            raise SymbolicError(f"size {size.describe()} takes {len(values)} values; the limit is {MAX_VALUES}")
        return Dim((size,), tuple(values), size.name)

    # -- points ---------------------------------------------------------------------------------

    def points(self) -> Iterator[dict[str, int]]:
        names = [s.name for s in self.symbols]
        for values in itertools.product(*(s.values for s in self.symbols)):
            yield dict(zip(names, values))

    def at(self, point: Point) -> int:
        """The value at `point`; a symbol the point leaves out takes its example value."""
        index = 0
        for size in self.symbols:
            values = size.values
            index = index * len(values) + values.index(point.get(size.name, size.example))
        return self.table[index]

    # -- arithmetic -----------------------------------------------------------------------------

    def _apply(self, other: Any, function: Callable[[int, int], int], symbol: str, swap: bool = False) -> Any:
        if isinstance(other, int) and ((symbol in "+-" and other == 0) or (symbol in ("*", "//") and other == 1 and not swap)):
            return self if symbol != "-" or not swap else -self
        left, right = (other, self) if swap else (self, other)
        return pointwise(function, (left, right), lambda: f"{_operand(left)} {symbol} {_operand(right)}")

    def __add__(self, other: Any) -> Any:
        return self._apply(other, operator.add, "+")

    def __radd__(self, other: Any) -> Any:
        return self._apply(other, operator.add, "+", swap=True)

    def __sub__(self, other: Any) -> Any:
        return self._apply(other, operator.sub, "-")

    def __rsub__(self, other: Any) -> Any:
        return self._apply(other, operator.sub, "-", swap=True)

    def __mul__(self, other: Any) -> Any:
        return self._apply(other, operator.mul, "*")

    def __rmul__(self, other: Any) -> Any:
        return self._apply(other, operator.mul, "*", swap=True)

    def __floordiv__(self, other: Any) -> Any:
        return self._apply(other, operator.floordiv, "//")

    def __rfloordiv__(self, other: Any) -> Any:
        return self._apply(other, operator.floordiv, "//", swap=True)

    def __mod__(self, other: Any) -> Any:
        return self._apply(other, operator.mod, "%")

    def __rmod__(self, other: Any) -> Any:
        return self._apply(other, operator.mod, "%", swap=True)

    def __neg__(self) -> Any:
        return pointwise(operator.neg, (self,), lambda: f"-{_operand(self)}")

    def __pos__(self) -> Dim:
        return self

    # -- decisions ------------------------------------------------------------------------------

    def _decide(self, other: Any, compare: Callable[[int, int], bool]) -> bool:
        symbols, tables = _aligned((self, other))
        verdicts = [compare(a, b) for a, b in zip(*tables)]
        return _decision(symbols, verdicts)

    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return self._decide(other, operator.eq) if isinstance(other, (int, Dim)) else NotImplemented

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return self._decide(other, operator.ne) if isinstance(other, (int, Dim)) else NotImplemented

    def __lt__(self, other: Any) -> bool:
        return self._decide(other, operator.lt)

    def __le__(self, other: Any) -> bool:
        return self._decide(other, operator.le)

    def __gt__(self, other: Any) -> bool:
        return self._decide(other, operator.gt)

    def __ge__(self, other: Any) -> bool:
        return self._decide(other, operator.ge)

    def __bool__(self) -> bool:
        return self._decide(0, operator.ne)

    def __hash__(self) -> int:
        return hash((tuple(s.name for s in self.symbols), self.table))

    def __index__(self) -> int:
        raise SymbolicError(f"a fixed size is needed here, but this one depends on {self.text} ({self.span_text()})")

    __int__ = __index__

    def span_text(self) -> str:
        return f"{min(self.table)} to {max(self.table)}"

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def _operand(value: Any) -> str:
    text = str(value)
    return f"({text})" if isinstance(value, Dim) and any(c in text for c in " +-") else text


def points(symbols: Sequence[Size]) -> int:
    """How many points `symbols` combine into; SymbolicError where that is more than MAX_POINTS."""
    count = 1
    for size in symbols:
        count *= len(size.values)
    if count > MAX_POINTS:
        names = " × ".join(s.name for s in symbols)
        raise SymbolicError(f"sizes {names} combine into {count:,} points; the limit is {MAX_POINTS:,}: declare coarser ranges")
    return count


def _aligned(values: Sequence[Any]) -> tuple[tuple[Size, ...], list[tuple[int, ...]]]:
    """The union of the values' symbols, and each value's table over that union (ints repeated)."""
    symbols = symbols_of(list(values))
    union = tuple(symbols[name] for name in sorted(symbols))
    count = points(union)
    return union, [_spread(value, union, count) for value in values]


def _spread(value: Any, union: tuple[Size, ...], count: int) -> tuple[int, ...]:
    """`value`'s table over `union` (a superset of its symbols), in row-major order."""
    if not isinstance(value, Dim):
        return (value,) * count
    if value.symbols == union:
        return value.table
    strides, stride = {}, 1
    for size in reversed(value.symbols):
        strides[size.name] = stride
        stride *= len(size.values)
    indices = [0]
    for size in union:
        step = strides.get(size.name, 0)
        indices = [i + k * step for i in indices for k in range(len(size.values))]
    return tuple(value.table[i] for i in indices)


def _points(symbols: tuple[Size, ...]) -> Iterator[dict[str, int]]:
    names = [s.name for s in symbols]
    for values in itertools.product(*(s.values for s in symbols)):
        yield dict(zip(names, values))


def _decision(symbols: tuple[Size, ...], verdicts: list[bool]) -> bool:
    first = verdicts[0]
    for index, verdict in enumerate(verdicts):
        if verdict != first:
            holds, fails = (index, 0) if verdict else (0, index)
            points = list(itertools.islice(_points(symbols), max(holds, fails) + 1))
            raise Undecided(points[holds], points[fails])
    return first


def pointwise(function: Callable[..., int], args: Sequence[Any], text: str | Callable[[], str] | None = None) -> Any:
    """`function` applied at every point; an int if no argument is a Dim or the result is constant."""
    if not any(isinstance(a, Dim) for a in args):
        return function(*args)
    symbols, tables = _aligned(args)
    table = tuple(function(*values) for values in zip(*tables))
    if all(v == table[0] for v in table):
        return table[0]
    return Dim(symbols, table, text or (lambda: f"{function.__name__}({', '.join(map(str, args))})"))


def lift(function: Callable[..., int]) -> Callable[..., Any]:
    """`function` on ints, made to accept Dims pointwise (for rules with branches, such as ceil_mode)."""

    def lifted(*args: Any) -> Any:
        return pointwise(function, args)

    lifted.__name__ = function.__name__
    return lifted


def _fit(symbols: tuple[Size, ...], table: tuple[int, ...]) -> str | None:
    """A short exact formula for the table: a·X² + b·X + c for one symbol, a·X·Y + b·X + c·Y + d for
    two (else None). The coefficients come from a few points and are checked at every point."""
    if len(symbols) == 1 and len(table) >= 2:
        xs, name = symbols[0].values, symbols[0].name
        (x0, x1), (t0, t1) = xs[:2], table[:2]
        square = Fraction(Fraction(table[2] - t1, xs[2] - x1) - Fraction(t1 - t0, x1 - x0), xs[2] - x0) if len(table) > 2 else Fraction(0)
        slope = Fraction(t1 - t0, x1 - x0) - square * (x0 + x1)
        intercept = t0 - square * x0 * x0 - slope * x0
        if _exact(table, [(square, [x * x for x in xs]), (slope, list(xs)), (intercept, [1] * len(xs))]):
            return _polynomial([(square, f"{name}**2"), (slope, name), (intercept, "")])
        return None
    if len(symbols) != 2 or min(len(s.values) for s in symbols) < 2:
        return None
    x, y = symbols
    (x0, x1), (y0, y1) = x.values[:2], y.values[:2]
    width = len(y.values)
    t00, t01, t10, t11 = table[0], table[1], table[width], table[width + 1]
    a = Fraction(t11 - t10 - t01 + t00, (x1 - x0) * (y1 - y0))
    b = Fraction(t10 - t00, x1 - x0) - a * y0
    c = Fraction(t01 - t00, y1 - y0) - a * x0
    d = t00 - a * x0 * y0 - b * x0 - c * y0
    xs = [px for px in x.values for _ in y.values]
    ys = list(y.values) * len(x.values)
    if not _exact(table, [(a, [px * py for px, py in zip(xs, ys)]), (b, xs), (c, ys), (d, [1] * len(xs))]):
        return None
    return _polynomial([(a, f"{x.name}*{y.name}"), (b, x.name), (c, y.name), (d, "")])


def _exact(table: tuple[int, ...], terms: list[tuple[Fraction, list[int]]]) -> bool:
    """True if table[k] == Σ coefficient·monomial[k] at every k, checked in integers."""
    denominator = 1
    for coefficient, _ in terms:
        denominator = denominator * coefficient.denominator // math.gcd(denominator, coefficient.denominator)
    scaled = [(int(coefficient * denominator), monomial) for coefficient, monomial in terms if coefficient]
    return all(denominator * value == sum(c * m[k] for c, m in scaled) for k, value in enumerate(table))


def _polynomial(terms: list[tuple[Fraction, str]]) -> str:
    """`2*H*W + H/2 - 3` from (coefficient, monomial) pairs; zero terms left out."""
    text = ""
    for coefficient, names in terms:
        if coefficient == 0:
            continue
        term = _term(abs(coefficient), names) if names else str(abs(coefficient))
        text += (" - " if coefficient < 0 else " + ") + term if text else ("-" if coefficient < 0 else "") + term
    return text or "0"


def _term(coefficient: Fraction, names: str) -> str:
    """`H`, `2*H`, `H/4`, `3*H/4`; a fraction that is not a whole number is exact only because the
    symbol's values make it so."""
    text = names if coefficient.numerator == 1 else f"{coefficient.numerator}*{names}"
    return text if coefficient.denominator == 1 else f"{text}/{coefficient.denominator}"


def is_symbolic(value: Any) -> bool:
    """True for a Dim, or a tuple/list holding one."""
    if isinstance(value, (tuple, list)):
        return any(map(is_symbolic, value))
    return isinstance(value, Dim)


def at(value: Any, point: Point) -> Any:
    """`value` with every Dim replaced by its int at `point` (tuples and lists element-wise)."""
    if isinstance(value, Dim):
        return value.at(point)
    if isinstance(value, tuple):
        return tuple(at(v, point) for v in value)
    if isinstance(value, list):
        return [at(v, point) for v in value]
    return value


def symbols_of(value: Any) -> dict[str, Size]:
    """Every symbol `value` (a Dim, or a tuple/list of them) depends on."""
    if isinstance(value, Dim):
        return {s.name: s for s in value.symbols}
    if isinstance(value, (tuple, list)):
        found: dict[str, Size] = {}
        for item in value:
            found.update(symbols_of(item))
        return found
    return {}
