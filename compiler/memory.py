"""Whether a model can be built here: its weights and one forward pass at the export batch, against the
memory this process may still take. A model that cannot fit is refused (E0407) before anything is
allocated, instead of dying in the allocator. Torch-free: the estimate comes from `compiler.costs`."""

from __future__ import annotations

import resource
from pathlib import Path

from .costs import DTYPE_BYTES, activation_bytes, default_point
from .diagnostics import Diagnostic
from .dims import at
from .ir import OUTPUT, Kind, TypedGraph
from .ops import Call, Registry

BUILD_BATCH = 3
"""The largest batch a build runs (the export check's second batch)."""


def available_bytes() -> int | None:
    """Memory this process may still allocate: the system's available memory, capped by an address-space
    or data limit where one is set; None where neither can be read."""
    limits = [_kib_field("/proc/meminfo", "MemAvailable")]
    for kind, used in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        soft, _ = resource.getrlimit(kind)
        if soft != resource.RLIM_INFINITY:
            limits.append(max(0, soft - (_kib_field("/proc/self/status", used) or 0)))
    known = [limit for limit in limits if limit is not None]
    return min(known) if known else None


def _kib_field(path: str, field: str) -> int | None:
    """A `Field:  123 kB` line of a /proc file, in bytes."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def build_bytes(graph: TypedGraph, registry: Registry) -> tuple[int, int]:
    """The float32 weights' bytes, and one forward pass's at BUILD_BATCH: its layer outputs and the
    largest scratch any layer's kernel takes while it runs."""
    point = default_point(graph)
    scratch = [
        at(registry.get(node.node.op).scratch(Call(node.args, node.input_types)), point) * DTYPE_BYTES.get(node.outputs[0].dtype, 4)
        for node in graph.layers.values()
        if node.kind is Kind.CALL
    ]
    forward = activation_bytes(graph, BUILD_BATCH, registry) + BUILD_BATCH * max(scratch, default=0)
    return graph.total_params * DTYPE_BYTES["float32"], forward


def unaffordable(graph: TypedGraph, registry: Registry, available: int | None = None) -> list[Diagnostic]:
    """E0407 at the model's output where building it (weights, and a forward pass to verify it) needs
    more memory than is available; nothing where it fits or the available memory is unknown."""
    available = available_bytes() if available is None else available
    weights, activations = build_bytes(graph, registry)
    if available is None or weights + activations <= available:
        return []
    message = (
        f"building this model needs at least {_gib(weights + activations)} (weights {_gib(weights)}, one forward pass at batch "
        f"{BUILD_BATCH} {_gib(activations)}), more than the {_gib(available)} this process may allocate"
    )
    hint = "make it smaller, or build it on a machine with more memory"
    return [Diagnostic("E0407", message, graph.nodes[OUTPUT].node.span, hint)]


def _gib(count: int) -> str:
    return f"{count / 2**30:,.2f} GiB"
