"""Formulas: a value of an ejected class written as a Python expression of the class's parameters.

The spec says how most values are made: `out: $3 * $n_embd` is `3 * n_embd` in Python, once `$n_embd`
is known as a name of the class (a parameter, or a literal where it is fixed). A value the spec does
not write (a layer's input width) is written as a name that equals it, or as another value's formula
that does (`nn.Linear(4 * n_embd, n_embd)` after `nn.Linear(n_embd, 4 * n_embd)`). A shape function
in the spec (`$4 * features(input)`) becomes a name of the class that equals what it reads.

Every formula is checked, never assumed: it must give the value of every instance of the class in
every build of the spec that was observed (see `fit`); the spec's expressions are evaluated by
`compiler.expr`, never by Python.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import expr
from ..ir import TypedNode
from ..load import Document
from . import code
from .optional import MISSING

MAX_HOLES = 2
"""The most shape functions or unknown names one spec expression may have filled by the class's names."""


def _parameter_prefix() -> str:
    """How a parsed expression spells a parameter's name (`$p` parses to a Name with this prefix)."""
    tree = expr.parse("$p").tree
    assert isinstance(tree, ast.Name)
    return tree.id.removesuffix("p")


_PARAMETER = _parameter_prefix()

PYTHON_FUNCTIONS = frozenset({"min", "max", "abs", "int", "round", "sum", "len"})
"""The expression language's functions that Python's builtins of the same name compute alike."""


@dataclass(frozen=True)
class Formula:
    """Python source of a value, and the class names it reads."""

    text: str
    names: frozenset[str] = frozenset()

    def renamed(self, names: Mapping[str, str]) -> str:
        """The text with the names it reads replaced (`n_head` → `self.n_head`)."""
        if not self.names & names.keys():
            return self.text
        tree = ast.parse(self.text, mode="eval")
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in names:
                node.id = names[node.id]
        return ast.unparse(tree)


@dataclass
class Scope:
    """What a class's formulas may read, each with its value at every virtual instance (an instance of
    the class in one observed build of the spec)."""

    count: int
    names: dict[str, list[Any]] = field(default_factory=dict)
    """The class's names (its parameters, and those it may take)."""
    spec: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)
    """A spec parameter (`n_embd`) → its Python text in the class and its values."""
    found: list[tuple[Formula, list[Any]]] = field(default_factory=list)
    """The formulas given so far, with their values."""

    def constant(self, value: Any) -> list[Any]:
        return [value] * self.count


class SpecText:
    """The spec's own text of each layer argument (an expression string, a literal, or a list of them)."""

    def __init__(self, document: Document):
        self.data = document.data
        self.paths = {
            span: path for path, span in sorted(document.spans.items(), key=lambda item: len(item[0])) if span.file == document.path
        }

    def declared(self, block: str | None) -> set[str]:
        """The parameters a block declares (shadowing the model's of the same name)."""
        return set(self.data.get("blocks", {}).get(block, {}).get("params", {})) if block is not None else set()

    def raw(self, node: TypedNode, argument: str) -> Any:
        span = node.node.arg_spans.get(argument)
        path = self.paths.get(span) if span is not None else None
        if path is None:
            return MISSING
        value = self.data
        for key in path:
            value = value[key]
        return value

    def candidates(self, node: TypedNode | None, value: Any, hint: str | None = None) -> list[Any]:
        """The spec texts that may make `value` at `node`: the argument `hint` names, then every argument
        (or item of a list argument) whose value it is or ends it."""
        if node is None:
            return []
        found = [self.raw(node, hint)] if hint is not None else []
        for argument, given in node.args.items():
            if repr(given) == repr(value) or _ends_with(value, given):
                found.append(self.raw(node, argument))
            elif isinstance(given, list | tuple):
                raw = self.raw(node, argument)
                if isinstance(raw, list) and len(raw) == len(given):
                    found += [raw[index] for index, item in enumerate(given) if repr(item) == repr(value)]
        unique: list[Any] = []
        for raw in found:
            if raw is not MISSING and all(raw is not other and raw != other for other in unique):
                unique.append(raw)
        return unique


def _ends_with(value: Any, given: Any) -> bool:
    """A list the op made from the spec's by putting items before it (the batch's -1 of a reshape)."""
    kinds = (list, tuple)
    return (
        isinstance(value, kinds)
        and isinstance(given, kinds)
        and 0 < len(given) < len(value)
        and repr(list(value[-len(given) :])) == repr(list(given))
    )


def expressions(raw: Any, scope: Scope) -> Iterator[tuple[Formula, list[Any]]]:
    """Each formula the spec expression `raw` reads as in `scope` (its shape functions and unknown names
    filled by the class's names, every way), with its values; none for a literal or what Python would
    compute otherwise (the spec's own functions, `ceil`…)."""
    if not expr.is_expression(raw):
        return
    try:
        parsed = expr.parse(raw)
    except expr.ExprError:
        return
    if parsed.calls or not _translatable(parsed.tree):
        return
    holes = _holes(parsed.tree, scope)
    if len(holes) > MAX_HOLES:
        return
    for filling in itertools.product(scope.names, repeat=len(holes)):
        given = dict(zip(holes, filling))
        values = _values(parsed, scope, given)
        if values is not None:
            yield _formula(parsed.tree, scope, given), values


def _holes(tree: ast.expr, scope: Scope) -> list[str]:
    """The shape calls (by source) and the parameters the scope does not know, in order."""
    found: list[str] = []
    for node in ast.walk(tree):
        if _is_shape_call(node):
            found.append(ast.unparse(node))
        elif isinstance(node, ast.Name) and node.id.startswith(_PARAMETER) and node.id[len(_PARAMETER) :] not in scope.spec:
            found.append(node.id[len(_PARAMETER) :])
    return list(dict.fromkeys(found))


def _is_shape_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in expr.SHAPE_FUNCTIONS


def _translatable(tree: ast.expr) -> bool:
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and not _is_shape_call(node)]
    return all(isinstance(node.func, ast.Name) and node.func.id in PYTHON_FUNCTIONS for node in calls)


class _Filled(ast.NodeTransformer):
    """The tree with each hole and known parameter replaced: by a parameter Name (`spec`, for
    evaluating) or by the class's Python (`python`)."""

    def __init__(self, holes: Mapping[str, str], known: Mapping[str, str], python: bool):
        self.holes, self.known, self.python = holes, known, python

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if _is_shape_call(node):
            return self._name(self.holes[ast.unparse(node)], hole=True)
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if not node.id.startswith(_PARAMETER):
            return ast.Constant(node.id == "true") if self.python else node  # `true`, `false`
        name = node.id[len(_PARAMETER) :]
        return self._name(self.holes[name], hole=True) if name in self.holes else self._name(name, hole=False)

    def _name(self, name: str, hole: bool) -> ast.expr:
        if not self.python:
            return ast.Name(_PARAMETER + ("?" if hole else "") + name, ast.Load())
        text = name if hole else self.known[name]
        return ast.parse(text, mode="eval").body


def _values(parsed: expr.Expression, scope: Scope, holes: Mapping[str, str]) -> list[Any] | None:
    """The expression's value at every virtual instance, or None where it cannot be evaluated."""
    tree = ast.fix_missing_locations(_Filled(holes, {}, python=False).visit(copy.deepcopy(parsed.tree)))
    filled = dataclasses.replace(parsed, tree=tree, refs=frozenset())
    values = []
    for index in range(scope.count):
        env = {name: spec_values[index] for name, (_, spec_values) in scope.spec.items()}
        env.update({"?" + given: scope.names[given][index] for given in holes.values()})
        if any(value is MISSING for value in env.values()):
            values.append(MISSING)
            continue
        try:
            values.append(expr.evaluate(filled, env))
        except expr.ExprError:
            return None
    return values


def _formula(tree: ast.expr, scope: Scope, holes: Mapping[str, str]) -> Formula:
    known = {name: text for name, (text, _) in scope.spec.items()}
    python = _Filled(holes, known, python=True).visit(copy.deepcopy(tree))
    text = ast.unparse(ast.fix_missing_locations(python))
    return Formula(text, reads(text, scope.names))


def reads(text: str, names: Mapping[str, Any]) -> frozenset[str]:
    """The names of `names` that the Python expression `text` reads."""
    return frozenset(node.id for node in ast.walk(ast.parse(text, mode="eval")) if isinstance(node, ast.Name) and node.id in names)


def literal_formula(value: Any) -> Formula:
    return Formula(code.literal(value))
