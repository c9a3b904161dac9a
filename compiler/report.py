"""Diagnostics rendered for people and for tools: JSON, GitHub Actions annotations, SARIF 2.1.0.
(The compiler-style text form, with its caret snippet, is `diagnostics.render_text`.)"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from .codes import CODES
from .diagnostics import Diagnostic, printable

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/nncompile/nncompile#error-codes"


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    """A list of objects: code, message, span {file, line, col, end_line, end_col} or null, hint,
    severity ("error" or "warning")."""
    return json.dumps([_as_json(d) for d in diagnostics], indent=2)


def _as_json(diagnostic: Diagnostic) -> dict:
    data = asdict(diagnostic)
    data["severity"] = diagnostic.severity.value
    return data


def render_github(diagnostic: Diagnostic) -> str:
    """A GitHub Actions workflow command (`::error file=…,line=…,col=…,endLine=…,endColumn=…,title=…::…`),
    which CI shows as an annotation. Escaped as GitHub documents it: `%`, CR and LF in the message;
    also `:` and `,` in properties; so a spec's text can never end the command or start another."""
    kind = "error" if diagnostic.is_error else "warning"
    message = diagnostic.message + (f" (hint: {diagnostic.hint})" if diagnostic.hint else "")
    properties = {}
    span = diagnostic.span
    if span:
        properties = {"file": span.file, "line": span.line, "col": span.col}
        if span.end_line:
            properties |= {"endLine": span.end_line, "endColumn": span.end_col}
    properties["title"] = f"nncompile {diagnostic.code}"
    where = ",".join(f"{key}={_escape_property(str(value))}" for key, value in properties.items())
    return f"::{kind} {where}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return printable(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_sarif(diagnostics: Sequence[Diagnostic], version: str) -> str:
    """One SARIF 2.1.0 run: every code as a rule (name, description, help), every diagnostic as a
    result with its region. GitHub code scanning accepts it (`github/codeql-action/upload-sarif`)."""
    codes = sorted(CODES)
    rules = [_rule(code) for code in codes]
    results = [_result(d, codes.index(d.code) if d.code in CODES else None) for d in diagnostics]
    driver = {"name": "nncompile", "version": version, "informationUri": INFORMATION_URI, "rules": rules}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results}]}, indent=2)


def _rule(code: str) -> dict[str, Any]:
    entry = CODES[code]
    level = "warning" if code.startswith("W") else "error"
    return {
        "id": code,
        "name": entry.name,
        "shortDescription": {"text": f"{entry.name} ({entry.stage})"},
        "fullDescription": {"text": entry.meaning},
        "help": {"text": f"{code}: {entry.meaning}. See the error codes in nncompile's README."},
        "defaultConfiguration": {"level": level},
        "properties": {"stage": entry.stage},
    }


def _result(diagnostic: Diagnostic, rule_index: int | None) -> dict[str, Any]:
    text = diagnostic.message + (f"\nhint: {diagnostic.hint}" if diagnostic.hint else "")
    result: dict[str, Any] = {"ruleId": diagnostic.code, "level": "error" if diagnostic.is_error else "warning", "message": {"text": text}}
    if rule_index is not None:
        result["ruleIndex"] = rule_index
    span = diagnostic.span
    if span:
        region = {"startLine": span.line, "startColumn": span.col}
        if span.end_line:
            region |= {"endLine": span.end_line, "endColumn": max(span.end_col or span.col, span.col)}
        uri = _uri(span.file)
        result["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": region}}]
    return result


def _uri(file: str) -> str:
    """A relative URI for a file name, its bytes percent-encoded: a name that is not UTF-8 (its bytes kept
    by Python as surrogates) becomes `%FF.yaml`, not a crash."""
    path = PurePosixPath(file.replace("\\", "/")).as_posix()
    return quote(path.encode("utf-8", "surrogateescape"), safe="/")
