"""A small, safe expression language: `$width * 4`, `$stride != 1 or channels(input) != $width`,
`$channels(input) // 2`, `$max($w, 8)`, `$true`.

A string value that starts with `$` is an expression; parameters are written `$name` and layers bare
(`channels(input)`); a leading `$` before anything but a parameter only marks the string as an
expression. Expressions are parsed with Python's `ast` and interpreted here over a closed set of node
kinds; nothing is ever compiled or passed to `eval`. No attribute access, no calls but the functions
below and the spec's own, no string arithmetic. Evaluation is metered as it runs, as resolve bounds
layers: numbers stay finite and below 2**63, a list built holds at most MAX_ELEMENTS elements (nested
lists counted in full), one expression takes at most MAX_STEPS steps and all of a spec's expressions
together (inside `metered()`) MAX_SPEC_STEPS. Sizes may be symbolic (`dims.Dim`), from `shape()` of a
symbolic input.
"""

from __future__ import annotations

import ast
import contextlib
import math
import operator
import re
import reprlib
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .dims import Dim

MAX_LENGTH = 500
MAX_MAGNITUDE = 2**63
MAX_ELEMENTS = 10_000
"""The most elements a list built by an expression holds, nested lists counted in full (a list it
holds twice counts twice)."""
MAX_STEPS = 100_000
"""The most steps one expression takes: a node evaluated, a function called, or an element of a list
built, compared or summed."""
MAX_SPEC_STEPS = 2_000_000
"""The most steps all the expressions of one spec take together (inside `metered()`)."""
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MARKER = re.compile(r"\$(?=(?:true|false|not)\b|[A-Za-z_][A-Za-z0-9_]*\s*\()")
_PARAM_PREFIX = "__param_"
_CONSTANTS = {"true": True, "false": False}
SHAPE_FUNCTIONS = ("shape", "channels", "features")
"""shape(x): the per-sample shape; channels(x): its first size (conv layout); features(x): its last size."""


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision's `_make_divisible` (MobileNet, EfficientNet): the nearest multiple of `divisor`,
    at least `min_value` (default `divisor`), never more than 10 % below `value`."""
    minimum = divisor if min_value is None else min_value
    rounded = max(minimum, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _round(value: float, digits: int | None = None) -> float:
    if digits is not None and not (isinstance(digits, int) and -20 <= digits <= 20):
        raise ValueError("round() takes at most 20 digits")
    return round(value) if digits is None else round(value, digits)


PLAIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "int": int,
    "round": _round,
    "ceil": math.ceil,
    "floor": math.floor,
    "make_divisible": make_divisible,
    "sum": lambda values: sum(_numbers(values)),
    "len": lambda values: len(_list(values)),
}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: lambda base, exponent: _power(base, exponent),
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class ExprError(Exception):
    """A malformed expression, or one that cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class Expression:
    text: str
    tree: ast.expr
    params: frozenset[str]
    refs: frozenset[str]
    calls: frozenset[str] = frozenset()
    """The spec's own functions it calls (names that are neither builtin nor shape functions)."""

    @property
    def needs_shapes(self) -> bool:
        """True when the value depends on inferred shapes (it calls shape(), channels() or features())."""
        return bool(self.refs)


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$")


def parse(text: str) -> Expression:
    """Parse an expression; parameters are written `$name`, layer references bare (`channels(input)`)."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is longer than {MAX_LENGTH} characters")
    text = _without_marker(text)
    if re.search(r"\$(?![A-Za-z_])", text) or _PARAM_PREFIX in text:
        raise ExprError("'$' must be followed by a parameter name, as in $width")
    source = _PARAM.sub(lambda m: _PARAM_PREFIX + m.group(1), text)
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExprError(f"cannot parse expression '{text}'") from None
    params, refs, calls = set(), set(), set()
    try:
        _check(tree, params, refs, calls)
    except RecursionError:
        raise ExprError(f"expression '{text[:60]}…' is nested too deeply") from None
    return Expression(text, tree, frozenset(params), frozenset(refs), frozenset(calls))


def _without_marker(text: str) -> str:
    """`$channels(input) // 2` → `channels(input) // 2`: a `$` that is not followed by a parameter name
    (a function call `$max(`, `$true`, `$not`, and at the start a number or a bracket) only marks an
    expression."""
    stripped = text.lstrip()
    if stripped.startswith("$"):
        rest = stripped[1:]
        if not rest.strip():
            raise ExprError("'$' must be followed by a parameter name or an expression, as in $width or $max($w, 8)")
        if _WORD.match(rest) is None:
            stripped = rest
    return _MARKER.sub("", stripped)


def _source(node: ast.AST) -> str:
    """The expression text of `node`, as the user wrote it ($-parameters restored)."""
    return ast.unparse(node).replace(_PARAM_PREFIX, "$")


def _check(node: ast.AST, params: set[str], refs: set[str], calls: set[str]) -> None:
    """Reject every node kind outside the language; collect parameter, layer and function names."""
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) and not node.func.id.startswith(_PARAM_PREFIX) else None
        if name is None:
            raise ExprError(f"unknown function '{_source(node.func)}' (known: {', '.join((*SHAPE_FUNCTIONS, *PLAIN_FUNCTIONS))})")
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ExprError(f"'{_source(node)}': functions take plain arguments, as in {name}(a, b)")
        if name in SHAPE_FUNCTIONS:
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Name) or node.args[0].id.startswith(_PARAM_PREFIX):
                raise ExprError(f"{name}() takes one layer name, as in {name}(input)")
            refs.add(node.args[0].id)
            return
        if name not in PLAIN_FUNCTIONS:
            calls.add(name)
        for arg in node.args:
            _check(arg, params, refs, calls)
        return
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return
        if not node.id.startswith(_PARAM_PREFIX):
            raise ExprError(f"unknown name '{node.id}': parameters are written ${node.id}")
        params.add(node.id[len(_PARAM_PREFIX) :])
        return
    allowed = (
        ast.Constant,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.IfExp,
        ast.List,
        ast.Tuple,
        ast.Subscript,
        ast.Slice,
        ast.Load,
    )
    allowed_ops = (*_BINARY, *_COMPARE, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd)
    if isinstance(node, (ast.operator, ast.cmpop, ast.boolop, ast.unaryop)):
        if not isinstance(node, allowed_ops):
            raise ExprError(f"operator '{type(node).__name__}' is not supported in expressions")
        return
    if not isinstance(node, allowed) or (isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str))):
        raise ExprError(f"'{_source(node)}' is not allowed in expressions")
    if isinstance(node, ast.Constant) and isinstance(node.value, float) and not math.isfinite(node.value):
        raise ExprError("a number is past a float's range")
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not _within(node.value):
        raise ExprError(f"the number {short(node.value)} is 2**63 or more")
    for child in ast.iter_child_nodes(node):
        _check(child, params, refs, calls)


class _Meter:
    """The steps left to the expressions of one spec."""

    def __init__(self, steps: int):
        self.left = steps


_METER: ContextVar[_Meter | None] = ContextVar("expression_meter", default=None)


@contextlib.contextmanager
def metered() -> Iterator[None]:
    """Every expression evaluated inside the block draws on one allowance of MAX_SPEC_STEPS steps."""
    token = _METER.set(_Meter(MAX_SPEC_STEPS))
    try:
        yield
    finally:
        _METER.reset(token)


class _Steps:
    """The steps one evaluation (its function calls included) has taken, against its allowance."""

    def __init__(self, meter: _Meter | None):
        self.meter = meter
        self.limit = MAX_STEPS if meter is None else min(MAX_STEPS, meter.left)
        self.taken = 0

    def take(self, steps: int) -> None:
        self.taken += steps
        if self.taken > self.limit:
            if self.limit < MAX_STEPS:
                raise ExprError(f"the spec's expressions together take more than {MAX_SPEC_STEPS:,} steps to evaluate")
            raise ExprError(f"it takes more than {MAX_STEPS:,} steps to evaluate (function calls that fan out, or long lists)")

    def settle(self) -> None:
        if self.meter is not None:
            self.meter.left = max(0, self.meter.left - self.taken)


def evaluate(expr: Expression, params: Mapping[str, Any], shape_of: Callable[[str], tuple[int, ...]] | None = None) -> Any:
    """Evaluate with parameter values and, for shape functions, a lookup of per-sample shapes."""
    steps = _Steps(_METER.get())
    try:
        return _Evaluator(params, shape_of, steps).eval(expr.tree)
    except ExprError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, IndexError, OverflowError, RecursionError) as error:
        raise ExprError(f"cannot evaluate '{expr.text}': {str(error)[:200]}") from None
    finally:
        steps.settle()


@dataclass(frozen=True, eq=False)
class Function:
    """A spec's own function (`functions: {ch: {args: [c], value: …}}`): its body sees its arguments
    and `env`, the model's parameters (its own functions included)."""

    name: str
    args: tuple[str, ...]
    body: Expression
    env: Mapping[str, Any]


def unknown_functions(expression: Expression, params: Mapping[str, Any]) -> list[str]:
    """The calls of `expression` that name no builtin and no Function in `params`."""
    return sorted(name for name in expression.calls if not isinstance(params.get(name), Function))


def known_functions(params: Mapping[str, Any]) -> str:
    return ", ".join((*SHAPE_FUNCTIONS, *PLAIN_FUNCTIONS, *(k for k, v in params.items() if isinstance(v, Function))))


MAX_CALL_DEPTH = 32


class _Evaluator:
    def __init__(self, params: Mapping[str, Any], shape_of: Callable[[str], tuple[int, ...]] | None, steps: _Steps, depth: int = 0):
        self.params = params
        self.shape_of = shape_of
        self.steps = steps
        self.depth = depth

    def eval(self, node: ast.expr) -> Any:
        self.steps.take(1)
        method = getattr(self, f"_{type(node).__name__}")
        return method(node)

    def _built(self, value: list) -> list:
        """A list the expression made, paid for by its elements and refused past MAX_ELEMENTS."""
        count = _elements(value, MAX_ELEMENTS)
        if count > MAX_ELEMENTS:
            raise ExprError(f"the result is too large (a list of more than {MAX_ELEMENTS:,} elements)")
        self.steps.take(count)
        return value

    def _read(self, *values: Any) -> None:
        """Pay for reading every element of the lists among `values` (comparing or summing them)."""
        self.steps.take(sum(_elements(value, MAX_ELEMENTS) for value in values))

    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        name = node.id[len(_PARAM_PREFIX) :]
        if name not in self.params:
            from .diagnostics import did_you_mean

            hint = did_you_mean(name, self.params)
            raise ExprError(f"unknown parameter ${name}" + (f"; {hint}" if hint else ""))
        return self.params[name]

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.eval(node.left), self.eval(node.right)
        if isinstance(node.op, ast.Add) and isinstance(left, list) and isinstance(right, list):
            return self._built(left + right)
        if not all(_is_number(v) for v in (left, right)):
            raise ExprError(f"arithmetic needs numbers, got {short(left)} and {short(right)}")
        return self._number(_BINARY[type(node.op)](left, right))

    def _number(self, value: Any) -> Any:
        """A result within bounds; a symbolic one is paid for by its points."""
        if isinstance(value, Dim):
            self.steps.take(len(value.table))
        return _bounded(value)

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if not _is_number(value):
            raise ExprError(f"arithmetic needs a number, got {short(value)}")
        return -value if isinstance(node.op, ast.USub) else +value

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        if isinstance(node.op, ast.And):
            return all(self.eval(v) for v in node.values)
        return any(self.eval(v) for v in node.values)

    def _Compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.eval(comparator)
            self._read(left, right)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)

    def _List(self, node: ast.List) -> list:
        return self._built([self.eval(item) for item in node.elts])

    _Tuple = _List

    def _Subscript(self, node: ast.Subscript) -> Any:
        value, index = self.eval(node.value), self.eval(node.slice)
        if not isinstance(value, list) or not isinstance(index, (int, slice)) or isinstance(index, bool):
            raise ExprError("indexing needs a list and an integer index or a slice")
        return self._built(value[index]) if isinstance(index, slice) else value[index]

    def _Slice(self, node: ast.Slice) -> slice:
        bounds = [None if part is None else self.eval(part) for part in (node.lower, node.upper, node.step)]
        if not all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in bounds):
            raise ExprError("slice bounds must be integers")
        return slice(*bounds)

    def _Call(self, node: ast.Call) -> Any:
        name = node.func.id
        if name in PLAIN_FUNCTIONS:
            args = [self.eval(arg) for arg in node.args]
            self._read(*args)
            return self._number(PLAIN_FUNCTIONS[name](*args))
        if name not in SHAPE_FUNCTIONS:
            return self._user_call(name, [self.eval(arg) for arg in node.args])
        if self.shape_of is None:
            raise ExprError(f"{name}() needs inferred shapes, which are not known here")
        shape = list(self.shape_of(node.args[0].id))
        if name == "shape":
            return shape
        if not shape:
            raise ExprError(f"{name}({node.args[0].id}) of a scalar sample")
        return shape[0] if name == "channels" else shape[-1]

    def _user_call(self, name: str, values: list[Any]) -> Any:
        function = self.params.get(name)
        if not isinstance(function, Function):
            raise ExprError(f"unknown function '{name}' (known: {known_functions(self.params)})")
        if len(values) != len(function.args):
            raise ExprError(f"{name}() takes {len(function.args)} argument(s), got {len(values)}")
        if self.depth >= MAX_CALL_DEPTH:
            raise ExprError(f"{name}() calls functions more than {MAX_CALL_DEPTH} deep")
        inner = _Evaluator(ChainMap(dict(zip(function.args, values)), function.env), None, self.steps, self.depth + 1)
        return inner.eval(function.body.tree)


def _power(base: Any, exponent: Any) -> Any:
    """`**`, refused before computing where the result would be huge (2**63 or more, or past a float's range)."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent * (abs(base).bit_length() - 1) >= 63:
        raise ExprError("the result is too large (2**63 or more)")
    try:
        result = base**exponent
    except OverflowError:
        raise ExprError("the result is too large (2**63 or more)") from None
    if isinstance(result, complex):
        raise ExprError(f"{base} ** {exponent} is not a real number")
    return result


def _numbers(values: Any) -> list:
    if not all(_is_number(v) for v in _list(values)):
        raise ExprError(f"sum() takes a list of numbers, got {short(values)}")
    return values


def _list(values: Any) -> list:
    if not isinstance(values, list):
        raise ExprError(f"len() and sum() take a list, got {short(values)}")
    return values


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Dim))


def _elements(value: Any, limit: int) -> int:
    """The elements of `value` if it is a list, nested lists counted in full; counting stops past `limit`."""
    if not isinstance(value, list):
        return 0
    count, pending = len(value), [value]
    while pending and count <= limit:
        for item in pending.pop():
            if isinstance(item, list):
                count += len(item)
                pending.append(item)
    return count


def _bounded(value: Any) -> Any:
    """Numbers stay finite and below 2**63 in magnitude, at every point of a symbolic one: nothing in
    a model is larger."""
    for number in value.table if isinstance(value, Dim) else (value,):
        if isinstance(number, float) and not math.isfinite(number):
            raise ExprError(f"the result is not a finite number ({number})")
        if not _within(number):
            raise ExprError("the result is too large (2**63 or more)")
    return value


def _within(number: Any) -> bool:
    """False for a number of 2**63 or more in magnitude, or not finite (NaN compares false)."""
    return not isinstance(number, (int, float)) or abs(number) < MAX_MAGNITUDE


_REPR = reprlib.Repr()
_REPR.maxlist, _REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 4, 3, 40, 40


def short(value: Any) -> str:
    """`value` for a message: a few elements of a list (never all of a long or deeply shared one)."""
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
