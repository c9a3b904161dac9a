"""JSON Schema patterns that end where the string ends in every regex engine.

`$` ends the string in ECMA-262 (editors, ajv) but also matches before a final newline in Python's
`re`, which jsonschema uses: `"fc\\n"` passed `^[A-Za-z_]+$` in `check` and nowhere else, and reached the
generated code. Every pattern's closing `$` is written `(?![\\s\\S])` (no character follows), which
both engines read alike.
"""

from __future__ import annotations

from typing import Any

END = r"(?![\s\S])"


def anchored(schema: Any) -> Any:
    """`schema` with every `pattern` closed by END instead of `$` (in place; returned for chaining)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str) and value.endswith("$") and not value.endswith("\\$"):
                schema[key] = value[:-1] + END
            else:
                anchored(value)
    elif isinstance(schema, list):
        for item in schema:
            anchored(item)
    return schema
