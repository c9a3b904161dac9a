"""Validate: check a loaded document against the JSON Schema; every violation becomes a located diagnostic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema

from .diagnostics import Diagnostic, did_you_mean, sort_key
from .load import Document, JsonPath
from .ops import BUILTIN, Registry
from .ops.core import MAX_ITEMS, MAX_SIZE
from .schema import SPEC_VERSION, generate

Validator = jsonschema.Draft202012Validator
"""Plain Draft 2020-12, as editors and other validators read the schema: 3.0 is an integer there, and
nncompile hands it to torch as the int 3 (`values.integral`)."""


@dataclass(frozen=True)
class _Validators:
    skeleton: jsonschema.protocols.Validator
    """The document, each layer replaced by a placeholder."""
    layer: jsonschema.protocols.Validator
    """One layer's common keys, in a spec with blocks."""
    builtin_layer: jsonschema.protocols.Validator
    """One layer's common keys, in a spec without blocks (its ops must be builtin or plugin ops)."""
    per_op: dict[str, jsonschema.protocols.Validator]


@lru_cache(maxsize=8)
def _validators(registry: Registry) -> _Validators:
    """The validators, built once per registry."""
    skeleton = generate(registry, dispatch_ops=False)  # layers' op-specific keys are left to the per-op validators
    defs = skeleton["$defs"]
    per_op = {op.name: Validator({"$ref": f"#/$defs/op.{op.name}", "$defs": defs}) for op in registry}
    builtin = {"allOf": [{"$ref": "#/$defs/layer"}, defs["builtin_layers"]["items"]], "$defs": defs}
    return _Validators(Validator(skeleton), Validator({"$ref": "#/$defs/layer", "$defs": defs}), Validator(builtin), per_op)


_PLACEHOLDER = {"op": "identity"}
"""Stands for every layer while the document's skeleton is validated (layers are validated alone)."""
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def validate(document: Document, registry: Registry) -> list[Diagnostic]:
    """All schema violations of `document`, in source order (the shipped schema's verdict).

    Each layer is validated on its own, and a layer with the same keys and values as one already
    validated (its `id` aside) reuses that verdict: big specs repeat their layers."""
    validators = _validators(registry)
    data = document.data
    clashing = _blocks_named_like_ops(document, registry)
    at_clashes = {(d.span.line, d.span.col) for d in clashing.values()}  # the schema's verdict there is E0309's
    diagnostics = [
        d
        for error in validators.skeleton.iter_errors(_thinned(data))
        for d in _diagnose(error, (), document)
        if (d.span.line, d.span.col) not in at_clashes
    ]
    diagnostics += clashing.values()
    builtin_only = isinstance(data, dict) and "blocks" not in data
    memo: dict[Any, list[tuple[JsonPath, jsonschema.ValidationError]]] = {}
    for path, layer in _listed_layers(data):
        if isinstance(layer, dict) and isinstance(layer.get("op"), str) and layer["op"] in clashing:
            continue  # which of the two it means is unknown: its keys cannot be judged
        if not isinstance(layer, dict):
            common = validators.builtin_layer if builtin_only else validators.layer
            diagnostics += [d for error in common.iter_errors(layer) for d in _diagnose(error, path, document)]
            continue
        layer_id = layer.get("id")
        if layer_id is None or (isinstance(layer_id, str) and _IDENTIFIER.fullmatch(layer_id)):
            key = frozen({k: v for k, v in layer.items() if k != "id"})
            errors = memo.get(key)
            if errors is None:
                errors = memo[key] = _layer_errors(layer, validators, builtin_only)
        else:
            errors = _layer_errors(layer, validators, builtin_only)
        diagnostics += [d for inner, error in errors for d in _diagnose(error, (*path, *inner), document)]
    return sorted(set(diagnostics), key=sort_key)


def _blocks_named_like_ops(document: Document, registry: Registry) -> dict[str, Diagnostic]:
    """E0309 for each block named like an op, by name."""
    blocks = document.data.get("blocks") if isinstance(document.data, dict) else None
    if not isinstance(blocks, dict):
        return {}
    return {
        name: Diagnostic("E0309", f"block '{name}' has the name of an op", document.key_span(("blocks", name)), "rename the block")
        for name in blocks
        if isinstance(name, str) and name in registry
    }


def _layer_errors(layer: dict, validators: _Validators, builtin_only: bool) -> list[tuple[JsonPath, jsonschema.ValidationError]]:
    """One layer's violations (a group's inner layers included), each with the path within the layer."""
    common = validators.builtin_layer if builtin_only else validators.layer
    found: list[tuple[JsonPath, jsonschema.ValidationError]] = [((), error) for error in common.iter_errors(layer)]
    for inner_path, inner in [((), layer), *_layers(layer, ())]:
        op = inner.get("op")
        validator = validators.per_op.get(op) if isinstance(op, str) else None
        if validator is not None and "layers" not in inner:
            found += [(inner_path, error) for error in validator.iter_errors(inner)]
    return found


def frozen(value: Any) -> Any:
    """A hashable stand-in for plain data that tells 1, 1.0 and true apart."""
    if isinstance(value, dict):
        return ("dict", tuple((key, frozen(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", tuple(frozen(item) for item in value))
    return (type(value).__name__, value)


def _listed_layers(data: Any) -> list[tuple[JsonPath, Any]]:
    """The items of the top-level layer list and of every block's, with their paths."""
    if not isinstance(data, dict):
        return []
    owners = [((), data)]
    if isinstance(data.get("blocks"), dict):
        owners += [(("blocks", name), block) for name, block in data["blocks"].items() if isinstance(block, dict)]
    found = []
    for prefix, owner in owners:
        layers = owner.get("layers")
        found += [((*prefix, "layers", index), layer) for index, layer in enumerate(layers if isinstance(layers, list) else [])]
    return found


def _thinned(data: Any) -> Any:
    """`data` with each list `_listed_layers` reads replaced by one placeholder layer (or left empty)."""
    if not isinstance(data, dict):
        return data
    thin = dict(data)

    def replaced(owner: dict) -> dict:
        layers = owner.get("layers")
        if not isinstance(layers, list):
            return owner
        return {**owner, "layers": [_PLACEHOLDER] if layers else []}

    thin = replaced(thin)
    if isinstance(data.get("blocks"), dict):
        thin["blocks"] = {name: replaced(block) if isinstance(block, dict) else block for name, block in data["blocks"].items()}
    return thin


@lru_cache(maxsize=1)
def _section_validator(name: str) -> jsonschema.protocols.Validator:
    defs = generate(BUILTIN)["$defs"]
    return Validator({"$ref": f"#/$defs/{name}", "$defs": defs})


def validate_section(document: Document, name: str) -> list[Diagnostic]:
    """Schema violations of one top-level section (`train`) of `document`, which holds only that section."""
    errors = _section_validator(name).iter_errors(document.data[name])
    return sorted({d for error in errors for d in _diagnose(error, (name,), document)}, key=sort_key)


def _layers(node: Any, path: JsonPath) -> list[tuple[JsonPath, dict]]:
    """Every layer mapping in the document (top level, blocks, groups) with its path."""
    found = []
    if not isinstance(node, dict):
        return found
    blocks = node.get("blocks") if path == () else None
    containers = [(("blocks", name), block) for name, block in blocks.items()] if isinstance(blocks, dict) else []
    for prefix, owner in [((), node), *containers]:
        layers = owner.get("layers") if isinstance(owner, dict) else None
        for index, layer in enumerate(layers if isinstance(layers, list) else []):
            if isinstance(layer, dict):
                layer_path = (*path, *prefix, "layers", index)
                found.append((layer_path, layer))
                found += _layers(layer, layer_path)
    return found


def describe(schema: Any) -> str:
    """A short human description of what a (sub)schema accepts."""
    if schema is True:
        return "any value"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        names = {
            "expression": "a $expression",
            "reference": "a layer reference",
            "identifier": "a name",
            "shape": "a shape (a list of sizes ≥ 1)",
            "input": "a shape or {shape, dtype}",
            "layers": "a list of layers",
            "train": "a train section",
        }
        return names.get(name, name)
    if "title" in schema:
        return schema["title"]
    if "anyOf" in schema:
        return " or ".join(dict.fromkeys(describe(s) for s in schema["anyOf"]))
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_article(k) for k in kind)
    if kind == "array":
        items = describe(schema.get("items", True))
        count = schema.get("minItems")
        if count and count == schema.get("maxItems"):
            return f"a list of {count} ({items})"
        if schema.get("maxItems") == MAX_ITEMS:
            return f"a list of at most {MAX_ITEMS} ({items})"
        return f"a list of ({items})"
    bounds = [f"{sign} {schema[key]}" for key, sign in _BOUNDS.items() if key in schema and schema[key] != MAX_SIZE]
    if len(bounds) == 2 and "minimum" in schema and "maximum" in schema:
        return f"{_article(kind)} from {schema['minimum']} to {schema['maximum']}"
    if bounds:
        return f"{_article(kind)} {' and '.join(bounds)}"
    return _article(kind) if kind else "a value"


_BOUNDS = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}


def _article(kind: str) -> str:
    return {
        "integer": "an integer",
        "number": "a number",
        "boolean": "true/false",
        "string": "a string",
        "array": "a list",
        "object": "a mapping",
        "null": "null",
    }.get(kind, kind)


def _diagnose(error: jsonschema.ValidationError, prefix_path: JsonPath, document: Document) -> list[Diagnostic]:
    path: JsonPath = (*prefix_path, *error.absolute_path)
    kind = error.validator
    prefix = _context((*path, "") if kind in ("additionalProperties", "required") else path, document.data)
    if kind == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        return [
            Diagnostic(
                "E0201",
                f"{prefix}unknown key '{key}'",
                document.key_span((*path, key)),
                _unknown_key_hint(key, allowed),
            )
            for key in error.instance
            if key not in error.schema.get("properties", {})
        ]
    if kind == "required":
        missing = error.message.split("'")[1]
        return [Diagnostic("E0202", f"{prefix}missing required key '{missing}'", document.span(path))]
    if kind == "anyOf" and error.context and isinstance(error.instance, dict) and "type" in error.instance:
        # a discriminated union ({type: constant, value: …}): report the alternative the type names
        chosen = [e for e in error.context if _type_const(error.schema["anyOf"][e.relative_schema_path[0]]) == error.instance["type"]]
        if chosen:
            return _diagnose(max(chosen, key=lambda e: len(e.absolute_path)), prefix_path, document)
    if kind == "anyOf" and error.context:
        # The alternative whose type matched failed for a real reason (a bound, an enum, a nested
        # key): report that one. If every alternative failed on type, describe them all.
        wrong_type = {e.relative_schema_path[0] for e in error.context if list(e.relative_schema_path)[1:] == ["type"]}
        specific = [
            e
            for index, e in _leaves(error)
            if e.validator not in ("type", "pattern") and index not in wrong_type and not _enum_of_other_type(e)
        ]
        if specific:
            return _diagnose(max(specific, key=lambda e: len(e.absolute_path)), prefix_path, document)
    span = document.span(path)
    name = f"'{path[-1]}'" if path and isinstance(path[-1], str) else "value"
    if path == () and kind == "type":
        message = f"a spec is a mapping with the keys nncompile, inputs and layers; got {_show(error.instance)}"
        return [Diagnostic("E0203", message, span)]
    if kind in ("minItems", "minProperties"):
        what = "entry" if kind == "minItems" else "key"
        return [Diagnostic("E0203", f"{prefix}{name} needs at least {error.validator_value} {what}(s)", span)]
    if kind in ("maximum", "minimum"):
        bound = "at most" if kind == "maximum" else "at least"
        return [Diagnostic("E0203", f"{prefix}{name} must be {bound} {error.validator_value}, got {_show(error.instance)}", span)]
    if kind in ("exclusiveMaximum", "exclusiveMinimum"):
        bound = "below" if kind == "exclusiveMaximum" else "above"
        return [Diagnostic("E0203", f"{prefix}{name} must be {bound} {error.validator_value}, got {_show(error.instance)}", span)]
    if kind == "uniqueItems":
        return [Diagnostic("E0203", f"{prefix}{name} lists a value twice", span)]
    if kind == "const" and path == ("nncompile",):
        message = f"unsupported spec version {error.instance!r}; this nncompile reads version {SPEC_VERSION}"
        return [Diagnostic("E0203", message, span, f"write 'nncompile: {SPEC_VERSION}'")]
    layer_op = kind == "enum" and path[-1:] == ("op",) and "layers" in path and path[0] != "train"
    if layer_op and not isinstance(error.instance, str):
        return []  # the layer's own schema reports the wrong type
    if layer_op and isinstance(error.instance, str):
        hint = did_you_mean(error.instance, error.validator_value) or "ops from plugins need --plugin MODULE or an installed plugin package"
        layer = prefix.split(" (")[0].removeprefix("layer ").rstrip(": ")
        return [Diagnostic("E0301", f"layer {layer}: unknown op '{error.instance}'", span, hint)]
    if kind == "enum":
        hint = did_you_mean(str(error.instance), [str(v) for v in error.validator_value])
        return [Diagnostic("E0203", f"{prefix}{name} must be {describe(error.schema)}, got {error.instance!r}", span, hint)]
    if kind is False or error.schema is False:
        return [Diagnostic("E0201", f"{prefix}{name} is not allowed here", span)]
    if kind == "pattern" and error.schema.get("pattern", "").startswith(("^[A-Za-z_]", "^(?:[A-Za-z_]")):
        message = f"{prefix}{error.instance!r} is not a valid name: use letters, digits and '_', not starting with a digit"
        return [Diagnostic("E0203", message, span)]
    message = f"{prefix}{name} must be {describe(error.schema)}, got {_show(error.instance)}"
    hint = did_you_mean(error.instance, _enum_values(error.schema)) if isinstance(error.instance, str) else None
    if isinstance(error.instance, str) and "$" in error.instance.strip()[1:] and not error.instance.strip().startswith("$"):
        hint = f"an expression starts with '$': write '${error.instance.strip()}'"
    if error.instance is None and path and isinstance(path[-1], str) and _EXPRESSION_TAIL.search(path[-1]):
        hint = _CUT  # `{when: $f($a, 8) != $b}` read as a key `8) != $b` without a value
    return [Diagnostic("E0203", message, span, hint)]


def _enum_of_other_type(error: jsonschema.ValidationError) -> bool:
    """An enum of strings failing on a list is a wrong type, not a wrong choice."""
    return error.validator == "enum" and not any(type(value) is type(error.instance) for value in error.validator_value)


def _type_const(schema: Any) -> Any:
    return schema.get("properties", {}).get("type", {}).get("const") if isinstance(schema, dict) else None


_CUT = "inside {…}, a comma ends the value: quote an expression that holds one, as in out: '$max($w, 8)'"
_EXPRESSION_TAIL = re.compile(r"[)\]]")
"""What the rest of an expression cut at a comma inside a call or list holds (`8) != $cin`)."""


def _unknown_key_hint(key: str, allowed: list[str]) -> str | None:
    if _EXPRESSION_TAIL.search(key):
        return _CUT
    return did_you_mean(key, allowed) or (f"allowed keys: {', '.join(allowed)}" if allowed else None)


def _enum_values(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return []
    values = [str(v) for v in schema.get("enum", ())]
    return values + [v for alt in schema.get("anyOf", ()) for v in _enum_values(alt)]


def _leaves(error: jsonschema.ValidationError) -> list[tuple[int, jsonschema.ValidationError]]:
    """The errors inside (nested) anyOf alternatives, each with the index of its top alternative."""
    return [
        (e.relative_schema_path[0], leaf) for e in error.context for leaf in ([x for _, x in _leaves(e)] if e.validator == "anyOf" else [e])
    ]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _context(path: JsonPath, data: Any) -> str:
    """'layer 'conv2' (conv2d): ' for a path inside a layer ('layer #1' for an unnamed first layer, counted
    as a reader counts), 'train.optimizer: ' inside the train section, else ''."""
    if path[:1] == ("train",) and len(path) > 2:  # a key inside a train subsection
        return ".".join(str(key) for key in path[:-1]) + ": "
    layer, layer_index = None, None
    node = data
    for i, key in enumerate(path):
        if isinstance(node, (dict, list)) and (key in node if isinstance(node, dict) else key < len(node)):
            node = node[key]
        else:
            break
        if isinstance(key, int) and i > 0 and path[i - 1] == "layers" and isinstance(node, dict):
            layer, layer_index = node, key
    if layer is None:
        return ""
    name = f"'{layer['id']}'" if isinstance(layer.get("id"), str) else f"#{layer_index + 1}"
    op = layer.get("op")
    return f"layer {name} ({op}): " if isinstance(op, str) else f"layer {name}: "
