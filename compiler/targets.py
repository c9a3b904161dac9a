"""Export-readiness: what would not export to a target, known without torch.

Every builtin op exports to TorchScript, torch.export and ONNX at fixed sizes, and most do with
symbolic sizes too; `LIMITS` lists the exceptions, each found (and kept true by
`tests/test_targets.py`) by exporting every op, at fixed and at symbolic sizes, to every target.
Plugin ops are not in the table: their exports are not checked here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .diagnostics import Diagnostic
from .dims import Undecided, is_symbolic
from .ir import Kind, TypedGraph, TypedNode
from .ops.attention import windows_along
from .ops.core import pair

SUFFIXES = {".pt": "torchscript", ".pt2": "export", ".onnx": "onnx"}
TARGETS = tuple(SUFFIXES.values())
"""`--target` names: TorchScript (.pt), torch.export (.pt2), ONNX (.onnx)."""
TARGET_NAMES = {"torchscript": "TorchScript (.pt)", "export": "torch.export (.pt2)", "onnx": "ONNX (.onnx)"}


@dataclass(frozen=True)
class Limit:
    """Layers of `ops` for which `applies` holds do not export to `target`, for `reason`."""

    target: str
    ops: frozenset[str]
    applies: Callable[[TypedNode], bool]
    reason: str


def _spatial_symbolic(node: TypedNode) -> bool:
    return is_symbolic(node.input_types[0].shape[1:])


def _map_symbolic(node: TypedNode) -> bool:
    return is_symbolic(node.input_types[0].shape[:2])


def _one_window_somewhere(node: TypedNode) -> bool:
    """True if the padded map is a single window along some dim at some sizes and not at others (the
    module then shifts or not, a branch the ONNX graph keeps as traced)."""
    for size, window in zip(node.input_types[0].shape[:2], pair(node.args["window"])):
        try:
            bool(windows_along(size, window) <= 1)
        except Undecided:
            return True
    return False


def _ceil_over_symbolic(node: TypedNode) -> bool:
    return bool(node.args["ceil_mode"]) and _spatial_symbolic(node)


def _adaptive_over_symbolic(node: TypedNode) -> bool:
    size = node.args["size"]
    sizes = size if isinstance(size, list) else [size] * (len(node.input_types[0].shape) - 1)
    spatial = node.input_types[0].shape[1:]
    return any(is_symbolic(dim) and out != 1 for dim, out in zip(spatial, sizes))


def _not_four_dims(node: TypedNode) -> bool:
    return any(len(t.full_shape) != 4 for t in node.input_types[:3])


def _no_bias(node: TypedNode) -> bool:
    return not node.args["bias"]


_POOLS = frozenset({"maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d"})
LIMITS = (
    Limit(
        "torchscript",
        frozenset({"multihead_attention"}),
        _no_bias,
        "nn.MultiheadAttention without bias does not compile with TorchScript (a torch limitation): "
        "use bias: true, or export to .pt2 or .onnx",
    ),
    Limit(
        "export",
        _POOLS,
        _ceil_over_symbolic,
        "ceil_mode over a symbolic size: torch.export fixes the size (set ceil_mode: false, or fix the size with --set)",
    ),
    Limit(
        "onnx",
        frozenset({"maxpool1d"}),
        _ceil_over_symbolic,
        "ceil_mode over a symbolic size: the ONNX model fails at other sizes (fix the size with --set)",
    ),
    Limit(
        "onnx",
        frozenset({"adaptive_avgpool1d", "adaptive_avgpool2d"}),
        _adaptive_over_symbolic,
        "adaptive pooling to a size other than 1 over a symbolic size: ONNX fixes its windows at the example size "
        "(fix the size with --set, or pool to 1)",
    ),
    Limit(
        "export",
        frozenset({"shifted_window_attention"}),
        _map_symbolic,
        "window attention over a symbolic size: torch.export fixes the size where the window padding and shift "
        "are decided (fix the sizes with --set)",
    ),
    Limit(
        "onnx",
        frozenset({"shifted_window_attention"}),
        _one_window_somewhere,
        "window attention whose map is one window at some sizes of its range and more at others: ONNX keeps the "
        "shift decided at the example size (fix the sizes with --set)",
    ),
    Limit(
        "onnx",
        frozenset({"scaled_dot_product_attention"}),
        _not_four_dims,
        "ONNX exports attention only over 4-D query, key and value ([B, heads, L, E]): reshape to heads first",
    ),
)


def export_limits(graph: TypedGraph, target: str) -> list[Diagnostic]:
    """E0409 for every layer of `graph` that would not export to `target`."""
    found = []
    for node in graph.nodes.values():
        if node.kind is not Kind.CALL:
            continue
        for limit in LIMITS:
            if limit.target == target and node.node.op in limit.ops and limit.applies(node):
                message = f"layer '{node.name}' ({node.node.op}) would not export to {TARGET_NAMES[target]}: {limit.reason}"
                found.append(Diagnostic("E0409", message, node.node.span))
    return found
