"""Type checks for values known only after parameters are substituted (op args, block args, overrides)."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema

from .expr import MAX_MAGNITUDE, short
from .ops import Param
from .ops.core import MAX_SIZE
from .schema import BLOCK_PARAM_TYPES
from .validate import Validator, describe, frozen


class _Invalid:
    def __repr__(self) -> str:
        return "<invalid>"


INVALID: Any = _Invalid()
"""A value already reported as wrong: used without a second diagnostic."""

_PYTHON_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "list": (list,)}


@functools.lru_cache(maxsize=4096)
def _suits(param: Param, frozen: Any) -> bool:
    """Whether a value suits `param`, remembered per distinct value (specs repeat their arguments)."""
    return _validator(param).is_valid(_thawed(frozen))


def _thawed(frozen: Any) -> Any:
    kind, value = frozen
    if kind == "dict":
        return {key: _thawed(item) for key, item in value}
    if kind == "list":
        return [_thawed(item) for item in value]
    return value


def _validator(param: Param) -> jsonschema.protocols.Validator:
    return Validator(dict(param.schema))


def check_value(param: Param, value: Any) -> str | None:
    """None if `value` suits `param`, else what is wrong, e.g. "must be an integer ≥ 1, got 2.5"."""
    try:
        suits = _suits(param, frozen(value))
    except TypeError:  # a value that cannot be remembered (unhashable): check it afresh
        suits = _validator(param).is_valid(value)
    if suits:
        return None
    if isinstance(value, int) and value > MAX_SIZE:
        return f"must be at most {MAX_SIZE}, got {value}"
    return f"must be {describe(param.schema)}, got {short(value)}"


def block_param_type(declared: Any) -> str:
    """A block parameter's type: named (`width: int`) or taken from its default (`stride: 1`)."""
    if isinstance(declared, str) and declared.lower() in BLOCK_PARAM_TYPES:
        return declared.lower()  # a mis-cased type name is reported by resolve; type it as meant
    for name, kinds in _PYTHON_TYPES.items():
        if type(declared) in kinds and not (name == "int" and isinstance(declared, bool)):
            return name
    return "str"


def integral(schema: Any, value: Any) -> Any:
    """`value` with integral floats (3.0) made ints where `schema` takes no fractions, as torch needs."""
    return value if _types(schema) & {"number"} else _integral(value)


def _integral(value: Any) -> Any:
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return int(value) if _whole(value) else value


def _whole(value: Any) -> bool:
    """A float that is an integer an int can stand for (3.0, not 1e300: integers stay below 2**63)."""
    return isinstance(value, float) and value.is_integer() and abs(value) < MAX_MAGNITUDE


def as_declared(schema: Any, value: Any) -> Any:
    """An integer given where the schema declares a real number (`alpha: 1`, `p: 0`) as a float: torch's
    Python functions take either, but TorchScript types `float` arguments strictly."""
    if isinstance(schema, dict) and schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    kinds = schema.get("type", [])
    found = set(kinds if isinstance(kinds, list) else [kinds])
    for key in ("anyOf", "items"):
        parts = schema.get(key, [])
        for part in parts if isinstance(parts, list) else [parts]:
            found |= _types(part)
    return found


def check_block_value(kind: str, value: Any) -> str | None:
    if kind == "int" and _whole(value):
        return None
    if (isinstance(value, bool) and kind != "bool") or not isinstance(value, _PYTHON_TYPES[kind]):
        missing = isinstance(value, str) and "$" in value and not value.lstrip().startswith("$")
        hint = f" (an expression starts with '$': write '${value.strip()}')" if missing else ""
        return f"must be of type {kind}, got {short(value)}{hint}"
    return None
