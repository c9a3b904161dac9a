"""The JSON Schema (Draft 2020-12) of the spec language, generated from the op registry.

The copy shipped in the package (`nncompile.schema.json`) is this function's output for the
builtin ops; a test regenerates it and compares, so the two never disagree.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from .anchors import anchored
from .budgets import SCHEMA as BUDGETS
from .ops import Registry
from .ops.core import MAX_SIZE
from .train_schema import train_schema

SCHEMA_ID = "https://nncompile.dev/schema/v1.json"
SHIPPED_SCHEMA = "nncompile.schema.json"
SPEC_VERSION = 1
BLOCK_PARAM_TYPES = ("int", "float", "bool", "str", "list")
INPUT_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool")
SIZE_KEYS = ("min", "max", "multiple_of", "default")
LAYER_KEYS = ("id", "op", "from", "when", "repeat", "activation", "share", "layers")
MAX_REPEAT = 1000

_EXPRESSION = {"$ref": "#/$defs/expression"}
_COUNT = {"type": "integer", "minimum": 1, "maximum": MAX_REPEAT}
_VALUE = {"type": ["integer", "number", "boolean", "string", "array"]}


def generate(registry: Registry, dispatch_ops: bool = True) -> dict[str, Any]:
    """The whole schema for specs using the ops in `registry`.

    With `dispatch_ops=False` a layer's op-specific keys are left unchecked: `validate` then
    checks each layer against its op's `$defs/op.NAME` directly, which is the same contract
    without testing every op's `if` branch on every layer.
    """
    defs = _defs(registry, dispatch_ops)
    return anchored(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": SCHEMA_ID,
            "title": "nncompile model spec",
            "type": "object",
            "required": ["nncompile", "inputs", "layers"],
            "additionalProperties": False,
            "properties": {
                "nncompile": {"const": SPEC_VERSION, "description": "spec language version"},
                "name": {"$ref": "#/$defs/identifier"},
                "description": {"type": "string"},
                "params": {
                    "type": "object",
                    "propertyNames": {"$ref": "#/$defs/identifier"},
                    "additionalProperties": _VALUE,
                    "description": "model parameters with their defaults; override with --set NAME=VALUE",
                },
                "inputs": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"$ref": "#/$defs/identifier"},
                    "additionalProperties": {"$ref": "#/$defs/input"},
                },
                "sizes": {
                    "type": "object",
                    "propertyNames": {"$ref": "#/$defs/identifier"},
                    "additionalProperties": {"$ref": "#/$defs/size"},
                    "description": "symbolic input sizes (`H`) with their range; --set H=320 fixes one",
                },
                "variants": {
                    "type": "object",
                    "propertyNames": {"$ref": "#/$defs/identifier"},
                    "additionalProperties": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {
                            "type": "object",
                            "propertyNames": {"$ref": "#/$defs/identifier"},
                            "additionalProperties": _VALUE,
                        },
                    },
                    "description": "rows of parameter values, picked by the value of the parameter they are keyed by (--set scale=s)",
                },
                "functions": {
                    "type": "object",
                    "propertyNames": {"$ref": "#/$defs/identifier"},
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"args": {"type": "array", "items": {"$ref": "#/$defs/identifier"}}, "value": _EXPRESSION},
                        "required": ["value"],
                        "additionalProperties": False,
                    },
                    "description": "the spec's own functions: {ch: {args: [c], value: '$ceil($c * $width / 8) * 8'}}, called as $ch(64)",
                },
                "outputs": {
                    "anyOf": [{"$ref": "#/$defs/reference"}, {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/reference"}}],
                    "description": "the layers the model returns (default: the last layer written); several give a tuple",
                },
                "blocks": {
                    "type": "object",
                    "propertyNames": {"$ref": "#/$defs/identifier", "not": {"enum": registry.names}},
                    "additionalProperties": {"$ref": "#/$defs/block"},
                },
                "layers": {"$ref": "#/$defs/layers"},
                "train": {"$ref": "#/$defs/train", "description": "how `nncompile train` trains the model"},
                "budgets": BUDGETS,
            },
            "if": {"not": {"required": ["blocks"]}},
            "then": {"properties": {"layers": {"$ref": "#/$defs/builtin_layers"}}},
            "$defs": defs,
        }
    )


def _defs(registry: Registry, dispatch_ops: bool) -> dict[str, Any]:
    defs: dict[str, Any] = {
        "identifier": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "layer_id": {
            "type": "string",
            "pattern": "^(?:[A-Za-z_]|\\{[^{}]+\\})(?:[A-Za-z0-9_]|\\{[^{}]+\\})*$",
            "description": "a name (`conv1`), or a template whose `{…}` are expressions (`denseblock{$s + 1}`)",
        },
        "reference": {
            "anyOf": [
                {"type": "string", "pattern": "^(?:[A-Za-z0-9_-]|\\{[^{}]+\\})+(?:\\.(?:[A-Za-z0-9_-]|\\{[^{}]+\\})+)*(?:\\.\\*)?$"},
                {"type": "integer", "minimum": 0, "maximum": MAX_SIZE},
            ],
            "description": "a layer id, an input, a path into a block (`layer1.0.conv1`), an output of a multi-output op "
            "(`split.1`), every copy or output (`m.*`), or a position (`3`)",
        },
        "expression": {"type": "string", "pattern": "^\\$", "description": "an expression: `$param`, `$width * 4`"},
        "shape": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
                    _EXPRESSION,
                    {"$ref": "#/$defs/identifier", "description": "a symbolic size declared in `sizes`"},
                ]
            },
        },
        "size": {
            "type": "object",
            "properties": {key: {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_SIZE}, _EXPRESSION]} for key in SIZE_KEYS},
            "required": ["min", "max"],
            "additionalProperties": False,
        },
        "input": {
            "anyOf": [
                {"$ref": "#/$defs/shape"},
                {
                    "type": "object",
                    "properties": {"shape": {"$ref": "#/$defs/shape"}, "dtype": {"enum": list(INPUT_DTYPES)}},
                    "required": ["shape"],
                    "additionalProperties": False,
                },
            ]
        },
        "block": _block_schema(),
        "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"}},
        "layer": _layer_schema(registry, dispatch_ops),
        "builtin_layers": {
            "description": "in a spec without blocks, every op is a builtin (or plugin) op",
            "type": "array",
            "items": {"properties": {"op": {"enum": registry.names}, "layers": {"$ref": "#/$defs/builtin_layers"}}},
        },
        "group": _group_schema(),
        "train": train_schema(),
    }
    defs.update({f"op.{op.name}": _op_schema(op, registry) for op in registry})
    return defs


def shipped() -> str:
    """The schema file shipped inside the package, as text."""
    return resources.files(__package__).joinpath(SHIPPED_SCHEMA).read_text(encoding="utf-8")


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def _block_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["layers"],
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string"},
            "params": {
                "type": "object",
                "propertyNames": {"$ref": "#/$defs/identifier"},
                "additionalProperties": _VALUE,
                "description": f"a type name ({', '.join(BLOCK_PARAM_TYPES)}) for a required parameter, or a default value",
            },
            "inputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/identifier"}},
            "output": {"$ref": "#/$defs/reference"},
            "inline": {"type": "boolean", "description": "its layers take names and positions in the caller's list"},
            "layers": {"$ref": "#/$defs/layers"},
        },
    }


def _common_properties(registry: Registry) -> dict[str, Any]:
    return {
        "id": {"$ref": "#/$defs/layer_id"},
        "op": {
            "title": "an op or block name",
            "anyOf": [{"enum": registry.names}, {"$ref": "#/$defs/identifier"}],
            "description": "a builtin op (completed by editors), a plugin op, or a block of this spec",
        },
        "from": {"anyOf": [{"$ref": "#/$defs/reference"}, {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/reference"}}]},
        "when": {"anyOf": [{"type": "boolean"}, {"type": "string", "minLength": 1}]},
        "repeat": {
            "anyOf": [
                _COUNT,
                _EXPRESSION,
                {
                    "type": "object",
                    "properties": {
                        "count": {"anyOf": [_COUNT, _EXPRESSION]},
                        "names": {"type": "string", "minLength": 1, "description": "'flat', or a template such as 'denselayer{$i + 1}'"},
                        "chain": {
                            "type": "boolean",
                            "description": "false: every copy reads the layer's `from` instead of the previous copy",
                        },
                    },
                    "required": ["count"],
                    "additionalProperties": False,
                },
            ]
        },
        "activation": {
            "anyOf": [{"enum": [*registry.activations, "none"]}, _EXPRESSION],
            "description": "an activation after the layer; none for none",
        },
        "share": {
            "type": "object",
            "propertyNames": {"$ref": "#/$defs/identifier"},
            "additionalProperties": {"$ref": "#/$defs/reference"},
            "description": "tie a learnable tensor to another layer's of the same name: {weight: transformer.wte}",
        },
    }


def _layer_schema(registry: Registry, dispatch_ops: bool) -> dict[str, Any]:
    branches: list[dict[str, Any]] = [{"if": {"required": ["layers"]}, "then": {"$ref": "#/$defs/group"}, "else": {"required": ["op"]}}]
    if dispatch_ops:
        branches += [{"if": _op_is([op.name]), "then": {"$ref": f"#/$defs/op.{op.name}"}} for op in registry]
    block_call = {"required": ["op"], "not": _op_is(registry.names)}
    branches.append({"if": block_call, "then": {"properties": {key: True for key in LAYER_KEYS}, "additionalProperties": _VALUE}})
    return {"type": "object", "properties": _common_properties(registry), "allOf": branches}


def _op_is(names: list[str]) -> dict[str, Any]:
    condition = {"const": names[0]} if len(names) == 1 else {"enum": names}
    return {"properties": {"op": condition}, "required": ["op"]}


def _group_schema() -> dict[str, Any]:
    keys: dict[str, Any] = {key: True for key in LAYER_KEYS if key not in ("op", "activation", "share")}
    keys["layers"] = {"$ref": "#/$defs/layers"}
    keys["inputs"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/identifier"}}
    keys["output"] = {"$ref": "#/$defs/reference"}
    return {"type": "object", "properties": keys, "additionalProperties": False}


def _op_schema(op, registry: Registry) -> dict[str, Any]:
    properties: dict[str, Any] = {key: True for key in LAYER_KEYS if key != "layers"}
    for param in op.params:
        alternatives = [_with_expressions(param.schema), _EXPRESSION]
        if param.is_scalar:
            per_repetition = {"anyOf": [dict(param.schema), _EXPRESSION]}
            alternatives.append({"title": "one value per repetition", "type": "array", "items": per_repetition})
        properties[param.name] = {"anyOf": alternatives, "description": param.doc} if param.doc else {"anyOf": alternatives}
    required = [p.name for p in op.params if p.required]
    schema: dict[str, Any] = {"description": op.doc, "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _with_expressions(schema: Any) -> Any:
    """`schema` with each list item and mapping value allowed to be an expression too
    (`shape: [$heads, -1, $dim]`, `init: {type: constant, value: $scale}`)."""
    if not isinstance(schema, dict):
        return schema
    result = dict(schema)
    if "items" in result:
        result["items"] = {"anyOf": [_with_expressions(result["items"]), _EXPRESSION]}
    if "anyOf" in result:
        result["anyOf"] = [_with_expressions(alternative) for alternative in result["anyOf"]]
    if "properties" in result:
        result["properties"] = {
            key: value if "const" in value or "enum" in value else {"anyOf": [_with_expressions(value), _EXPRESSION]}
            for key, value in result["properties"].items()
        }
    return result
