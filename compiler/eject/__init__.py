"""Eject: a typed graph → one standalone Python file of plain PyTorch (no nncompile import), whose module
tree is the compiled model's: its state_dict loads with strict=True and gives the same outputs."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..ir import TypedGraph
from ..load import Document
from ..ops import FunctionEmit, ModuleEmit, Registry
from ..params import model_values
from . import code, forward, namespace, render
from .classes import Class, classes, local_names
from .code import EjectError
from .helpers import copied
from .instances import cut, describe
from .keywords import Variant, configure_all

__all__ = ["EjectError", "eject"]


def eject(
    typed: TypedGraph,
    registry: Registry,
    document: Document,
    command: str,
    params: Mapping[str, Any] | None = None,
    variant: Variant | None = None,
) -> str:
    """The source of the ejected module; `command` is the command line that wrote it (for its header).
    With `params` (the model parameters of this build) and `variant` (builds the spec with some of
    them changed), the root class takes as keyword arguments those that really configure it (see
    `keywords`); without, every value is written as this build's. Raises EjectError for a model the
    file cannot express."""
    root = cut(typed)
    describe(root, typed, registry)
    imports = _plugin_imports(typed, registry)
    reserved = namespace.reserved(line.removeprefix("import ") for line in imports)
    found, of = classes(root, document, reserved)
    configure_all(found, of, registry, document, params if params is not None else model_values(document, {})[0].params, variant, reserved)
    avoid = local_names(reserved, [cls.name for cls in found])
    body = "\n\n\n".join(_class_source(cls, of, document, typed, avoid) for cls in found)
    helpers = copied(body)
    text = "\n\n".join([_header(typed, command, body + helpers, imports), *([helpers] if helpers else []), body]) + "\n"
    return _formatted(text)


def _class_source(cls: Class, of: dict, document: Document, typed: TypedGraph, avoid: frozenset[str]) -> str:
    """The class's source; no name of its forward is in `avoid`."""
    tree = render.members_tree(cls, of, avoid)
    sites = render.line_sites(cls, of)
    renames = render.collapse(cls, tree)
    ops = {line.targets[0]: _op_name(cls, line) for line in cls.first.lines if line.targets}
    inputs = forward.input_names(cls, document, typed)
    names = forward.variable_names(cls, inputs, renames, ops, avoid)
    stored = forward.stored(cls, sites, tree)
    signature = ["self"]
    for parameter in cls.parameters:
        hint = forward.type_hint(parameter.values[0])
        default = f" = {code.literal(parameter.values[0])}" if parameter.default else ""
        signature.append(f"{parameter.name}{hint}{default}")
    init = ["super().__init__()", *render.init_lines(tree, cls, of, stored), *_shares(cls, typed)]
    arguments = ", ".join(["self", *(f"{names[f'@{i}']}: Tensor" for i in range(len(inputs)))])
    count = len(cls.first.outputs)
    returns = "Tensor" if count == 1 else f"tuple[{', '.join(['Tensor'] * count)}]"
    what = _printable(f"block '{cls.block}'" if cls.block else f"model '{typed.name}'")
    lines = [
        f"class {cls.name}(nn.Module):",
        f'    """The spec\'s {what}."""',
        "",
        f"    def __init__({', '.join(signature)}) -> None:",
        *(f"        {line}" for line in init),
    ]
    if cls.first.inputs or cls.first.outputs:
        body = forward.Body(cls, tree, names, sites, stored)
        lines += [
            "",
            f"    def forward({arguments}) -> {returns}:",
            *(f"        {line}" for line in forward.forward_lines(body)),
        ]
    return "\n".join(lines)


def _op_name(cls: Class, line) -> str:
    for child in cls.first.children:
        if cls.first.relative(child.path) == line.member:
            return child.block or "x"
    for node in cls.first.nodes:
        if cls.first.relative(node.name) == line.targets[0]:
            return node.node.op
    return "x"


def _shares(cls: Class, typed: TypedGraph) -> list[str]:
    """Tied tensors (a GPT's head reads the embedding's weight), written in the root class."""
    if cls.block is not None:
        return []
    lines = []
    for node in typed.layers.values():
        for attribute, ref in node.node.shares.items():
            lines.append(f"{_path_access(node.name)}.{attribute} = {_path_access(ref.node)}.{attribute}")
    return lines


def _path_access(name: str) -> str:
    return f"self.get_submodule({code.literal(name)})"


def _plugin_imports(typed: TypedGraph, registry: Registry) -> list[str]:
    """`import normlinear.layers` for each plugin module the model's ops come from."""
    lines = set()
    for node in typed.layers.values():
        op = registry.get(node.node.op)
        spec = op.emit
        target = spec.target if isinstance(spec, ModuleEmit) else code.function_target(node, op) if isinstance(spec, FunctionEmit) else None
        line = code.imports_of(target) if target else None
        if line is None:
            continue
        module = line.removeprefix("import ")
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise EjectError(f"op '{op.name}' comes from '{module}', which is not an importable module (a plugin given as a file?)")
        lines.add(line)
    return sorted(lines)


def _header(typed: TypedGraph, command: str, body: str, plugins: list[str]) -> str:
    used = {
        "import torch": re.search(r"(?<![\w.])torch\.", body),
        "import torch.nn.functional as F": re.search(r"(?<![\w.])F\.", body),
        "from typing import Any": re.search(r"(?<![\w.])Any\b", body),
        "from collections import OrderedDict": re.search(r"(?<![\w.])OrderedDict\(", body),
    }
    standard = [line for line in ("from collections import OrderedDict", "from typing import Any") if used.pop(line, None)]
    imports = [*sorted([*plugins, *(line for line, found in used.items() if found)]), "from torch import Tensor, nn"]
    imports = [*standard, "", *imports] if standard else imports
    doc = (
        f'"""{_printable(typed.name)} in plain PyTorch, written by nncompile:\n\n    {_printable(_relative(command))}\n\n'
        "It needs no nncompile: submodules carry the spec's names, so the compiled model's state_dict loads\n"
        'with strict=True. Comments give each value\'s shape (B: the batch).\n"""'
    )
    return "\n".join([doc, "", *imports])


def _relative(command: str) -> str:
    """The command line with each absolute path written relative to the working folder where it is
    inside it, else as its file name: the file records no folder of the machine that wrote it."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    here = Path.cwd()

    def short(word: str) -> str:
        option, equals, value = word.partition("=") if word.startswith("-") else ("", "", word)
        if not os.path.isabs(value):
            return word
        path = Path(value)
        written = str(path.relative_to(here)) if path.is_relative_to(here) else path.name
        return f"{option}{equals}{written}"

    return shlex.join(short(word) for word in words)


def _printable(text: str) -> str:
    """Text safe inside a docstring: no quotes, backslashes or control characters."""
    return "".join(c if c.isprintable() and c not in '"\\' else "?" for c in text)


def _formatted(text: str) -> str:
    """Formatted by ruff (its default style) when ruff is installed; as written otherwise."""
    try:
        from ruff.__main__ import find_ruff_bin

        ruff = find_ruff_bin()
    except (ImportError, FileNotFoundError):
        ruff = shutil.which("ruff")
    if ruff is None:
        return text
    result = subprocess.run([ruff, "format", "--isolated", "-"], input=text, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else text
