"""Resolve: expand blocks, groups, repeats and conditions; substitute parameters; name every node; then
`link` follows the references and orders the graph. What is left open are the values that read
inferred shapes (`Deferred`), which infer answers. `resolve` is the stage; the modules beside it are
its steps (`_expand` walks the layer lists, the others each read one part of a layer).

Naming, the one rule set that makes `state_dict` keys come out as a hand-written module's:
- a layer with an `id` is named `prefix + id`; one without is named by its position among the present
  layers of its list (`0`, `1`, …, like `nn.Sequential`); a layer skipped by a condition that does not read
  shapes takes no position;
- a block call or group nests its layers under its name (`layer1.0.conv1`), unless the block is declared
  `inline`: then its layers take names and positions in the caller's list;
- `repeat: N` names its copies `name.0 … name.N-1`; `repeat: {count: N, names: TEMPLATE}` names them by
  the template (`"denselayer{$i + 1}"`), under the layer's id when it has one; `names: flat` gives each
  copy the next position of the enclosing list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..declarations import check_blocks, inputs
from ..diagnostics import Diagnostic, has_errors, sort_key
from ..ir import Graph
from ..link import Expansion, Source, link
from ..load import Document
from ..ops import Registry
from ..params import model_values
from . import _expand
from ._context import Abort, Context, Frame, Positions

__all__ = ["resolve"]


def resolve(document: Document, registry: Registry, overrides: Mapping[str, Any] | None = None) -> tuple[Graph | None, list[Diagnostic]]:
    """Expand and link the spec; returns the graph (None if there are errors) and all diagnostics.

    Raises UsageError for overrides that name no model parameter or size, or have the wrong type."""
    values, diagnostics = model_values(document, overrides or {})
    ctx = Context(document, registry, values.params, Expansion(document), list(diagnostics))
    ctx.diagnostics.extend(check_blocks(document))
    types, spans, problems = inputs(document, values)
    ctx.diagnostics.extend(problems)
    for name, span in spans.items():
        ctx.define(name, span)
    ctx.expansion.inputs.update(types)
    ctx.expansion.input_spans.update(spans)
    entry = [Source(next(iter(types)), document.span(("inputs",)), "")]
    try:
        last = _expand.expand_layers(ctx, document.data["layers"], ("layers",), Frame("", "", values.params, Positions()), entry)
    except Abort:
        return None, sorted(set(ctx.diagnostics), key=sort_key)
    graph, linked = link(ctx.expansion, document.data.get("name", "model"), _outputs(document, last), has_errors(ctx.diagnostics))
    return graph, sorted(set(ctx.diagnostics + linked), key=sort_key)


def _outputs(document: Document, last: list[Source]) -> list[Source]:
    """The model's outputs as written (`outputs:`, one reference or a list), else the last layer's."""
    outputs = document.data.get("outputs")
    if outputs is not None and not isinstance(outputs, list):
        return [Source(str(outputs), document.span(("outputs",)), "")]
    return [Source(str(ref), document.span(("outputs", i)), "") for i, ref in enumerate(outputs)] if outputs else last
