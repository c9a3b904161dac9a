"""Static costs of a typed graph, without torch: MACs and memory at the symbolic sizes' defaults,
and an estimate of the memory one training step needs.

The training-step estimate adds the float32 weights, their gradients, the optimizer's state (per
weight: Adam and AdamW keep 2 tensors, SGD with momentum, RMSprop and Adagrad 1, plain SGD none)
and the activations autograd keeps: every layer's output at the batch size, except the outputs of
ops that return views of their input (`OpDef.view`: reshapes, permutes, slices, picks). It leaves out the
allocator's overhead, kernels' workspaces and the data loader: a lower bound to compare with a
budget or a device, not a measurement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .dims import Point, at
from .ir import Kind, TypedGraph, TypedNode
from .ops import BUILTIN, Registry

DTYPE_BYTES = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "bool": 1}
"""The builtin ops whose outputs share their input's storage (`OpDef.view`): they allocate no activation memory."""


@dataclass(frozen=True)
class TrainMemory:
    """Bytes one training step holds, by kind."""

    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations


def default_point(graph: TypedGraph) -> Point:
    """Every symbolic size at its default."""
    return {name: size.example for name, size in graph.sizes.items()}


def macs(graph: TypedGraph) -> int:
    """MACs per sample at the symbolic sizes' defaults."""
    return int(at(graph.total_macs, default_point(graph)))


def output_bytes(node: TypedNode, batch: int, point: Point) -> int:
    """The bytes of a node's outputs at `batch` (values without a batch dimension count once)."""
    total = 0
    for t in node.outputs:
        count = 1
        for size in at(t.shape, point):
            count *= size
        total += count * DTYPE_BYTES.get(t.dtype, 4) * (batch if t.batched else 1)
    return total


def activation_bytes(graph: TypedGraph, batch: int, registry: Registry = BUILTIN) -> int:
    """The bytes of every layer output a forward pass allocates at `batch`: views excluded, by the ops
    of `registry` (default: the builtins; pass the analysis's registry for plugin ops' views)."""
    point = default_point(graph)
    return sum(output_bytes(node, batch, point) for node in graph.nodes.values() if node.kind is Kind.CALL and not _is_view(node, registry))


def _is_view(node: TypedNode, registry: Registry) -> bool:
    op = registry.get(node.node.op)
    return op is not None and bool(op.view)


def optimizer_states(settings: Mapping[str, Any] | None) -> int:
    """Tensors the optimizer keeps per weight (AdamW, the default, keeps 2)."""
    settings = settings or {"type": "adamw"}
    kind = settings.get("type", "adamw")
    if kind in ("adam", "adamw"):
        return 3 if settings.get("amsgrad") else 2
    if kind == "sgd":
        return 1 if settings.get("momentum", 0) else 0
    if kind == "rmsprop":
        return 1 + bool(settings.get("momentum", 0)) + bool(settings.get("centered"))
    return 1


def train_memory(graph: TypedGraph, batch: int, optimizer: Mapping[str, Any] | None = None, registry: Registry = BUILTIN) -> TrainMemory:
    """The estimate described above, for one step at `batch` with `optimizer` (a train section's); views
    are known from `registry` as in `activation_bytes`."""
    weights = graph.total_params * DTYPE_BYTES["float32"]
    return TrainMemory(weights, weights, weights * optimizer_states(optimizer), activation_bytes(graph, batch, registry))
