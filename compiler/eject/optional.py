"""Instances of a block that differ only by optional layers (a `when:` that holds in some calls, such as
ResNet's `downsample`) share one class: the fuller instance is the template, and the others are padded
to it with those layers marked absent. The class then takes a flag per optional layer, as torchvision's
`BasicBlock` takes its `downsample` (None where absent).

An optional layer is a top-level member or value of the block (with whatever it holds); where absent,
what it would have made is its first input, as the spec's skipped layers pass their input through.
A member's flag is named after it; a function's (an activation some calls omit) after its op.
"""

from __future__ import annotations

import dataclasses

from .instances import Instance, Line, Member, identifier

MISSING = object()
"""The value of an argument of an absent member."""


def top(path: str) -> str:
    return path.split(".")[0]


def line_path(line: Line) -> str:
    return line.member or line.targets[0].partition(":")[0] if line.targets or line.member else ""


def fit(small: Instance, big: Instance, same_child) -> list[str] | None:
    """The optional layers (top-level names) `small` lacks, if it is `big` without them; else None.
    `same_child(a, b)` tells whether two child instances are written by one class."""
    if small.block != big.block or len(small.inputs) != len(big.inputs) or len(small.outputs) != len(big.outputs):
        return None
    small_members = {m.path: m for m in small.members}
    small_lines = {t for line in small.lines for t in line.targets}
    units: list[str] = []
    for member in big.members:
        if member.path not in small_members and top(member.path) not in units:
            units.append(top(member.path))
    for line in big.lines:
        if line.targets and not any(t in small_lines for t in line.targets) and top(line_path(line)) not in units:
            units.append(top(line_path(line)))
    members = {top(m.path) for m in big.members}
    if not units or not all(identifier(unit) or unit not in members for unit in units):
        return None  # a member needs a name to be an attribute; a function's lines need none
    for member in big.members:
        inside = top(member.path) in units
        if inside == (member.path in small_members):
            return None
        if not inside:
            other = small_members[member.path]
            if other.shape != member.shape or (member.child is None) != (other.child is None):
                return None
            if member.child is not None and not same_child(member.child, other.child):
                return None
    found = _without(big.lines, units)
    if found is None:
        return None
    kept, passed = found
    if [line.shape for line in kept] != [line.shape for line in small.lines]:
        return None
    if [_through(big.token(ref), passed) for ref in big.outputs] != [small.token(ref) for ref in small.outputs]:
        return None
    return units


def _without(lines: list[Line], units: list[str]) -> tuple[list[Line], dict] | None:
    """The lines with the units taken out, their values replaced by what each unit passes through;
    and what each unit's values pass through to."""
    passed: dict[str, tuple[str, int | None]] = {}
    kept: list[Line] = []
    for unit in units:
        inside = [i for i, line in enumerate(lines) if top(line_path(line)) == unit]
        if inside != list(range(inside[0], inside[0] + len(inside))) or not lines[inside[0]].reads:
            return None
        first = lines[inside[0]].reads[0]
        for index in inside:
            for target in lines[index].targets:
                passed[target] = first
    for line in lines:
        if top(line_path(line)) in units:
            continue
        reads = tuple(_through(read, passed) for read in line.reads)
        kept.append(dataclasses.replace(line, reads=reads))
    return kept, passed


def _through(read: tuple[str, int | None], passed: dict[str, tuple[str, int | None]]) -> tuple[str, int | None]:
    while read[1] is None and read[0] in passed:
        read = passed[read[0]]
    return read


def pad(small: Instance, big: Instance, units: list[str]) -> None:
    """Give `small` the members and lines of `big`, those of the units marked absent."""
    small_members = {m.path: m for m in small.members}
    members: list[Member] = []
    for member in big.members:
        if top(member.path) in units:
            args = [(name, MISSING, positional) for name, _, positional in member.args]
            members.append(dataclasses.replace(member, args=args, node=None, absent=True))
        else:
            members.append(small_members[member.path])
    lines: list[Line] = []
    own = iter(small.lines)
    for line in big.lines:
        if top(line_path(line)) in units:
            lines.append(dataclasses.replace(line, shapes=(), absent=True, values=tuple(MISSING for _ in line.values)))
        else:
            lines.append(next(own))
    small.members, small.lines = members, lines
    small.absent = set(units)
