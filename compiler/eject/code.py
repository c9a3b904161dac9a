"""How one typed node reads in Python: the constructor of its module, and the expression of its
forward line. Values print as Python literals; arguments equal to the callee's defaults are left out."""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from ..emit import resolve_target
from ..ir import TypedNode
from ..ops import Call, FunctionEmit, ModuleEmit, OpDef

HELPERS = "nncompile.compiler.nn"
"""Functions and modules from here are copied into the ejected file."""

INFIX = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "matmul": "@"}
ALIASES = {"torch.nn.functional": "F", "torch.nn.init": "nn.init", "torch.nn": "nn", "torch": "torch"}


class EjectError(Exception):
    """The model holds something the ejected file cannot write down."""


def literal(value: Any) -> str:
    """`value` as Python source (strings in double quotes, as ruff formats them)."""
    import torch

    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(literal(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, torch.dtype):
        return str(value)
    raise EjectError(f"cannot write {value!r} ({type(value).__name__}) as Python")


def subscript(index: Any) -> str:
    """An index as it reads inside brackets: `:, 1:` rather than `(slice(None), slice(1, None))`."""
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for item in items:
        if isinstance(item, slice):
            text = ":".join("" if v is None else literal(v) for v in (item.start, item.stop, item.step))
            parts.append(text.rstrip(":") if item.step is None else text)
            parts[-1] = parts[-1] or ":"
        else:
            parts.append(literal(item))
    return ", ".join(parts)


def callee(target: str) -> str:
    """'torch.nn:Conv2d' → 'nn.Conv2d'; a helper of compiler.nn is called by its own name."""
    module, _, attribute = target.partition(":")
    if module == HELPERS:
        return attribute
    return f"{ALIASES.get(module, module)}.{attribute}"


def imports_of(target: str) -> str | None:
    """The import line a target outside torch's usual aliases needs (a plugin's module)."""
    module = target.partition(":")[0]
    return None if module in ALIASES or module in (HELPERS, "operator") else f"import {module}"


def function_target(node: TypedNode, op: OpDef) -> str:
    spec = op.emit
    assert isinstance(spec, FunctionEmit)
    return spec.target if isinstance(spec.target, str) else spec.target(Call(node.args, node.input_types))


def constructor_args(node: TypedNode, op: OpDef) -> tuple[list[tuple[str, Any, bool]], dict[str, Any]]:
    """The module's constructor arguments as (name, value, passed by position), required ones by
    position; and the defaults of the others (the writer leaves out a value equal to its default)."""
    assert isinstance(op.emit, ModuleEmit)
    kwargs = op.emit.kwargs(Call(node.args, node.input_types))
    try:
        parameters = list(inspect.signature(resolve_target(op.emit.target)).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: every argument by keyword
        return [(k, v, False) for k, v in kwargs.items()], {}
    args: list[tuple[str, Any, bool]] = []
    defaults: dict[str, Any] = {}
    positional = True
    for parameter in parameters:
        if parameter.name in ("self", "args", "kwargs") or parameter.name not in kwargs:
            positional = positional and parameter.name == "self"
            continue
        required = parameter.default is inspect.Parameter.empty
        positional = positional and required
        args.append((parameter.name, kwargs[parameter.name], positional))
        if not required:
            defaults[parameter.name] = parameter.default
    named = {p.name for p in parameters}
    return args + [(k, v, False) for k, v in kwargs.items() if k not in named], defaults


def is_default(defaults: dict[str, Any], name: str, value: Any) -> bool:
    return name in defaults and _same(defaults[name], value)


def _same(default: Any, value: Any) -> bool:
    return type(default) is type(value) and default == value


def call_expression(node: TypedNode, op: OpDef, reads: list[str], access: str) -> tuple[str, tuple[Any, ...]]:
    """The expression computing the node (`self.conv1(x)`, `F.relu(x)`, `a + b`, `x[:, 0]`) as a template,
    and the values it writes: `{v0}`, `{v1}`… in the template stand for them (see `fill`)."""
    spec = op.emit
    call = Call(node.args, node.input_types)
    values: list[Any] = []

    def put(value: Any) -> str:
        values.append(value)
        return f"{{v{len(values) - 1}}}"

    if isinstance(spec, ModuleEmit):
        args = reads * spec.self_inputs if spec.self_inputs and len(reads) == 1 else reads
        text = f"{access}({', '.join([*args, *(f'{k}={literal(v)}' for k, v in spec.call_kwargs.items())])})"
        return (text if spec.select is None else f"{text}[{spec.select}]"), ()
    assert isinstance(spec, FunctionEmit)
    target = function_target(node, op)
    kwargs = spec.kwargs(call)
    operand = spec.operand(call) if spec.operand is not None and len(reads) == 1 else None
    module, _, name = target.partition(":")
    if module == "operator":
        if name == "getitem":
            return f"{reads[0]}[{subscript(operand)}]", ()
        operands = [*reads, put(operand)] if operand is not None else reads
        return f" {INFIX[name]} ".join(operands), tuple(values)
    keywords = [f"{k}={put(v)}" for k, v in _keywords(resolve_target(target), kwargs)]
    function = callee(target)
    if operand is not None:
        return f"{function}({', '.join([reads[0], put(operand), *keywords])})", tuple(values)
    if spec.inputs == "list":
        listed = "[" + ", ".join(reads) + "]"
        return f"{function}({', '.join([listed, *keywords])})", tuple(values)
    if spec.inputs == "fold":
        text = reads[0]
        for other in reads[1:]:
            text = f"{function}({', '.join([text, other, *keywords])})"
        return text, tuple(values)
    return f"{function}({', '.join([*reads, *keywords])})", tuple(values)


def fill(template: str, values: Sequence[str], reads: Sequence[str] = (), access: str = "") -> str:
    """The template with `{vN}` replaced by `values[N]`, `{N}` by `reads[N]` and `{self}` by `access`
    (other braces left as they are: a value's text may hold some)."""

    def text(match: re.Match) -> str:
        key = match.group(1)
        return access if key == "self" else values[int(key[1:])] if key[0] == "v" else reads[int(key)]

    return re.sub(r"\{(self|v?\d+)\}", text, template)


def _keywords(function: Any, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """Keyword arguments of a function call, those equal to the function's defaults left out."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return list(kwargs.items())
    return [(k, v) for k, v in kwargs.items() if k not in parameters or not _same(parameters[k].default, v)]
