"""What a written layer says before it is expanded: its id (a template evaluated), its inputs (`from`,
whose references may be templates of the copy index) and what its `op` names."""

from __future__ import annotations

from typing import Any

from ..diagnostics import Span, did_you_mean
from ..link import Source
from ..load import JsonPath
from ._context import Body, Callee, Context, Frame, Repetition, Written
from ._expressions import template, templated_name


def written_at(ctx: Context, layer: dict, path: JsonPath, frame: Frame) -> Written:
    """The layer at `path`, its id evaluated with the parameters in `frame` if it is a template
    (`denseblock{$s + 1}`)."""
    local = layer.get("id")
    if local is not None and "{" in local:
        local = templated_name(ctx, local, frame.params, ctx.span((*path, "id")))
    return Written(layer, path, local)


def id_span(ctx: Context, written: Written) -> Span:
    """Where the layer's name is written: its id, else the layer."""
    return ctx.span(written.at("id")) if "id" in written.layer else ctx.span(written.path)


def templated(refs: Any) -> bool:
    """True if a `from` holds a reference template such as `cv2.{$i}`."""
    return any(isinstance(ref, str) and "{" in ref for ref in (refs if isinstance(refs, list) else [refs]))


def sources_of(ctx: Context, written: Written, frame: Frame, previous: list[Source], rep: Repetition = None) -> list[Source]:
    """The layer's inputs as written; without `from`, `previous`. In a repeat's copy `rep`, `$i` is its index."""
    refs = written.layer.get("from")
    if refs is None:
        return previous
    single = not isinstance(refs, list)
    refs = [refs] if single else refs
    params = frame.params if rep is None else {**frame.params, "i": rep[0]}
    sources = []
    for i, ref in enumerate(refs):
        span = ctx.span(written.at("from") if single else written.at("from", i))
        text = template(ctx, ref, params, span) if isinstance(ref, str) and "{" in ref else str(ref)
        sources.append(Source(frame.lookup + text, span, frame.lookup))
    return sources


def callee_of(ctx: Context, written: Written, path: str) -> Callee:
    """The op, block or group the layer at node path `path` names; None after reporting an unknown op."""
    layer = written.layer
    if "layers" in layer:
        return Body(None, layer)
    op = layer["op"]
    if op in ctx.registry:
        return ctx.registry.get(op)
    if op in ctx.blocks:
        if "activation" in layer:
            message = f"layer '{path}': 'activation' applies to ops, not to block '{op}'"
            ctx.error("E0309", message, ctx.document.key_span(written.at("activation")), "add an activation layer after it")
        return Body(op, ctx.blocks[op])
    known = [*ctx.registry.names, *ctx.blocks]
    hint = did_you_mean(op, known) or "ops from plugins need --plugin MODULE or an installed plugin package"
    ctx.error("E0301", f"layer '{path}': unknown op '{op}'", ctx.span(written.at("op")), hint)
    return None
