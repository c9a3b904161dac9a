"""What every step of one resolve shares (the spec, the ops, the model's parameters, the expansion
being built and the diagnostics), and the values it passes along: the frame a layer list is expanded
in, a layer as written, and one use of it."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic, Span
from ..ir import Deferred, Scope
from ..link import Expansion, Source
from ..load import Document, JsonPath
from ..names import reserved
from ..ops import OpDef, Registry

MAX_NODES = 100_000


class Abort(Exception):
    """Stops expansion when going on could only produce noise (a size limit or a recursive block)."""


@dataclass(frozen=True)
class Context:
    """One resolve's inputs and the accumulators its steps add to."""

    document: Document
    registry: Registry
    model: Mapping[str, Any]
    """The model's parameters: every block sees them, besides its own."""
    expansion: Expansion
    diagnostics: list[Diagnostic]
    serials: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    """Numbers the namespaces of inline block calls."""

    @property
    def blocks(self) -> dict[str, Any]:
        return self.document.data.get("blocks", {})

    def span(self, path: JsonPath) -> Span:
        return self.document.span(path)

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    def define(self, path: str, span: Span) -> None:
        """Claim a node name: E0312 for a reserved one, E0302 for a duplicate; past MAX_NODES, abort."""
        why = reserved(path.rpartition(".")[2])
        if why:
            self.error("E0312", f"'{path.rpartition('.')[2]}' cannot name a layer or input: it is {why}", span, "rename it")
        defined = self.expansion.defined
        if path in defined:
            self.error("E0302", f"duplicate id '{path}' (first defined at line {defined[path].line})", span)
        else:
            defined[path] = span
        if len(defined) > MAX_NODES:
            self.error("E0310", f"spec expands to more than {MAX_NODES} layers", span)
            raise Abort

    def alias(self, path: str, target: str) -> None:
        """`path` names the value at `target`."""
        if path != target:
            self.expansion.aliases[path] = target


@dataclass
class Positions:
    """The next positional name of a layer list, shared by the inline expansions spliced into it."""

    next: int = 0

    def take(self) -> str:
        self.next += 1
        return str(self.next - 1)


@dataclass(frozen=True)
class Frame:
    """Where a layer list is expanded: the prefix of node names, the prefix under which its local names
    are looked up (the same, except inside an inline block), parameters, guards and positions."""

    prefix: str
    lookup: str
    params: Mapping[str, Any]
    positions: Positions
    guards: tuple[Deferred, ...] = ()
    blocks: tuple[str, ...] = ()
    scopes: tuple[Scope, ...] = ()
    numbered: tuple[tuple[str, int], ...] = ()
    """The positions the enclosing layers are named by: (the list's prefix, the position)."""

    @property
    def env(self) -> Env:
        return Env(self.params, self.lookup)

    def at_position(self, position: str) -> Frame:
        """This frame inside the layer named by `position` of its list."""
        return dataclasses.replace(self, numbered=(*self.numbered, (self.prefix, int(position))))


@dataclass(frozen=True)
class Env:
    """What an expression sees: parameters (and functions) by name, and the prefix its references
    (`channels(input)`) are looked up under."""

    params: Mapping[str, Any]
    lookup: str = ""


@dataclass(frozen=True)
class Written:
    """A layer as the spec wrote it: its mapping, its document path, and its id (a template evaluated)."""

    layer: dict
    path: JsonPath
    local: str | None

    def at(self, *keys: str | int) -> JsonPath:
        """The document path of a key inside the layer."""
        return (*self.path, *keys)


@dataclass(frozen=True)
class Body:
    """What a block call or a group expands: the block's name (None for a group) and its definition."""

    block: str | None
    spec: dict

    @property
    def inline(self) -> bool:
        """A block declared `inline: true`: its layers take names and positions in the caller's list."""
        return self.block is not None and bool(self.spec.get("inline", False))


Callee = OpDef | Body | None
"""What a layer's `op` (or its `layers`) names; None after reporting an unknown op."""

Repetition = tuple[int, int] | None
"""(index, count) of a repeat's copy, or None outside a repeat."""


@dataclass(frozen=True)
class Use:
    """One use of a written layer: what it names, the inputs that feed it, and which copy it is."""

    callee: Callee
    written: Written
    sources: list[Source]
    rep: Repetition = None
