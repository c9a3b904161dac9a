"""Fitting one value of a class: the formula (see `formulas`) that gives it at every virtual instance
(each instance of the class in each observed build of the spec), tried in order: the spec's own
expression for it, a name of the class that equals it, a formula already given to another value, then
a list item by item. A value no formula gives is left to the caller (a parameter of its own, or a
model parameter that cannot be offered)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .formulas import Formula, Scope, expressions, literal_formula
from .optional import MISSING

LONGEST = 24
"""The longest formula a shape comment writes (a longer one reads as `*`)."""


def agree(values: Sequence[Any], got: Sequence[Any]) -> bool:
    """`got` gives every value that is present (an absent instance's value is MISSING)."""
    return len(values) == len(got) and all(a is MISSING or (b is not MISSING and repr(a) == repr(b)) for a, b in zip(values, got))


def constant(values: Sequence[Any]) -> bool:
    return len({repr(v) for v in values if v is not MISSING}) <= 1


def first(values: Sequence[Any]) -> Any:
    return next((v for v in values if v is not MISSING), None)


def fit(values: Sequence[Any], raws: Sequence[Any], scope: Scope, exclude: str | None = None) -> Formula | None:
    """The formula giving `values` in `scope`, from the spec texts `raws` that may make them, the
    scope's names (but `exclude`) and the formulas found so far; None if there is none."""
    for raw in raws:
        for formula, got in expressions(raw, scope):
            if agree(values, got):
                return formula
    for name, got in scope.names.items():
        if name != exclude and agree(values, got):
            return Formula(name, frozenset({name}))
    for formula, got in scope.found:
        if agree(values, got):
            return formula
    return _items(values, raws, scope, exclude)


def _items(values: Sequence[Any], raws: Sequence[Any], scope: Scope, exclude: str | None) -> Formula | None:
    """A list or tuple written item by item (`[n_embd]`), each item fitted with the spec's item."""
    present = [v for v in values if v is not MISSING]
    kinds = {type(v) for v in present}
    if len(kinds) != 1 or not kinds <= {list, tuple} or len({len(v) for v in present}) != 1:
        return None
    length = len(present[0])
    items: list[Formula] = []
    for index in range(length):
        column = [v if v is MISSING else v[index] for v in values]
        item_raws = [raw[index - length + len(raw)] for raw in raws if isinstance(raw, list) and length - len(raw) <= index < length]
        item = literal_formula(first(column)) if constant(column) else fit(column, item_raws, scope, exclude)
        if item is None:
            return None
        if item.names:
            scope.found.append((item, column))  # an item's formula may give another value (a size in a comment)
        items.append(item)
    texts = [item.text for item in items]
    text = f"[{', '.join(texts)}]" if kinds == {list} else f"({texts[0]},)" if length == 1 else f"({', '.join(texts)})"
    return Formula(text, frozenset().union(*(item.names for item in items)))


def dimension(values: Sequence[Any], scope: Scope) -> str:
    """A size in a shape comment: as every instance has it, else the formula of the class's names
    that gives it (a short one), else `*`."""
    if len({str(v) for v in values if v is not MISSING}) <= 1:
        return str(first(values))
    if not all(isinstance(v, int) for v in values if v is not MISSING):
        return "*"
    formula = fit(values, [], scope)
    return formula.text if formula is not None and len(formula.text) <= LONGEST else "*"
