"""Resolve: expand blocks, groups, repeats and conditions; substitute parameters; resolve `from`
references; then `link` builds the networkx DAG. The result is a `Graph` whose only open questions are the
values that depend on inferred shapes (`Deferred`), which infer answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import expr
from .diagnostics import Diagnostic, Span, UsageError, did_you_mean, has_errors, sort_key
from .ir import Deferred, Graph, Node
from .link import Expansion, PendingNode, link
from .load import Document, JsonPath
from .ops import REQUIRED, OpDef, Registry, TensorType
from .schema import BLOCK_PARAM_TYPES, LAYER_KEYS
from .values import block_param_type, check_block_value, check_value

MAX_NODES = 100_000
MAX_BLOCK_DEPTH = 32


class _Abort(Exception):
    """Stops expansion when going on could only produce noise (a size limit or a recursive block)."""


@dataclass(frozen=True)
class _Scope:
    prefix: str
    params: Mapping[str, Any]
    guards: tuple[Deferred, ...] = ()
    blocks: tuple[str, ...] = ()


def resolve(document: Document, registry: Registry, overrides: Mapping[str, Any] | None = None) -> tuple[Graph | None, list[Diagnostic]]:
    """Expand and link the spec; returns the graph (None if there are errors) and all diagnostics.

    Raises UsageError for overrides that name no model parameter or have the wrong type.
    """
    resolver = _Resolver(document, registry)
    params = resolver.model_params(overrides or {})
    return resolver.run(params)


class _Resolver:
    def __init__(self, document: Document, registry: Registry):
        self.doc = document
        self.data = document.data
        self.registry = registry
        self.blocks: dict[str, Any] = self.data.get("blocks", {})
        self.diagnostics: list[Diagnostic] = []
        self.pending: dict[str, PendingNode] = {}
        self.aliases: dict[str, str] = {}
        self.defined: dict[str, Span] = {}
        self.inputs: dict[str, TensorType] = {}
        self.block_outputs: list[tuple[str, str, Span, str]] = []

    # -- entry ---------------------------------------------------------------------------------

    def model_params(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        params = dict(self.data.get("params", {}))
        for key, value in overrides.items():
            if key not in params:
                hint = did_you_mean(key, params)
                known = ", ".join(params) or "none"
                raise UsageError(f"--set {key}: the spec has no parameter '{key}'" + (f"; {hint}" if hint else f" (parameters: {known})"))
            problem = check_block_value(block_param_type(params[key]), value)
            if problem:
                raise UsageError(f"--set {key}={value!r}: {problem}")
            params[key] = value
        return params

    def run(self, params: dict[str, Any]) -> tuple[Graph | None, list[Diagnostic]]:
        self._check_blocks()
        for name, declared in self.data["inputs"].items():
            shape, dtype = (declared, "float32") if isinstance(declared, list) else (declared["shape"], declared.get("dtype", "float32"))
            self.inputs[name] = TensorType(tuple(shape), dtype)
            self.defined[name] = self.doc.key_span(("inputs", name))
        first_input = next(iter(self.inputs))
        try:
            last = self._expand_layers(self.data["layers"], ("layers",), _Scope("", params), [first_input])
        except _Abort:
            return None, self._sorted()
        expansion = Expansion(self.doc, self.inputs, self.pending, self.aliases, self.defined, self.block_outputs)
        graph, linked = link(expansion, self.data.get("outputs", [last]), has_errors(self.diagnostics))
        return graph, sorted(set(self.diagnostics + linked), key=sort_key)

    def _sorted(self) -> list[Diagnostic]:
        return sorted(set(self.diagnostics), key=sort_key)

    def _error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    def _check_blocks(self) -> None:
        for name, block in self.blocks.items():
            span = self.doc.key_span(("blocks", name))
            if name in self.registry:
                self._error("E0309", f"block '{name}' has the name of a builtin op", span, "rename the block")
            for pname, declared in block.get("params", {}).items():
                if isinstance(declared, str) and declared not in BLOCK_PARAM_TYPES and declared.lower() in BLOCK_PARAM_TYPES:
                    message = f"block '{name}': type names are lower case: write '{declared.lower()}', not '{declared}'"
                    self._error("E0305", message, self.doc.span(("blocks", name, "params", pname)))

    # -- expansion -------------------------------------------------------------------------------

    def _expand_layers(self, layers: list, doc_path: JsonPath, scope: _Scope, entry: list[str]) -> str:
        """Expand a layer list; each layer consumes the previous one by default. Returns the last output path."""
        previous = entry
        for index, layer in enumerate(layers):
            previous = [self._expand_layer(layer, (*doc_path, index), scope, index, previous)]
        return previous[0]

    def _expand_layer(self, layer: dict, doc_path: JsonPath, scope: _Scope, index: int, previous: list[str]) -> str:
        local_id = layer.get("id", str(index))
        path = scope.prefix + local_id
        span = self.doc.span(doc_path)
        self._define(path, self.doc.span((*doc_path, "id")) if "id" in layer else span)
        sources = self._sources(layer, doc_path, scope, previous)
        guard = self._condition(layer, doc_path, scope)
        if guard is False or (guard is not None and len(sources) != 1):
            if guard is not False:
                self._error("E0309", f"layer '{path}': a conditional layer must have exactly one input", span)
            self.aliases[path] = sources[0][0]
            return path
        scope = dataclasses.replace(scope, guards=scope.guards + ((guard,) if isinstance(guard, Deferred) else ()))
        kind = self._kind(layer, doc_path, path)
        if kind is None:
            self.aliases[path] = sources[0][0]
            return path
        repeat = self._repeat(layer, doc_path, scope)
        last = path
        for rep in range(repeat or 1):
            instance = f"{path}.{rep}" if repeat else path
            if repeat and rep > 0:
                sources = [(last, span, scope.prefix)]
            self._expand_instance(kind, layer, doc_path, scope, instance, sources, rep, repeat)
            last = instance
        if repeat:
            self.aliases[path] = last
        return path

    def _expand_instance(self, kind, layer, doc_path, scope, instance, sources, rep, repeat) -> None:
        if isinstance(kind, OpDef):
            self._add_node(kind, layer, doc_path, scope, instance, sources, rep, repeat)
            return
        name, body = kind
        if name is None:
            params, inner = scope.params, scope
        else:
            if name in scope.blocks or len(scope.blocks) >= MAX_BLOCK_DEPTH:
                self._error("E0309", f"block '{name}' calls itself (via {' → '.join(scope.blocks)})", self.doc.span(doc_path))
                raise _Abort
            params = self._block_args(name, body, layer, doc_path, scope, rep, repeat)
            inner = dataclasses.replace(scope, blocks=(*scope.blocks, name))
        inner = dataclasses.replace(inner, prefix=instance + ".", params=params)
        names = body.get("inputs", ["input"])
        if len(names) != len(sources):
            what = f"block '{name}'" if name else "a group"
            self._error("E0307", f"layer '{instance}': {what} takes {len(names)} input(s), got {len(sources)}", self.doc.span(doc_path))
        for input_name, (source, source_span, _) in zip(names, sources):
            self._define(inner.prefix + input_name, source_span)
            self.aliases[inner.prefix + input_name] = source
        body_path = ("blocks", name, "layers") if name else (*doc_path, "layers")
        last = self._expand_layers(body["layers"], body_path, inner, [inner.prefix + names[0]])
        self.aliases[instance] = last
        if "output" in body:
            output_span = self.doc.span(("blocks", name, "output"))
            self.block_outputs.append((instance, inner.prefix + body["output"], output_span, inner.prefix))

    def _kind(self, layer: dict, doc_path: JsonPath, path: str):
        """An OpDef, (block name, block) or (None, group); None after reporting an unknown op."""
        if "layers" in layer:
            return (None, layer)
        op = layer["op"]
        if op in self.registry:
            return self.registry.get(op)
        if op in self.blocks:
            if "activation" in layer:
                self._error(
                    "E0309",
                    f"layer '{path}': 'activation' applies to ops, not to block '{op}'",
                    self.doc.key_span((*doc_path, "activation")),
                    "add an activation layer after it",
                )
            return (op, self.blocks[op])
        known = [*self.registry.names, *self.blocks]
        hint = did_you_mean(op, known) or "ops from plugins need --plugin MODULE or an installed plugin package"
        self._error("E0301", f"layer '{path}': unknown op '{op}'", self.doc.span((*doc_path, "op")), hint)
        return None

    def _define(self, path: str, span: Span) -> None:
        if path in self.defined:
            first = self.defined[path]
            self._error("E0302", f"duplicate id '{path}' (first defined at line {first.line})", span)
            return
        self.defined[path] = span
        if len(self.defined) > MAX_NODES:
            self._error("E0310", f"spec expands to more than {MAX_NODES} layers", span)
            raise _Abort

    def _sources(self, layer: dict, doc_path: JsonPath, scope: _Scope, previous: list[str]) -> list[tuple[str, Span, str]]:
        refs = layer.get("from")
        if refs is None:
            return [(p, self.doc.span(doc_path), scope.prefix) for p in previous]
        refs = [refs] if isinstance(refs, str) else refs
        from_path = (*doc_path, "from")
        return [
            (scope.prefix + ref, self.doc.span((*from_path, i) if isinstance(layer["from"], list) else from_path), scope.prefix)
            for i, ref in enumerate(refs)
        ]

    # -- values ---------------------------------------------------------------------------------

    def _evaluate(self, value: Any, scope: _Scope, span: Span) -> Any:
        """A literal, an evaluated expression, or a Deferred one (shape functions); lists element-wise."""
        if isinstance(value, list):
            return [self._evaluate(item, scope, span) for item in value]
        if not expr.is_expression(value):
            return value
        return self._expression(value, scope, span)

    def _expression(self, text: str, scope: _Scope, span: Span) -> Any:
        try:
            parsed = expr.parse(text)
            if parsed.needs_shapes:
                refs = {ref: scope.prefix + ref for ref in parsed.refs}
                return Deferred(parsed, dict(scope.params), refs, span)
            return expr.evaluate(parsed, scope.params)
        except expr.ExprError as error:
            self._error("E0304", str(error), span)
            return _INVALID

    def _condition(self, layer: dict, doc_path: JsonPath, scope: _Scope) -> bool | Deferred | None:
        if "when" not in layer:
            return None
        when = layer["when"]
        span = self.doc.span((*doc_path, "when"))
        value = when if isinstance(when, bool) else self._expression(when, scope, span)
        if value is _INVALID or isinstance(value, Deferred):
            return None if value is _INVALID else value
        return bool(value) or False

    def _repeat(self, layer: dict, doc_path: JsonPath, scope: _Scope) -> int | None:
        if "repeat" not in layer:
            return None
        span = self.doc.span((*doc_path, "repeat"))
        value = self._evaluate(layer["repeat"], scope, span)
        if isinstance(value, Deferred):
            self._error("E0311", f"'repeat' cannot depend on shapes ({layer['repeat']})", span)
            return 1
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
            if value is not _INVALID:
                self._error("E0311", f"'repeat' must be an integer from 1 to 1000, got {value!r}", span)
            return 1
        return value

    def _per_repetition(self, value: Any, scalar: bool, rep: int, repeat: int | None, key: str, span: Span) -> Any:
        if not scalar or not isinstance(value, list):
            return value
        if repeat is None:
            self._error("E0306", f"'{key}' takes one value; a list gives one value per repetition and needs 'repeat'", span)
            return _INVALID
        if len(value) != repeat:
            self._error("E0306", f"'{key}' has {len(value)} values for {repeat} repetitions", span)
            return _INVALID
        return value[rep]

    def _args(self, layer: dict, doc_path: JsonPath, scope: _Scope, rep: int, repeat: int | None, scalar_of) -> tuple[dict, dict]:
        values, spans = {}, {}
        for key, raw in layer.items():
            if key in LAYER_KEYS:
                continue
            span = spans[key] = self.doc.span((*doc_path, key))
            picked = self._per_repetition(raw, scalar_of(key), rep, repeat, key, span)
            values[key] = self._evaluate(picked, scope, span) if picked is not _INVALID else _INVALID
        return values, spans

    def _add_node(self, op: OpDef, layer, doc_path, scope, name, sources, rep, repeat) -> None:
        values, spans = self._args(layer, doc_path, scope, rep, repeat, lambda key: op.param_index[key].is_scalar)
        args = {}
        for param in op.params:
            value = values.get(param.name, param.default)
            if value is REQUIRED or value is _INVALID:
                continue
            problem = None if isinstance(value, Deferred) else check_value(param, value)
            if problem:
                self._error(
                    "E0311", f"layer '{name}' ({op.name}): '{param.name}' {problem}", spans.get(param.name, self.doc.span(doc_path))
                )
            args[param.name] = value
        low, high = op.arity
        if not low <= len(sources) <= (high or len(sources)):
            want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            self._error("E0307", f"layer '{name}' ({op.name}): takes {want} input(s), got {len(sources)}", self.doc.span(doc_path))
        activation = self._activation(layer, doc_path, scope, name)
        node = Node(name, op.name, args, (), self.doc.span(doc_path), spans, activation, scope.guards)
        self.pending[name] = PendingNode(node, sources)
        if len(self.pending) > MAX_NODES:
            self._error("E0310", f"spec expands to more than {MAX_NODES} layers", node.span)
            raise _Abort

    def _activation(self, layer: dict, doc_path: JsonPath, scope: _Scope, name: str) -> str | None:
        if "activation" not in layer:
            return None
        span = self.doc.span((*doc_path, "activation"))
        value = self._evaluate(layer["activation"], scope, span)
        if value is not _INVALID and value not in self.registry.activations:
            hint = did_you_mean(str(value), self.registry.activations)
            self._error("E0311", f"layer '{name}': unknown activation {value!r}", span, hint)
            return None
        return None if value is _INVALID else value

    def _block_args(self, name: str, block: dict, layer: dict, doc_path: JsonPath, scope: _Scope, rep: int, repeat: int | None) -> dict:
        declared = block.get("params", {})
        types = {key: block_param_type(value) for key, value in declared.items()}
        values, spans = self._args(layer, doc_path, scope, rep, repeat, lambda key: types.get(key) != "list")
        params = dict(scope.params)
        for key, value in values.items():
            if key not in declared:
                hint = did_you_mean(key, declared) or f"block '{name}' takes: {', '.join(declared) or 'no parameters'}"
                self._error(
                    "E0305",
                    f"layer '{scope.prefix}{layer.get('id', '')}': block '{name}' has no parameter '{key}'",
                    self.doc.key_span((*doc_path, key)),
                    hint,
                )
                continue
            problem = None if value is _INVALID or isinstance(value, Deferred) else check_block_value(types[key], value)
            if problem:
                self._error("E0305", f"block '{name}': parameter '{key}' {problem}", spans[key])
            if isinstance(value, Deferred):
                self._error("E0305", f"block '{name}': parameter '{key}' cannot depend on shapes", spans[key])
            params[key] = value
        for key, default in declared.items():
            if key in values:
                continue
            if isinstance(default, str) and default in BLOCK_PARAM_TYPES:
                where = f"layer '{scope.prefix}{layer.get('id', doc_path[-1])}': "
                self._error("E0305", f"{where}block '{name}' needs parameter '{key}' ({default})", self.doc.span(doc_path))
                params[key] = _INVALID
            else:
                params[key] = default
        return params


class _Invalid:
    def __repr__(self) -> str:
        return "<invalid>"


_INVALID: Any = _Invalid()
