"""The initialisers of learnable tensors (`parameter`'s `init`), defined once: each is a torch function
called on the empty tensor with keyword arguments made from the spec's options. The table gives the
op's schema and check (`ops.tensor`), the builder's call (`nn.initialize`) and the ejected file's
text (`eject`), so the three cannot disagree. No torch here: check reads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_NUMBER = {"type": "number"}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}

Values = Mapping[str, float]
"""An initialiser's options by name, defaults filled in."""


@dataclass(frozen=True)
class Argument:
    """One keyword argument of the torch function: from the spec's `option` (None: always `default`),
    else `default`, a number or computed from the options before it."""

    keyword: str
    option: str | None = None
    schema: Mapping[str, Any] | None = None
    default: float | Callable[[Values], float] | None = None
    """None: the option is required."""


@dataclass(frozen=True)
class Initializer:
    name: str
    target: str
    """'module:function', called as function(tensor, **arguments); it fills the tensor in place and
    returns it (as torch.nn.init's functions do)."""
    arguments: tuple[Argument, ...] = ()
    problem: Callable[[Values, tuple[int, ...]], str | None] | None = None
    """What is wrong with these options for a tensor of this shape, if anything."""

    @property
    def options(self) -> tuple[Argument, ...]:
        return tuple(argument for argument in self.arguments if argument.option is not None)

    def values(self, given: Mapping[str, Any]) -> dict[str, float]:
        """The options, defaults filled in (in order, so a default may read the options before it)."""
        values: dict[str, float] = {}
        for argument in self.options:
            option, default = str(argument.option), argument.default
            if option in given:
                values[option] = given[option]
            else:
                values[option] = default(values) if callable(default) else default
        return values

    def call(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The function's keyword arguments for the spec's options `given`."""
        values = self.values(given)
        return {a.keyword: values[a.option] if a.option is not None else a.default for a in self.arguments}


def _kaiming_problem(values: Values, shape: tuple[int, ...]) -> str | None:
    return "kaiming_uniform needs a tensor of 2 or more dims (its fan-in is the size of dims 1 and on)" if len(shape) < 2 else None


def _uniform_problem(values: Values, shape: tuple[int, ...]) -> str | None:
    return f"uniform needs low <= high, got low {values['low']} and high {values['high']}" if values["low"] > values["high"] else None


def _truncated_problem(values: Values, shape: tuple[int, ...]) -> str | None:
    mean, std, a, b = values["mean"], values["std"], values["a"], values["b"]
    if not a < b:
        return f"trunc_normal needs a < b (absolute bounds), got a {a} and b {b}"
    if mean < a - 2 * std or mean > b + 2 * std:  # torch warns that its values would be wrong
        return f"trunc_normal's mean {mean} lies more than 2 std from its bounds [{a}, {b}] (a and b are absolute values, not offsets)"
    return None


_MEAN = Argument("mean", "mean", _NUMBER, 0.0)
_STD = Argument("std", "std", _POSITIVE, 1.0)

INITIALIZERS: dict[str, Initializer] = {
    init.name: init
    for init in (
        Initializer("zeros", "torch.nn.init:zeros_"),
        Initializer("ones", "torch.nn.init:ones_"),
        Initializer("arange", "nncompile.compiler.nn:arange_"),
        Initializer("kaiming_uniform", "torch.nn.init:kaiming_uniform_", (Argument("a", default=math.sqrt(5)),), _kaiming_problem),
        Initializer("constant", "torch.nn.init:constant_", (Argument("val", "value", _NUMBER),)),
        Initializer("normal", "torch.nn.init:normal_", (_MEAN, _STD)),
        Initializer(
            "trunc_normal",
            "torch.nn.init:trunc_normal_",
            (
                _MEAN,
                _STD,
                Argument("a", "a", _NUMBER, lambda v: v["mean"] - 2 * v["std"]),
                Argument("b", "b", _NUMBER, lambda v: v["mean"] + 2 * v["std"]),
            ),
            _truncated_problem,
        ),
        Initializer(
            "uniform", "torch.nn.init:uniform_", (Argument("a", "low", _NUMBER, 0.0), Argument("b", "high", _NUMBER, 1.0)), _uniform_problem
        ),
    )
}
"""kaiming_uniform is nn.Linear's initialisation of its weight (a = √5); trunc_normal's bounds a and b
are absolute values, by default mean ± 2·std (torch's default, -2 and 2, is for mean 0 and std 1)."""


def parse(init: str | Mapping[str, Any]) -> tuple[Initializer, dict[str, Any]]:
    """The initialiser a spec's `init` names, and its options."""
    if isinstance(init, str):
        return INITIALIZERS[init], {}
    return INITIALIZERS[init["type"]], {key: value for key, value in init.items() if key != "type"}


def schema() -> dict[str, Any]:
    """`init`'s JSON schema: a name where every option has a default, or {type: name, options…}."""
    plain = [init.name for init in INITIALIZERS.values() if all(a.default is not None for a in init.options)]
    shapes = [
        {
            "type": "object",
            "properties": {"type": {"const": init.name}, **{str(a.option): dict(a.schema or {}) for a in init.options}},
            "required": ["type", *(str(a.option) for a in init.options if a.default is None)],
            "additionalProperties": False,
        }
        for init in INITIALIZERS.values()
    ]
    return {"anyOf": [{"enum": plain}, *shapes]}


def summary() -> str:
    """`zeros, ones, …, or {type: constant|…, …}` for the op's documentation."""
    plain = schema()["anyOf"][0]["enum"]
    with_options = "|".join(init.name for init in INITIALIZERS.values() if init.options)
    return f"{', '.join(plain)}, or {{type: {with_options}, …}}"


def problem(init: str | Mapping[str, Any], shape: tuple[int, ...]) -> str | None:
    """What is wrong with `init` (valid by the schema) for a tensor of `shape`, if anything."""
    initializer, given = parse(init)
    return initializer.problem(initializer.values(given), shape) if initializer.problem else None
