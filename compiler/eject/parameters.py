"""A class's parameters, the formulas of its values and the shape comments of its lines.

The class is seen at every virtual instance: each of its instances in each observed build of the spec
(the ejected build first, then builds with one model parameter changed, see `keywords`). Each value
(a constructor argument, a block call's argument, a value `forward` writes) is a literal where it is
the same everywhere; else a formula (see `fit`). A value that differs between the instances of the
ejected build and that no formula gives becomes a parameter of the class, named as the spec names it
(`out: $width` makes `width`), else after the argument (`in_channels`); a model parameter offered by
the root is passed down to the classes whose formulas read it (`CausalSelfAttention(n_embd, n_head)`).
A value that differs only between builds and that no formula gives withdraws the model parameters
that changed it: the file could not take them honestly.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..names import MODULE_ATTRIBUTES
from . import code, fit, optional
from .classes import Class, Parameter, member_arguments
from .formulas import Formula, Scope, SpecText, expressions
from .instances import Instance, identifier
from .namespace import numbered, python_name
from .optional import MISSING

_SPELLED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\Z")


@dataclass
class Observation:
    """One build of the spec: its model parameters, classes and the class of each instance (by id)."""

    params: Mapping[str, Any]
    found: list[Class]
    of: dict[int, Class]
    changed: str | None = None
    """The model parameter this build changed (None for the ejected build)."""

    @functools.cached_property
    def index(self) -> dict[int, int]:
        return {id(cls): k for k, cls in enumerate(self.found)}


@dataclass(frozen=True)
class Site:
    """Where a value of the class comes from in the spec (in the first instance that has it)."""

    raws: list[Any]
    spelled: str | None
    argument: str
    own: Any = MISSING
    """The spec text of the argument that makes it (where one alone does), else MISSING."""


def configure(k: int, observations: list[Observation], offered: Mapping[str, str], text: SpecText, avoid: frozenset[str]) -> set[str]:
    """Give class `k` of the ejected build its parameters, formulas and comments, passing it the offered
    model parameters (spec name → the root's argument) its formulas read; returns those to withdraw."""
    cls = observations[0].found[k]
    rows = [(o, instance) for o, observed in enumerate(observations) for instance in observed.found[k].instances]
    columns = [list(column) for column in zip(*(site_values(instance, o, observations) for o, instance in rows))]
    sites = _sites(cls, observations[0].of, text)
    count = len(cls.instances)
    scope = Scope(len(rows))
    names, scope.names = _instance_names(columns, sites, count, avoid)
    flags = _flags(cls, set(scope.names), avoid)
    threaded = _threaded(cls, observations, rows, offered, scope, text.declared(cls.block), {*scope.names, *flags.values(), *avoid})
    _known_spellings(sites, columns, names, scope)
    cls.formulas, blamed = {}, set()
    for site, column in enumerate(columns):
        formula = _formula(site, column, sites[site], names, scope)
        if formula is None and not fit.constant(column):
            blamed |= _blame(column, rows, count, observations)
            continue
        if formula is not None:
            cls.formulas[site] = formula
            scope.found.append((formula, column))
        spelled = sites[site].spelled
        if spelled is not None and spelled not in scope.spec:
            scope.spec[spelled] = (formula.text if formula else code.literal(fit.first(column)), column)
    used = frozenset().union(*(formula.names for formula in cls.formulas.values()))
    cls.parameters = [Parameter(name, scope.names[name]) for name in dict.fromkeys(names[s] for s in sorted(names)) if name in used]
    cls.parameters += [Parameter(name, scope.names[name], default=cls.block is None) for name in threaded if name in used]
    cls.flags = flags
    cls.parameters += [Parameter(flag, [unit not in instance.absent for _, instance in rows]) for unit, flag in flags.items()]
    cls.comments = _comments(cls, rows, scope, {p.name for p in cls.parameters})
    return blamed


def site_values(instance: Instance, o: int, observations: list[Observation]) -> list[Any]:
    """The values of an instance in build `o`: its members' constructor arguments (a block call's: its
    class's parameters), then the values its lines write."""
    observed = observations[o]
    values: list[Any] = []
    for member in instance.members:
        if member.child is None:
            values += [value for _, value, _ in member.args]
            continue
        child = observed.of[id(member.child)]
        base = observations[0].found[observed.index[id(child)]]
        at = o * len(base.instances) + child.position(member.child)
        values += [MISSING if member.absent else p.values[at] for p in base.parameters]
    return values + [value for line in instance.lines for value in line.values]


def _sites(cls: Class, of: dict[int, Class], text: SpecText) -> list[Site]:
    """Each site's spec texts (from the first instance that has it) and its spelling (`$width`, where
    every instance that has it writes it so)."""
    found: dict[int, Site] = {}
    spellings: dict[int, set[str | None]] = {}
    for instance in cls.instances:
        index = 0
        for member in instance.members:
            node = None if member.child is not None else member.node
            for name, value, _ in member_arguments(member, of):
                if not member.absent:
                    hint = member.sources.get(name)
                    raw = text.raw(node, hint) if node is not None and hint is not None else MISSING
                    same = node is not None and repr(node.args.get(hint)) == repr(value)  # the argument as the spec gives it
                    spelled = _SPELLED.match(raw) if isinstance(raw, str) and same else None
                    if index not in found:
                        found[index] = Site(text.candidates(node, value, hint), None, name, raw)
                    spellings.setdefault(index, set()).add(spelled.group(1) if spelled else None)
                index += 1
        for line in instance.lines:
            for value in line.values:
                if not line.absent and index not in found:
                    found[index] = Site(text.candidates(line.node, value), None, "value")
                index += 1
    sites = [found.get(index, Site([], None, "value")) for index in range(index)]
    for index, spelled in spellings.items():
        if len(spelled) == 1 and None not in spelled:
            sites[index] = dataclasses.replace(sites[index], spelled=spelled.pop())
    return sites


def _instance_names(
    columns: list[list[Any]], sites: list[Site], count: int, avoid: frozenset[str]
) -> tuple[dict[int, str], dict[str, list[Any]]]:
    """A name for each site whose value differs between the instances of the ejected build (its
    spelling, else the name of one that always equals it, else its argument's), and each name's values."""
    names: dict[int, str] = {}
    used: dict[str, list[Any]] = {}

    def take(site: int, wanted: str) -> None:
        name = python_name(wanted, avoid)
        while name in avoid or (name in used and not _agree(used[name], columns[site])):
            name = _next_name(name)
        used[name] = _merged(used.get(name), columns[site])
        names[site] = name

    varying = [site for site, column in enumerate(columns) if not fit.constant(column[:count])]
    for site in varying:
        if sites[site].spelled is not None:
            take(site, sites[site].spelled)
    for site in varying:
        if site not in names:
            same = [name for name, vector in used.items() if _agree(vector, columns[site])]
            take(site, same[0] if same else sites[site].argument)
    return names, {name: [fit.first(vector) if v is MISSING else v for v in vector] for name, vector in used.items()}


def _flags(cls: Class, taken: set[str], avoid: frozenset[str]) -> dict[str, str]:
    """A flag parameter per optional layer, named after it (a function after its op); it is also an
    attribute, so it takes no member's name."""
    taken = taken | ({m.path.split(".")[0] for m in cls.first.members} - set(cls.units))
    flags: dict[str, str] = {}
    for unit in cls.units:
        name = python_name(unit if identifier(unit) else _unit_op(cls.first, unit), avoid)
        while name in taken or name in avoid or name in MODULE_ATTRIBUTES:
            name = _next_name(name)
        taken.add(name)
        flags[unit] = name
    return flags


def _threaded(
    cls: Class,
    observations: list[Observation],
    rows: list[tuple[int, Instance]],
    offered: Mapping[str, str],
    scope: Scope,
    declared: set[str],
    taken: set[str],
) -> list[str]:
    """Put the model parameters in scope: an offered one by its name here (the root's, numbered apart
    from the class's own), any other as its literal. Returns the names of the offered ones."""
    params = observations[0].params
    names = []
    for spec_name, value in params.items():
        if spec_name in offered:
            name = numbered(offered[spec_name], taken) if cls.block is not None else offered[spec_name]
            taken.add(name)
            names.append(name)
            scope.names[name] = [observations[o].params[spec_name] for o, _ in rows]
            if spec_name not in declared:
                scope.spec[spec_name] = (name, scope.names[name])
        elif spec_name not in declared and _writable(value):
            scope.spec[spec_name] = (code.literal(value), scope.constant(value))
    return names


def _writable(value: Any) -> bool:
    try:
        code.literal(value)
    except code.EjectError:
        return False
    return True


def _known_spellings(sites: list[Site], columns: list[list[Any]], names: dict[int, str], scope: Scope) -> None:
    """The block's own parameters that a site spells, where it is a parameter or the same everywhere."""
    for site, info in enumerate(sites):
        spelled = info.spelled
        if spelled is None or spelled in scope.spec:
            continue
        if site in names:
            scope.spec[spelled] = (names[site], scope.names[names[site]])
        elif fit.constant(columns[site]):
            scope.spec[spelled] = (code.literal(fit.first(columns[site])), columns[site])


def _formula(site: int, column: list[Any], info: Site, names: dict[int, str], scope: Scope) -> Formula | None:
    own = names.get(site)
    if own is not None and info.spelled is not None:
        return Formula(own, frozenset({own}))
    if fit.constant(column):
        return _as_written(column, info, scope)
    found = fit.fit(column, info.raws, scope, exclude=own)
    if found is None and own is not None:
        return Formula(own, frozenset({own}))
    return found


def _as_written(column: list[Any], info: Site, scope: Scope) -> Formula | None:
    """A value the same everywhere, as the spec writes it where that reads the class's names
    (`stride=stride` in an optional downsample that only the strided calls have)."""
    for formula, got in expressions(info.own, scope):
        if formula.names and fit.agree(column, got):
            return formula
    return None


def _blame(column: list[Any], rows: list[tuple[int, Instance]], count: int, observations: list[Observation]) -> set[str]:
    """The model parameters whose builds change the value of some instance."""
    blamed = set()
    for index, (o, _) in enumerate(rows):
        before, after = column[index % count], column[index]
        if o and before is not MISSING and after is not MISSING and repr(before) != repr(after):
            blamed.add(observations[o].changed)
    return {name for name in blamed if name is not None}


def _comments(cls: Class, rows: list[tuple[int, Instance]], scope: Scope, parameters: set[str]) -> dict[tuple[str, ...], str]:
    """`# (B, 3 * n_embd)` per line (by its targets): each size as every virtual instance has it, else a
    formula of the class's parameters, else `*`."""
    names = Scope(scope.count, {n: v for n, v in scope.names.items() if n in parameters})
    names.found = [(formula, values) for formula, values in scope.found if formula.names <= parameters]
    comments = {}
    for index, line in enumerate(cls.first.lines):
        shapes = [None if instance.lines[index].absent else instance.lines[index].shapes for _, instance in rows]
        comments[line.targets] = _comment([s for s in shapes if s is not None], shapes, names)
    return comments


def _comment(present: list[tuple], shapes: list[tuple | None], scope: Scope) -> str:
    if len({len(s) for s in present}) > 1:
        return "# (the number of pieces varies by call)"
    pieces = []
    for output in range(len(present[0])):
        types = [s[output] for s in present]
        if len({len(t.shape) for t in types}) > 1:
            pieces.append("(rank varies by call)")
            continue
        dims = [fit.dimension([MISSING if s is None else s[output].shape[d] for s in shapes], scope) for d in range(len(types[0].shape))]
        if types[0].batched:
            dims.insert(0, "B")
        pieces.append(f"({', '.join(dims)}{',' if len(dims) == 1 else ''})")
    return "# " + ", ".join(pieces)


def _unit_op(instance: Instance, unit: str) -> str:
    """A name for an optional function: its op (`relu`)."""
    ops = [line.op for line in instance.lines if optional.top(optional.line_path(line)) == unit and line.op]
    return ops[0] if ops and identifier(ops[0]) else "optional"


def _agree(a: list[Any], b: list[Any]) -> bool:
    """Equal wherever both have a value."""
    return all(repr(x) == repr(y) for x, y in zip(a, b) if x is not MISSING and y is not MISSING)


def _merged(a: list[Any] | None, b: list[Any]) -> list[Any]:
    return b if a is None else [y if x is MISSING else x for x, y in zip(a, b)]


def _next_name(name: str) -> str:
    stem, _, number = name.rpartition("_")
    return f"{stem}_{int(number) + 1}" if stem and number.isdigit() else f"{name}_2"
