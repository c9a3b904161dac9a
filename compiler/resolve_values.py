"""The values of a layer during resolve: `$` expressions, conditions, per-repetition values, block
arguments and op arguments. A value that reads inferred shapes, directly (`channels(input)`) or through
a block argument that does, becomes a `Deferred` for infer; the places that need a value before shapes
are known (`repeat`, names, `activation`) say so."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import expr
from .diagnostics import Diagnostic, Span, did_you_mean
from .ir import Deferred
from .load import Document, JsonPath
from .ops import REQUIRED, OpDef
from .schema import BLOCK_PARAM_TYPES, LAYER_KEYS
from .values import INVALID, block_param_type, check_block_value, check_value, integral


class _Hidden:
    """A caller's parameter, which a block does not see: kept only to explain that."""


_HIDDEN: Any = _Hidden()
_SCOPE_HINT = (
    "a block sees its own parameters and the model's, not its caller's: declare '{name}' in the block's params and pass {name}: ${name}"
)

_TEMPLATE_PART = re.compile(r"\{([^{}]*)\}")
_COPY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")

Repetition = tuple[int, int] | None
"""(index, count) of a repeat's copy, or None outside a repeat."""


class Values:
    def __init__(self, document: Document, diagnostics: list[Diagnostic]):
        self.doc = document
        self.diagnostics = diagnostics

    def _error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    # -- expressions ------------------------------------------------------------------------------

    def evaluate(self, value: Any, params: Mapping[str, Any], lookup: str, span: Span, path: JsonPath | None = None) -> Any:
        """A literal, an evaluated expression, or a Deferred one; lists and mappings element-wise (an
        element's diagnostics point at the element when its `path` is known)."""
        if isinstance(value, (list, dict)):
            items = enumerate(value) if isinstance(value, list) else value.items()
            evaluated = {
                key: self.evaluate(item, params, lookup, self.doc.span((*path, key)) if path else span, (*path, key) if path else None)
                for key, item in items
            }
            return list(evaluated.values()) if isinstance(value, list) else evaluated
        if not expr.is_expression(value):
            return value
        return self.expression(value, params, lookup, span)

    def expression(self, text: str, params: Mapping[str, Any], lookup: str, span: Span) -> Any:
        try:
            parsed = expr.parse(text)
        except expr.ExprError as error:
            self._error("E0304", str(error), span)
            return INVALID
        missing = sorted(name for name in parsed.params if isinstance(params.get(name, _HIDDEN), _Hidden))
        if missing:
            name = missing[0]
            hint = (
                _SCOPE_HINT.format(name=name) if name in params else did_you_mean(name, [k for k, v in params.items() if v is not _HIDDEN])
            )
            self._error("E0304", f"unknown parameter ${name} in '{text}'", span, hint)
            return INVALID
        unknown = [name for name in expr.unknown_functions(parsed, params) if params.get(name) is not INVALID]
        if unknown:
            hint = did_you_mean(unknown[0], [*expr.PLAIN_FUNCTIONS, *expr.SHAPE_FUNCTIONS, *params])
            self._error("E0304", f"unknown function '{unknown[0]}' in '{text}' (known: {expr.known_functions(params)})", span, hint)
            return INVALID
        used = {name: params[name] for name in parsed.params | parsed.calls}
        if any(value is INVALID for value in used.values()):
            return INVALID
        if parsed.needs_shapes or any(isinstance(value, Deferred) for value in used.values()):
            return Deferred(parsed, used, {ref: lookup + ref for ref in parsed.refs}, span)
        try:
            return expr.evaluate(parsed, used)
        except expr.ExprError as error:
            self._error("E0304", str(error), span)
            return INVALID

    def resolved(self, value: Any, params: Mapping[str, Any], what: str, span: Span) -> Any:
        """A value needed before shapes are known."""
        result = self.evaluate(value, params, "", span)
        if _reads_shapes(result):
            self._error("E0311", f"{what} is needed before shapes are inferred, so it cannot read them ({value})", span)
            return INVALID
        return result

    def template(self, text: str, params: Mapping[str, Any], span: Span) -> str:
        """A name template such as `denselayer{$i + 1}`: each `{…}` is an expression."""

        def part(match: re.Match) -> str:
            inner = match.group(1).strip()
            value = self.resolved(inner if expr.is_expression(inner) else f"${inner}", params, "a repeat name", span)
            return "?" if value is INVALID else str(value)

        return _TEMPLATE_PART.sub(part, text)

    def templated_name(self, text: str, params: Mapping[str, Any], span: Span, copy: int | None = None) -> str:
        """A repeat copy's name (`copy` its index) or a layer id made from a template; E0311 if it is no name."""
        reported = len(self.diagnostics)
        name = self.template(text, params, span)
        if len(self.diagnostics) > reported:  # a part that failed is reported already
            return name
        if copy is not None and not _COPY_NAME.match(name):
            self._error("E0311", f"repeat names copy {copy} '{name}': a name is letters, digits, '_' and '-'", span)
        elif copy is None and not _IDENTIFIER.match(name):
            self._error("E0311", f"id template '{text}' gives '{name}': an id is a letter or '_', then letters, digits and '_'", span)
        return name

    def condition(self, layer: dict, doc_path: JsonPath, params: Mapping[str, Any], lookup: str) -> bool | Deferred | None:
        """None without `when`; else True, False, or a Deferred to decide once shapes are known."""
        if "when" not in layer:
            return None
        when = layer["when"]
        span = self.doc.span((*doc_path, "when"))
        if isinstance(when, bool):
            return when
        text = when if expr.is_expression(when) else f"${when}"
        value = self.expression(text, params, lookup, span)
        if value is INVALID:
            return None
        return value if isinstance(value, Deferred) else bool(value)

    # -- arguments ------------------------------------------------------------------------------

    def _layer_values(self, layer: dict, doc_path: JsonPath, params, lookup: str, rep: Repetition, scalar_of) -> tuple[dict, dict]:
        """Each argument of a layer, its per-repetition value picked and its expression evaluated."""
        if rep is not None:
            params = {**params, "i": rep[0]}
        values, spans = {}, {}
        for key, raw in layer.items():
            if key in LAYER_KEYS:
                continue
            span = spans[key] = self.doc.span((*doc_path, key))
            picked = self._per_repetition(raw, scalar_of(key), rep, key, span)
            path = (*doc_path, key, rep[0]) if rep is not None and picked is not raw else (*doc_path, key)
            value = INVALID if picked is INVALID else self.evaluate(picked, params, lookup, span, path)
            if picked is raw and isinstance(value, list) and not isinstance(raw, list):  # `out: $widths`: a list parameter
                value = self._per_repetition(value, scalar_of(key), rep, key, span)
            values[key] = value
        return values, spans

    def _per_repetition(self, value: Any, scalar: bool, rep: Repetition, key: str, span: Span) -> Any:
        if not scalar or not isinstance(value, list):
            return value
        if rep is None:
            self._error("E0306", f"'{key}' takes one value; a list gives one value per repetition and needs 'repeat'", span)
            return INVALID
        if len(value) != rep[1]:
            self._error("E0306", f"'{key}' has {len(value)} values for {rep[1]} repetitions", span)
            return INVALID
        return value[rep[0]]

    def op_args(self, op: OpDef, layer: dict, doc_path: JsonPath, params, lookup: str, name: str, rep: Repetition) -> tuple[dict, dict]:
        """The op's arguments (defaults filled in) and where each was written."""
        values, spans = self._layer_values(layer, doc_path, params, lookup, rep, lambda key: op.param_index[key].is_scalar)
        args = {}
        for param in op.params:
            value = values.get(param.name, param.default)
            if value is REQUIRED or _holds(value, INVALID):
                continue
            if isinstance(value, dict) and _reads_shapes(value):
                self._error(
                    "E0311",
                    f"layer '{name}' ({op.name}): '{param.name}' is needed to build the layer, so it cannot read shapes",
                    spans[param.name],
                )
                continue
            if not _reads_shapes(value):
                value = integral(param.schema, value)
                problem = check_value(param, value)
                if problem:
                    where = spans.get(param.name, self.doc.span(doc_path))
                    self._error("E0311", f"layer '{name}' ({op.name}): '{param.name}' {problem}", where)
            args[param.name] = value
        return args, spans

    def block_args(
        self,
        name: str,
        block: dict,
        layer: dict,
        doc_path: JsonPath,
        caller: Mapping,
        model: Mapping,
        lookups: tuple[str, str],
        rep: Repetition,
    ) -> dict:
        """The block's parameters: the model's, then the block's own (arguments, else defaults; a default
        may be an expression of the parameters before it, or read the block's input). `lookups` are the
        caller's and the block's own reference prefixes. A block never sees its caller's parameters."""
        declared = block.get("params", {})
        types = {key: block_param_type(value) for key, value in declared.items()}
        lookup, own = lookups
        values, spans = self._layer_values(layer, doc_path, caller, lookup, rep, lambda key: types.get(key) != "list")
        params = {**dict.fromkeys(caller, _HIDDEN), **model}
        for key, value in values.items():
            if key not in declared:
                hint = did_you_mean(key, declared) or f"block '{name}' takes: {', '.join(declared) or 'no parameters'}"
                where = f"layer '{layer.get('id', doc_path[-1])}'"
                self._error("E0305", f"{where}: block '{name}' has no parameter '{key}'", self.doc.key_span((*doc_path, key)), hint)
                continue
            problem = None if value is INVALID or _reads_shapes(value) else check_block_value(types[key], value)
            if problem:
                self._error("E0305", f"block '{name}': parameter '{key}' {problem}", spans[key])
            params[key] = INVALID if problem else int(value) if types[key] == "int" and isinstance(value, float) else value
        for key, default in declared.items():
            if key in values:
                continue
            if isinstance(default, str) and default in BLOCK_PARAM_TYPES:
                where = f"layer '{layer.get('id', doc_path[-1])}': "
                self._error("E0305", f"{where}block '{name}' needs parameter '{key}' ({default})", self.doc.span(doc_path))
                params[key] = INVALID
            else:
                where = self.doc.span(("blocks", name, "params", key))
                params[key] = self.evaluate(default, params, own, where) if expr.is_expression(default) else default
        return params


def _reads_shapes(value: Any) -> bool:
    return _holds(value, Deferred)


def _holds(value: Any, kind: Any) -> bool:
    """True if `value`, or an item of a list or mapping in it, is `kind` (an instance of a class, or
    that very object)."""
    if isinstance(value, (list, dict)):
        return any(_holds(v, kind) for v in (value.values() if isinstance(value, dict) else value))
    return isinstance(value, kind) if isinstance(kind, type) else value is kind
