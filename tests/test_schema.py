"""The JSON Schema is generated from the op registry; the shipped copy must equal it."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from conftest import SPECS

from compiler.ops import BUILTIN
from compiler.schema import dumps, generate, shipped


def test_shipped_schema_matches_the_registry():
    assert shipped() == dumps(generate(BUILTIN)), "regenerate: nncompile schema > compiler/nncompile.schema.json"


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(json.loads(shipped()))


def test_every_op_has_a_definition():
    defs = json.loads(shipped())["$defs"]
    assert {name for name in defs if name.startswith("op.")} == {f"op.{op.name}" for op in BUILTIN}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_shipped_specs_validate_with_plain_jsonschema(spec):
    """What an editor sees through the `$schema` line."""
    jsonschema.Draft202012Validator(json.loads(shipped())).validate(yaml.safe_load(spec.read_text()))
