"""The JSON Schema is generated from the op registry; the shipped copy must equal it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT, SPECS
from nncompile.compiler.ops import BUILTIN
from nncompile.compiler.schema import dumps, generate, shipped


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


SCHEMA_LEVEL = ("E02", "E0301")
"""The codes that only the schema decides: wrong keys and values, and (in a spec without blocks) an op
that is not a builtin one; and a block named like an op (E0309 where check says it)."""


def schema_level(diagnostic) -> bool:
    return diagnostic.code.startswith(SCHEMA_LEVEL) or (diagnostic.code == "E0309" and "has the name of an op" in diagnostic.message)


@pytest.mark.skipif(
    shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) is None, reason="check-jsonschema is not installed"
)
def test_an_independent_validator_agrees_with_check_on_schema_errors():
    """check-jsonschema (the schema alone) rejects exactly the specs whose check errors are
    schema-level; YAML-level errors (E01) are left out, since YAML parsers differ on those."""
    import subprocess

    from nncompile import compiler

    specs = [*SPECS, *(ROOT / "specs" / "zoo").glob("*.yaml"), *sorted((ROOT / "tests" / "bad_specs").glob("*.yaml"))]
    verdicts = {}
    for spec in specs:
        errors = [d for d in compiler.check(spec) if d.is_error]
        if not any(d.code.startswith("E01") for d in errors):
            verdicts[str(spec)] = any(schema_level(d) for d in errors)
    tool = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(tool), "-o", "json", "--schemafile", str(ROOT / "compiler" / "nncompile.schema.json"), *verdicts],
        capture_output=True,
        text=True,
    )
    report = json.loads(result.stdout)
    rejected = {error["filename"] for error in report["errors"]} | {error["filename"] for error in report["parse_errors"]}
    assert {spec for spec, rejects in verdicts.items() if rejects} == rejected


@pytest.fixture(scope="module")
def ajv(tmp_path_factory):
    """ajv (JavaScript) installed from the npm registry into a temporary folder; skipped where node,
    npm or the registry are not there."""
    import subprocess

    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    folder = tmp_path_factory.mktemp("ajv")
    result = subprocess.run(["npm", "install", "--silent", "ajv@8", "js-yaml@4"], cwd=folder, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.skip(f"ajv could not be installed: {result.stderr[-200:]}")
    return folder


def test_ajv_agrees_with_check_on_schema_errors(ajv):
    import subprocess

    from nncompile import compiler

    specs = [*SPECS, *(ROOT / "specs" / "zoo").glob("*.yaml"), *sorted((ROOT / "tests" / "bad_specs").glob("*.yaml"))]
    expected = {}
    for spec in specs:
        errors = [d for d in compiler.check(spec) if d.is_error]
        if not any(d.code.startswith("E01") for d in errors):
            expected[str(spec)] = "invalid" if any(schema_level(d) for d in errors) else "ok"
    script = ROOT / "tests" / "data" / "ajv_validate.js"
    command = ["node", str(script), str(ROOT / "compiler" / "nncompile.schema.json"), *expected]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ajv, env={**os.environ, "NODE_PATH": str(ajv / "node_modules")})
    assert dict(line.split("\t") for line in result.stdout.splitlines()) == expected
