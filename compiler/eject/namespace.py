"""The names the ejected file gives, chosen apart so that none shadows another or what Python and the
file already use.

Every name from the spec (a block's class, a parameter, a value of `forward`) is made a Python name
(characters other than letters, digits and `_` become `_`; leading underscores are cut to one, so that
Python does not mangle it inside a class; one that starts with a digit is named after its op), then
checked against the
names it must not shadow (`reserved`): Python's keywords and builtins, `self`, the names the file
imports (`torch`, `nn`, `F`, `Tensor`, a plugin's module), every helper it may copy from nncompile.compiler.nn
and ruff's ambiguous `l`, `O`, `I`. A reserved name gets `_` appended (`class` → `class_`, a block
`attention` → the class `Attention_`); a name already given in the same namespace gets a number
(`ConvBlock2` for classes, `width_2` otherwise). Classes are module-level names, so a class name is
reserved for every parameter and value in the file.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Collection, Iterable

IMPORTS = frozenset({"torch", "nn", "F", "Tensor", "Any", "OrderedDict"})
"""What the file imports (`import torch`, `import torch.nn.functional as F`, `from torch import Tensor, nn`,
`from typing import Any`, `from collections import OrderedDict`)."""

HELPERS = frozenset(
    {"reshape", "cat", "positions", "Attention", "LayerNorm2d", "StochasticDepth", "ShiftedWindowAttention", "pad_to", "arange_", "Group"}
)
"""nncompile.compiler.nn's modules and functions and the `Group` namespace, which the file copies where
it uses them (reserved even where not)."""

_PYTHON = frozenset({*keyword.kwlist, *dir(builtins), "self", "l", "O", "I"}) - {"input"}
"""`input` may name a forward's input, as torchvision's blocks name it (the file never calls `input()`)."""


def reserved(plugin_modules: Iterable[str]) -> frozenset[str]:
    """The names nothing from the spec may take in a file that imports `plugin_modules` (dotted)."""
    return _PYTHON | IMPORTS | HELPERS | {module.split(".")[0] for module in plugin_modules}


def python_name(wanted: str, avoid: Collection[str], fallback: str = "x") -> str:
    """`wanted` (else `fallback`, where `wanted` starts with a digit) as a Python name outside `avoid`
    (a reserved name gets `_`), not yet numbered."""
    for candidate in (wanted, fallback, "x"):
        name = re.sub(r"\A__+", "_", re.sub(r"\W|[^\x00-\x7f]", "_", candidate))
        if name and not name[0].isdigit():
            break
    return f"{name}_" if name in avoid or keyword.iskeyword(name) else name


def numbered(name: str, taken: Collection[str], separator: str = "_") -> str:
    """`name` if not in `taken`, else the first of name2, name3, … (with `separator` before the number,
    `_` after a name that ends in a digit: `ConvBlock2_2`)."""
    separator = "_" if name[-1].isdigit() else separator
    found, number = name, 2
    while found in taken:
        found, number = f"{name}{separator}{number}", number + 1
    return found


def class_name(wanted: str, avoid: Collection[str], taken: Collection[str]) -> str:
    """`basic` → `Basic`, `inverted_residual` → `InvertedResidual`; `Attention_` where the file has
    that helper, `Basic2` where a class has the name."""
    words = re.split(r"[^A-Za-z0-9]+", wanted)
    text = "".join(w[:1].upper() + w[1:] for w in words if w) or "Model"
    text = text if text[0].isalpha() else f"Block{text}"
    return numbered(python_name(text, avoid), {*taken, *avoid}, "")
