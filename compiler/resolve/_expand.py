"""Expansion: the walk over a layer list, into block calls, groups and repeat copies, that names every
node, defines every local name and records what each name stands for (see the package's naming rules)."""

from __future__ import annotations

import dataclasses

from ..diagnostics import Span
from ..ir import Deferred, Scope
from ..link import Source
from ..load import JsonPath
from ..ops import OpDef
from ._arguments import block_args
from ._context import Abort, Body, Callee, Context, Frame, Positions, Use, Written
from ._expressions import condition
from ._layer_fields import callee_of, id_span, sources_of, templated, written_at
from ._nodes import add_node
from ._repeats import Repeat, copy_names, repeat_of

MAX_BLOCK_DEPTH = 32


def expand_layers(ctx: Context, layers: list, path: JsonPath, frame: Frame, previous: list[Source]) -> list[Source]:
    """Expand a layer list; each layer consumes the previous one by default. Returns the last output."""
    for index, layer in enumerate(layers):
        previous = _expand_layer(ctx, written_at(ctx, layer, (*path, index), frame), frame, previous)
    return previous


def _expand_layer(ctx: Context, written: Written, frame: Frame, previous: list[Source]) -> list[Source]:
    layer, local = written.layer, written.local
    sources = previous if "repeat" in layer and templated(layer.get("from")) else sources_of(ctx, written, frame, previous)
    guard = condition(ctx, written, frame)
    if guard is False:
        return _skip(ctx, written, frame, sources, previous)
    use = Use(callee_of(ctx, written, frame.prefix + (local or str(frame.positions.next))), written, sources)
    repeat = repeat_of(ctx, written, frame)
    if isinstance(guard, Deferred):  # its layers keep their positions even when it is skipped
        guard = dataclasses.replace(guard, gap=(frame.prefix, frame.positions.next))
    if repeat is None and _is_inline(use.callee):
        return [_expand_named_inline(ctx, use, frame, guard)]
    flat = repeat is not None and repeat.names == "flat"
    position = None if flat else frame.positions.take()
    if isinstance(guard, Deferred):
        frame = dataclasses.replace(frame, guards=(*frame.guards, guard))
    if local is None and position is not None and (repeat is None or repeat.names is None):  # named by its position
        frame = frame.at_position(position)
    if repeat is not None:
        return _expand_repeat(ctx, use, frame, local if local is not None else position, repeat)
    name = frame.prefix + (local if local is not None else position)
    if use.callee is None:
        ctx.define(name, ctx.span(written.path))
        return _alias_to(ctx, name, sources)
    output = _expand_instance(ctx, use, frame, name)
    _lookup_alias(ctx, written, frame, name)
    return [output]


def _expand_repeat(ctx: Context, use: Use, frame: Frame, key: str | None, repeat: Repeat) -> list[Source]:
    """The copies of a repeated layer. The layer's name (`key`: its id, or its position unless its copies
    take positions themselves) is the last copy, and `name.*` every copy."""
    written = use.written
    base = frame.prefix + key if key is not None else ""
    if key is not None:
        ctx.define(base, id_span(ctx, written))
    names = copy_names(ctx, written, frame, base, repeat)
    if use.callee is None or names is None:
        return _alias_to(ctx, base, use.sources)
    copies: list[Source] = []
    spliced = repeat.names == "flat" and _is_inline(use.callee)
    for rep, name in enumerate(names):
        feed = sources_of(ctx, written, frame, use.sources, (rep, repeat.count)) if not repeat.chain else copies[-1:] or use.sources
        copy = dataclasses.replace(use, sources=feed, rep=(rep, repeat.count))
        if spliced:
            copies.append(_expand_inline(ctx, copy, frame, None))
            continue
        copy_frame = frame if name is not None else frame.at_position(frame.positions.take())
        name = name or copy_frame.prefix + str(copy_frame.numbered[-1][1])
        copies.append(_expand_instance(ctx, copy, copy_frame, name))
    if key is not None:
        ctx.expansion.repeats[frame.lookup + key] = [c.path for c in copies]
        ctx.alias(base, copies[-1].path)
        _lookup_alias(ctx, written, frame, base)
    return [copies[-1]]


def _skip(ctx: Context, written: Written, frame: Frame, sources: list[Source], previous: list[Source]) -> list[Source]:
    """A layer whose condition is false: it is its first input, and takes no position. A learnable
    tensor has no input: the flow passes over it, and a reference to it is an error (E0314)."""
    op = ctx.registry.get(written.layer.get("op", ""))
    tensor = op is not None and op.makes_tensor
    passed = previous[:1] if tensor else sources[:1] or previous[:1]
    if written.local is None:
        return passed
    name = frame.prefix + written.local
    ctx.define(name, ctx.span(written.at("id")))
    _lookup_alias(ctx, written, frame, name)
    ctx.expansion.skipped.add(name)
    if tensor:
        ctx.expansion.absent[name] = ctx.span(written.at("when"))
        return passed
    if passed:
        ctx.alias(name, passed[0].path)
    return [Source(name, ctx.span(written.path), frame.lookup)]


def _alias_to(ctx: Context, path: str, sources: list[Source]) -> list[Source]:
    """`path` stands for the first of `sources` (a layer that expands to nothing after an error)."""
    if sources:
        ctx.alias(path, sources[0].path)
    return [Source(path, sources[0].span if sources else Span(ctx.document.path, 1, 1), "")]


def _lookup_alias(ctx: Context, written: Written, frame: Frame, name: str) -> None:
    """Inside an inline block, a layer's local name is looked up in the block's own namespace."""
    if written.local is not None and frame.lookup != frame.prefix:
        ctx.expansion.lookups[frame.lookup + written.local] = ctx.span(written.path)
        ctx.alias(frame.lookup + written.local, name)


def _expand_named_inline(ctx: Context, use: Use, frame: Frame, guard: bool | Deferred | None) -> Source:
    """A call of an inline block, whose id (if it has one) names its last layer's output."""
    last = _expand_inline(ctx, use, frame, guard)
    local = use.written.local
    if local is not None:
        ctx.define(frame.prefix + local, ctx.span(use.written.at("id")))
        ctx.alias(frame.prefix + local, last.path)
        _lookup_alias(ctx, use.written, frame, frame.prefix + local)
    return last


def _expand_inline(ctx: Context, use: Use, frame: Frame, guard: bool | Deferred | None) -> Source:
    """The layers of an inline block call take names and positions in the caller's list; its local
    names are looked up in a namespace of their own."""
    lookup = f"{frame.lookup}#{next(ctx.serials)}."
    guards = frame.guards + ((guard,) if isinstance(guard, Deferred) else ())
    return _expand_body(ctx, use, frame, dataclasses.replace(frame, lookup=lookup, guards=guards))


def _expand_instance(ctx: Context, use: Use, frame: Frame, name: str) -> Source:
    """One op node, tensor, block call or group at `name`; returns its output. A layer is defined at
    its id, a repeat's copy at the layer."""
    ctx.define(name, id_span(ctx, use.written) if use.rep is None else ctx.span(use.written.path))
    output = Source(name, ctx.span(use.written.path), "")
    if isinstance(use.callee, OpDef):
        add_node(ctx, use, frame, name)
        return output
    scopes = (*frame.scopes, Scope(name, use.callee.block))
    inner = dataclasses.replace(frame, prefix=name + ".", lookup=name + ".", positions=Positions(), scopes=scopes)
    ctx.alias(name, _expand_body(ctx, use, frame, inner).path)
    return output


def _expand_body(ctx: Context, use: Use, frame: Frame, inner: Frame) -> Source:
    """The layers of a block or group, in `inner`, fed by the use's sources."""
    body: Body = use.callee
    if body.block is not None:
        inner = _block_frame(ctx, use, frame, inner)
    names = body.spec.get("inputs", ["input"])
    if len(names) != len(use.sources):
        _report_input_count(ctx, use, inner, len(names))
        if use.sources:  # its layers would only report references to the missing inputs
            return use.sources[0]
    for input_name, source in zip(names, use.sources):
        ctx.define(inner.lookup + input_name, source.span)
        ctx.alias(inner.lookup + input_name, source.path)
    body_path = ("blocks", body.block, "layers") if body.block else use.written.at("layers")
    entry = [Source(inner.lookup + names[0], ctx.span(use.written.path), inner.lookup)]
    last = expand_layers(ctx, body.spec["layers"], body_path, inner, entry)[0]
    if "output" not in body.spec:
        return last
    output_span = ctx.span(("blocks", body.block, "output") if body.block else use.written.at("output"))
    output = Source(inner.lookup + str(body.spec["output"]), output_span, inner.lookup)
    ctx.expansion.block_outputs.append(output)
    return output


def _block_frame(ctx: Context, use: Use, frame: Frame, inner: Frame) -> Frame:
    """`inner` with the block's parameters; E0309 (and abort) if the block calls itself."""
    block = use.callee.block
    if block in frame.blocks or len(frame.blocks) >= MAX_BLOCK_DEPTH:
        ctx.error("E0309", f"block '{block}' calls itself (via {' → '.join(frame.blocks)})", ctx.span(use.written.path))
        raise Abort
    params = block_args(ctx, use, frame, inner.lookup)
    return dataclasses.replace(inner, params=params, blocks=(*frame.blocks, block))


def _report_input_count(ctx: Context, use: Use, inner: Frame, wanted: int) -> None:
    """E0307: the block or group takes `wanted` inputs, not as many as the use gives it."""
    block, count = use.callee.block, len(use.sources)
    what = f"block '{block}'" if block else "a group"
    message = f"layer '{inner.prefix.rstrip('.') or use.written.layer.get('id', '')}': {what} takes {wanted} input(s), got {count}"
    chained = use.rep is not None and use.rep[0] > 0 and count == 1
    hint = "a chained repeat feeds each copy only the previous copy: give copies inputs with a `from` template, or `chain: false`"
    ctx.error("E0307", message, ctx.span(use.written.path), hint if chained else None)


def _is_inline(callee: Callee) -> bool:
    """True for a block declared `inline: true` (not for an op or a group)."""
    return isinstance(callee, Body) and callee.inline
