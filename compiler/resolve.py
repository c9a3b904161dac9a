"""Resolve: expand blocks, groups, repeats and conditions; substitute parameters; name every node; then
`link` follows the references and orders the graph. What is left open are the values that read
inferred shapes (`Deferred`), which infer answers.

Naming, the one rule set that makes `state_dict` keys come out as a hand-written module's:
- a layer with an `id` is named `prefix + id`; one without is named by its position among the present
  layers of its list (`0`, `1`, …, like `nn.Sequential`); a layer skipped by a condition that does not read
  shapes takes no position;
- a block call or group nests its layers under its name (`layer1.0.conv1`), unless the block is declared
  `inline`: then its layers take names and positions in the caller's list;
- `repeat: N` names its copies `name.0 … name.N-1`; `repeat: {count: N, names: TEMPLATE}` names them by
  the template (`"denselayer{$i + 1}"`), under the layer's id when it has one; `names: flat` gives each
  copy the next position of the enclosing list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .declarations import check_blocks, inputs
from .diagnostics import Diagnostic, Span, did_you_mean, has_errors, sort_key
from .ir import Deferred, Kind, Node, Ref, Scope
from .link import Expansion, PendingNode, Source, link
from .load import Document, JsonPath
from .names import reserved
from .ops import OpDef, Registry, plugin_failure
from .params import ModelValues, model_values
from .resolve_values import INVALID, Values
from .values import integral

MAX_NODES = 100_000
MAX_BLOCK_DEPTH = 32


class _Abort(Exception):
    """Stops expansion when going on could only produce noise (a size limit or a recursive block)."""


@dataclass
class _Positions:
    """The next positional name of a layer list, shared by the inline expansions spliced into it."""

    next: int = 0

    def take(self) -> str:
        self.next += 1
        return str(self.next - 1)


@dataclass(frozen=True)
class _Scope:
    """Where a layer list is expanded: the prefix of node names, the prefix under which its local names
    are looked up (the same, except inside an inline block), parameters, guards and positions."""

    prefix: str
    lookup: str
    params: Mapping[str, Any]
    positions: _Positions
    guards: tuple[Deferred, ...] = ()
    blocks: tuple[str, ...] = ()
    scopes: tuple[Scope, ...] = ()
    numbered: tuple[tuple[str, int], ...] = ()
    """The positions the enclosing layers are named by: (the list's prefix, the position)."""

    def at_position(self, position: str) -> _Scope:
        """This scope inside the layer named by `position` of its list."""
        return dataclasses.replace(self, numbered=(*self.numbered, (self.prefix, int(position))))


@dataclass(frozen=True)
class _Repeat:
    count: int
    names: str | None  # None: name.0 … name.N-1; "flat"; or a template
    chain: bool = True  # each copy reads the previous one; else each reads the layer's `from`


def resolve(document: Document, registry: Registry, overrides: Mapping[str, Any] | None = None):
    """Expand and link the spec; returns the graph (None if there are errors) and all diagnostics.

    Raises UsageError for overrides that name no model parameter or size, or have the wrong type."""
    values, diagnostics = model_values(document, overrides or {})
    resolver = _Resolver(document, registry, values)
    resolver.diagnostics += diagnostics
    return resolver.run()


class _Resolver:
    def __init__(self, document: Document, registry: Registry, values: ModelValues):
        self.doc = document
        self.registry = registry
        self.values_of_model = values
        self.model_params = values.params
        self.blocks: dict[str, Any] = document.data.get("blocks", {})
        self.diagnostics: list[Diagnostic] = []
        self.values = Values(document, self.diagnostics)
        self.x = Expansion(document)
        self.serial = 0

    def run(self):
        self.diagnostics += check_blocks(self.doc)
        types, spans, problems = inputs(self.doc, self.values_of_model)
        self.diagnostics += problems
        for name, span in spans.items():
            self._define(name, span)
        self.x.inputs.update(types)
        self.x.input_spans.update(spans)
        root = _Scope("", "", self.model_params, _Positions())
        first = next(iter(self.x.inputs))
        try:
            last = self._expand_layers(self.doc.data["layers"], ("layers",), root, [Source(first, self.doc.span(("inputs",)), "")])
        except _Abort:
            return None, sorted(set(self.diagnostics), key=sort_key)
        outputs = self.doc.data.get("outputs")
        if outputs is not None and not isinstance(outputs, list):
            refs = [Source(str(outputs), self.doc.span(("outputs",)), "")]
        else:
            refs = [Source(str(ref), self.doc.span(("outputs", i)), "") for i, ref in enumerate(outputs)] if outputs else last
        graph, linked = link(self.x, self.doc.data.get("name", "model"), refs, has_errors(self.diagnostics))
        return graph, sorted(set(self.diagnostics + linked), key=sort_key)

    def _error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    # -- expansion -------------------------------------------------------------------------------

    def _expand_layers(self, layers: list, doc_path: JsonPath, scope: _Scope, previous: list[Source]) -> list[Source]:
        """Expand a layer list; each layer consumes the previous one by default. Returns the last output."""
        for index, layer in enumerate(layers):
            previous = self._expand_layer(layer, (*doc_path, index), scope, previous)
        return previous

    def _expand_layer(self, layer: dict, doc_path: JsonPath, scope: _Scope, previous: list[Source]) -> list[Source]:
        local = self._local_id(layer, doc_path, scope)
        sources = previous if "repeat" in layer and _templated(layer.get("from")) else self._sources(layer, doc_path, scope, previous)
        guard = self.values.condition(layer, doc_path, scope.params, scope.lookup)
        if guard is False:
            return self._skip(layer, local, doc_path, scope, sources, previous)
        kind = self._kind(layer, doc_path, scope.prefix + (local or str(scope.positions.next)))
        repeat = self._repeat(layer, doc_path, scope)
        if isinstance(guard, Deferred):  # its layers keep their positions even when it is skipped
            guard = dataclasses.replace(guard, gap=(scope.prefix, scope.positions.next))
        if repeat is None and _is_inline(kind):
            return self._expand_inline(kind, layer, doc_path, scope, local, sources, guard, None)
        flat = repeat is not None and repeat.names == "flat"
        position = None if flat else scope.positions.take()
        if isinstance(guard, Deferred):
            scope = dataclasses.replace(scope, guards=(*scope.guards, guard))
        if local is None and position is not None and (repeat is None or repeat.names is None):  # named by its position
            scope = scope.at_position(position)
        if repeat is None:
            name = scope.prefix + (local if local is not None else position)
            if kind is None:
                self._define(name, self.doc.span(doc_path))
                return self._alias_to(name, sources)
            output = self._expand_instance(kind, layer, doc_path, scope, name, sources, None, self._id_span(layer, doc_path))
            self._lookup_alias(scope, local, name, doc_path)
            return [output]
        return self._expand_repeat(
            kind, layer, doc_path, scope, local if local is not None else position, local is not None, sources, repeat
        )

    def _expand_repeat(self, kind, layer, doc_path, scope: _Scope, key: str | None, has_id: bool, sources, repeat: _Repeat) -> list[Source]:
        """The copies of a repeated layer. The layer's name (its id, or its position unless its copies
        take positions themselves) is the last copy, and `name.*` every copy."""
        base = scope.prefix + key if key is not None else ""
        if key is not None:
            self._define(base, self._id_span(layer, doc_path))
        names = self._copy_names(repeat, base, has_id, scope, doc_path)
        if kind is None or names is None:
            return self._alias_to(base, sources)
        copies: list[Source] = []
        spliced = repeat.names == "flat" and _is_inline(kind)
        for rep, name in enumerate(names):
            if not repeat.chain:
                copy_sources = self._sources(layer, doc_path, scope, sources, (rep, repeat.count))
            else:
                copy_sources = [copies[-1]] if copies else sources
            if spliced:
                copies.append(self._expand_inline(kind, layer, doc_path, scope, None, copy_sources, None, (rep, repeat.count))[0])
                continue
            copy_scope = scope if name is not None else scope.at_position(scope.positions.take())
            name = name or copy_scope.prefix + str(copy_scope.numbered[-1][1])
            copies.append(self._expand_instance(kind, layer, doc_path, copy_scope, name, copy_sources, (rep, repeat.count)))
        if key is not None:
            self.x.repeats[scope.lookup + key] = [c.path for c in copies]
            self._alias(base, copies[-1].path)
            self._lookup_alias(scope, key if has_id else None, base, doc_path)
        return [copies[-1]]

    def _lookup_alias(self, scope: _Scope, local: str | None, name: str, doc_path: JsonPath) -> None:
        """Inside an inline block, a layer's local name is looked up in the block's own namespace."""
        if local is not None and scope.lookup != scope.prefix:
            self.x.lookups[scope.lookup + local] = self.doc.span(doc_path)
            self._alias(scope.lookup + local, name)

    def _skip(
        self, layer: dict, local: str | None, doc_path: JsonPath, scope: _Scope, sources: list[Source], previous: list[Source]
    ) -> list[Source]:
        """A layer whose condition is false: it is its first input, and takes no position. A learnable
        tensor has no input: the flow passes over it, and a reference to it is an error (E0314)."""
        op = self.registry.get(layer.get("op", ""))
        tensor = op is not None and op.makes_tensor
        passed = previous[:1] if tensor else sources[:1] or previous[:1]
        if local is None:
            return passed
        name = scope.prefix + local
        self._define(name, self.doc.span((*doc_path, "id")))
        self._lookup_alias(scope, local, name, doc_path)
        self.x.skipped.add(name)
        if tensor:
            self.x.absent[name] = self.doc.span((*doc_path, "when"))
            return passed
        if passed:
            self._alias(name, passed[0].path)
        return [Source(name, self.doc.span(doc_path), scope.lookup)]

    def _alias_to(self, path: str, sources: list[Source]) -> list[Source]:
        if sources:
            self._alias(path, sources[0].path)
        return [Source(path, sources[0].span if sources else Span(self.doc.path, 1, 1), "")]

    def _copy_names(self, repeat: _Repeat, base: str, has_id: bool, scope: _Scope, doc_path: JsonPath) -> list[str | None] | None:
        """Each copy's name (None: the next flat position, taken as it is expanded); None after reporting a
        template that gives a copy no valid name, or two copies one name (nothing is expanded then, so
        no cascade of duplicates follows)."""
        if repeat.names is None:
            return [f"{base}.{rep}" for rep in range(repeat.count)]
        if repeat.names == "flat":
            return [None] * repeat.count
        span = self.doc.span((*doc_path, "repeat", "names"))
        names: list[str | None] = []
        for rep in range(repeat.count):
            reported = len(self.diagnostics)
            name = self.values.templated_name(repeat.names, {**scope.params, "i": rep}, span, copy=rep)
            if len(self.diagnostics) > reported:
                return None
            full = f"{base}.{name}" if has_id else scope.prefix + name
            if full in names:
                message = f"repeat names '{repeat.names}' gives copies {names.index(full)} and {rep} the same name '{name}'"
                self._error("E0311", message, span, "make each copy's name differ, for instance with its index: '{$i}'")
                return None
            names.append(full)
        return names

    def _expand_inline(self, kind, layer, doc_path, scope: _Scope, local: str | None, sources, guard, rep) -> list[Source]:
        """A call of an inline block: its layers take names and positions in the caller's list; its
        local names are looked up in a namespace of their own."""
        self.serial += 1
        lookup = f"{scope.lookup}#{self.serial}."
        guards = scope.guards + ((guard,) if isinstance(guard, Deferred) else ())
        inner = dataclasses.replace(scope, lookup=lookup, guards=guards)
        last = self._expand_body(kind, layer, doc_path, scope, inner, sources, rep)
        if local is not None:
            self._define(scope.prefix + local, self.doc.span((*doc_path, "id")))
            self._alias(scope.prefix + local, last.path)
            self._lookup_alias(scope, local, scope.prefix + local, doc_path)
        return [last]

    def _local_id(self, layer: dict, doc_path: JsonPath, scope: _Scope) -> str | None:
        """The layer's id; a template (`denseblock{$s + 1}`) evaluated with the parameters in scope."""
        local = layer.get("id")
        if local is None or "{" not in local:
            return local
        return self.values.templated_name(local, scope.params, self.doc.span((*doc_path, "id")))

    def _id_span(self, layer: dict, doc_path: JsonPath) -> Span:
        return self.doc.span((*doc_path, "id")) if "id" in layer else self.doc.span(doc_path)

    def _expand_instance(
        self, kind, layer, doc_path, scope: _Scope, name: str, sources: list[Source], rep, span: Span | None = None
    ) -> Source:
        """One op node, tensor, block call or group at `name`; returns its output."""
        self._define(name, span or self.doc.span(doc_path))
        if isinstance(kind, OpDef):
            self._add_node(kind, layer, doc_path, scope, name, sources, rep)
            return Source(name, self.doc.span(doc_path), "")
        block, _ = kind
        inner = dataclasses.replace(
            scope, prefix=name + ".", lookup=name + ".", positions=_Positions(), scopes=(*scope.scopes, Scope(name, block))
        )
        last = self._expand_body(kind, layer, doc_path, scope, inner, sources, rep)
        self._alias(name, last.path)
        return Source(name, self.doc.span(doc_path), "")

    def _expand_body(self, kind, layer, doc_path, scope: _Scope, inner: _Scope, sources: list[Source], rep) -> Source:
        """The layers of a block or group, in `inner`, fed by `sources`."""
        block, body = kind
        if block is not None:
            if block in scope.blocks or len(scope.blocks) >= MAX_BLOCK_DEPTH:
                self._error("E0309", f"block '{block}' calls itself (via {' → '.join(scope.blocks)})", self.doc.span(doc_path))
                raise _Abort
            params = self.values.block_args(
                block, body, layer, doc_path, scope.params, self.model_params, (scope.lookup, inner.lookup), rep
            )
            inner = dataclasses.replace(inner, params=params, blocks=(*scope.blocks, block))
        names = body.get("inputs", ["input"])
        if len(names) != len(sources):
            what = f"block '{block}'" if block else "a group"
            message = f"layer '{inner.prefix.rstrip('.') or layer.get('id', '')}': {what} takes {len(names)} input(s), got {len(sources)}"
            chained = rep is not None and rep[0] > 0 and len(sources) == 1
            hint = "a chained repeat feeds each copy only the previous copy: give copies inputs with a `from` template, or `chain: false`"
            self._error("E0307", message, self.doc.span(doc_path), hint if chained else None)
            if sources:  # its layers would only report references to the missing inputs
                return sources[0]
        for input_name, source in zip(names, sources):
            self._define(inner.lookup + input_name, source.span)
            self._alias(inner.lookup + input_name, source.path)
        body_path = ("blocks", block, "layers") if block else (*doc_path, "layers")
        entry = [Source(inner.lookup + names[0], self.doc.span(doc_path), inner.lookup)]
        last = self._expand_layers(body["layers"], body_path, inner, entry)[0]
        if "output" in body:
            output_span = self.doc.span(("blocks", block, "output") if block else (*doc_path, "output"))
            output = Source(inner.lookup + str(body["output"]), output_span, inner.lookup)
            self.x.block_outputs.append(output)
            return output
        return last

    def _kind(self, layer: dict, doc_path: JsonPath, path: str):
        """An OpDef, (block name, block) or (None, group); None after reporting an unknown op."""
        if "layers" in layer:
            return (None, layer)
        op = layer["op"]
        if op in self.registry:
            return self.registry.get(op)
        if op in self.blocks:
            if "activation" in layer:
                hint = "add an activation layer after it"
                self._error(
                    "E0309",
                    f"layer '{path}': 'activation' applies to ops, not to block '{op}'",
                    self.doc.key_span((*doc_path, "activation")),
                    hint,
                )
            return (op, self.blocks[op])
        known = [*self.registry.names, *self.blocks]
        hint = did_you_mean(op, known) or "ops from plugins need --plugin MODULE or an installed plugin package"
        self._error("E0301", f"layer '{path}': unknown op '{op}'", self.doc.span((*doc_path, "op")), hint)
        return None

    def _define(self, path: str, span: Span) -> None:
        why = reserved(path.rpartition(".")[2])
        if why:
            self._error("E0312", f"'{path.rpartition('.')[2]}' cannot name a layer or input: it is {why}", span, "rename it")
        if path in self.x.defined:
            first = self.x.defined[path]
            self._error("E0302", f"duplicate id '{path}' (first defined at line {first.line})", span)
        else:
            self.x.defined[path] = span
        if len(self.x.defined) > MAX_NODES:
            self._error("E0310", f"spec expands to more than {MAX_NODES} layers", span)
            raise _Abort

    def _alias(self, path: str, target: str) -> None:
        if path != target:
            self.x.aliases[path] = target

    def _sources(self, layer: dict, doc_path: JsonPath, scope: _Scope, previous: list[Source], rep=None) -> list[Source]:
        """The layer's inputs as written (references may be templates of the copy index: `cv2.{$i}`)."""
        refs = layer.get("from")
        if refs is None:
            return previous
        single = not isinstance(refs, list)
        refs = [refs] if single else refs
        from_path = (*doc_path, "from")
        params = scope.params if rep is None else {**scope.params, "i": rep[0]}
        sources = []
        for i, ref in enumerate(refs):
            span = self.doc.span(from_path if single else (*from_path, i))
            text = self.values.template(ref, params, span) if isinstance(ref, str) and "{" in ref else str(ref)
            sources.append(Source(scope.lookup + text, span, scope.lookup))
        return sources

    def _repeat(self, layer: dict, doc_path: JsonPath, scope: _Scope) -> _Repeat | None:
        if "repeat" not in layer:
            return None
        spec = layer["repeat"]
        count, names = (spec.get("count"), spec.get("names")) if isinstance(spec, dict) else (spec, None)
        chain = (
            spec.get("chain", True) and not _templated(layer.get("from")) if isinstance(spec, dict) else not _templated(layer.get("from"))
        )
        where = (*doc_path, "repeat", "count") if isinstance(spec, dict) else (*doc_path, "repeat")
        value = integral({"type": "integer"}, self.values.resolved(count, scope.params, "'repeat'", self.doc.span(where)))
        if value is INVALID:
            return _Repeat(1, names, chain)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
            self._error("E0311", f"'repeat' must be an integer from 1 to 1000, got {value!r}", self.doc.span(where))
            return _Repeat(1, names, chain)
        return _Repeat(value, names, chain)

    # -- nodes ----------------------------------------------------------------------------------

    def _add_node(self, op: OpDef, layer: dict, doc_path: JsonPath, scope: _Scope, name: str, sources: list[Source], rep) -> None:
        args, spans = self.values.op_args(op, layer, doc_path, scope.params, scope.lookup, name, rep)
        kind = Kind.TENSOR if op.makes_tensor else Kind.CALL
        if kind is Kind.TENSOR:
            if "from" in layer:
                self._error(
                    "E0307", f"layer '{name}' ({op.name}): a learnable tensor takes no input", self.doc.key_span((*doc_path, "from"))
                )
            sources = []
        elif not any(s.path.endswith(".*") for s in sources):
            self._check_arity(op, args, name, len(sources), doc_path)
        span, order = self.doc.span(doc_path), len(self.x.pending)
        node = Node(kind, name, span, op.name, args, spans, (), scope.guards, scope.scopes, order, numbered=scope.numbered)
        shares = {
            attribute: Source(scope.lookup + str(ref), self.doc.span((*doc_path, "share", attribute)), scope.lookup)
            for attribute, ref in layer.get("share", {}).items()
        }
        self.x.pending[name] = PendingNode(node, list(sources), shares)
        self._activation(layer, doc_path, scope, name, node)
        if len(self.x.pending) > MAX_NODES:
            self._error("E0310", f"spec expands to more than {MAX_NODES} layers", node.span)
            raise _Abort

    def _check_arity(self, op: OpDef, args: dict, name: str, count: int, doc_path: JsonPath) -> None:
        try:
            low, high = op.arity_for(args)
        except Exception as error:
            failure = plugin_failure(op, error, " to count its inputs")
            if failure is None:
                raise
            self._error("E0406", f"layer '{name}': {failure}", self.doc.span(doc_path), "this is a bug in the plugin that defines the op")
            return
        if not low <= count <= (high or count):
            want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            self._error("E0307", f"layer '{name}' ({op.name}): takes {want} input(s), got {count}", self.doc.span(doc_path))

    def _activation(self, layer: dict, doc_path: JsonPath, scope: _Scope, name: str, node: Node) -> None:
        """`activation: relu` is sugar for a relu node after the layer, named `NAME_relu`; the layer's
        name then refers to the activation's output."""
        if "activation" not in layer:
            return
        span = self.doc.span((*doc_path, "activation"))
        value = self.values.resolved(layer["activation"], scope.params, "'activation'", span)
        if value is INVALID or value is None or value == "none":
            return
        if value not in self.registry.activations:
            self._error("E0311", f"layer '{name}': unknown activation {value!r}", span, did_you_mean(str(value), self.registry.activations))
            return
        activation = self.registry.get(value)
        act_name = f"{name}_{value}"
        self._define(act_name, span)
        args = {p.name: p.default for p in activation.params}
        act = Node(Kind.CALL, act_name, span, value, args, {}, (), node.guards, node.scopes, len(self.x.pending), numbered=node.numbered)
        self.x.pending[act_name] = PendingNode(act, [Ref(name)])
        self.x.aliases[name] = act_name


def _templated(refs: Any) -> bool:
    """True if a `from` holds a reference template such as `cv2.{$i}`."""
    return any(isinstance(ref, str) and "{" in ref for ref in (refs if isinstance(refs, list) else [refs]))


def _is_inline(kind: Any) -> bool:
    """True for a block declared `inline: true` (not for an op or a group)."""
    return isinstance(kind, tuple) and kind[0] is not None and bool(kind[1].get("inline", False))
