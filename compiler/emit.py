"""Emit: a typed graph → a torch.fx GraphModule whose submodules sit at the spec's ids."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import fx

from .infer import TypedGraph
from .ops import Call, FunctionEmit, ModuleEmit, OpDef, Registry

LAYER_KEY = "nncompile_layer"


def emit(typed: TypedGraph, registry: Registry) -> fx.GraphModule:
    """Build the module through the fx Graph API: placeholders, call_module/call_function, output.

    The fx node holding each layer's output carries the layer's name in `node.meta[LAYER_KEY]`,
    so passes (and tests) can line fx nodes up with the typed graph.
    """
    graph = fx.Graph()
    values: dict[str, fx.Node] = {name: graph.placeholder(name) for name in typed.inputs}
    modules: dict[str, torch.nn.Module] = {}
    for name, node in typed.nodes.items():
        op = registry.get(node.node.op)
        value = _apply(graph, modules, name, op, node.call, [values[i] for i in node.inputs])
        if node.node.activation:
            activation = registry.get(node.node.activation)
            defaults = {p.name: p.default for p in activation.params}
            value = _apply(graph, modules, name, activation, Call(defaults, (node.output,)), [value])
        value.meta[LAYER_KEY] = name
        values[name] = value
    outputs = [values[name] for name in typed.outputs]
    graph.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
    graph.lint()
    module = fx.GraphModule(_module_tree(modules), graph, class_name=_class_name(typed.name))
    module.nncompile_inputs = {name: (list(t.shape), t.dtype) for name, t in typed.inputs.items()}
    return module


def _apply(graph: fx.Graph, modules: dict, name: str, op: OpDef, call: Call, args: list[fx.Node]) -> fx.Node:
    spec = op.emit
    if isinstance(spec, ModuleEmit):
        modules[name] = resolve_target(spec.target)(**spec.kwargs(call))
        return graph.call_module(name, tuple(args))
    assert isinstance(spec, FunctionEmit)
    function, kwargs = resolve_target(spec.target), spec.kwargs(call)
    if spec.inputs == "list":
        return graph.call_function(function, (list(args),), kwargs)
    if spec.inputs == "fold":
        value = args[0]
        for other in args[1:]:
            value = graph.call_function(function, (value, other), kwargs)
        return value
    return graph.call_function(function, tuple(args), kwargs)


def _module_tree(modules: dict[str, torch.nn.Module]) -> torch.nn.Module:
    """Nest modules by their dotted names. Unlike a dict root (copied shallowest-first), GraphModule
    copies a module root in graph order, so state_dict keys come in the order a hand-written
    module registers them."""
    root = torch.nn.Module()
    for name, module in modules.items():
        parent = root
        *path, leaf = name.split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        parent.add_module(leaf, module)
    return root


def resolve_target(target: str) -> Callable[..., Any]:
    """'torch.nn:Conv2d' → the class; targets come from op definitions, never from specs."""
    module_name, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def _class_name(name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(w[:1].upper() + w[1:] for w in words if w) or "Model"


def example_inputs(module: fx.GraphModule, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the declared shapes (integer inputs are zeros: always valid indices)."""
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for shape, dtype in module.nncompile_inputs.values():
        torch_dtype = getattr(torch, dtype)
        if torch_dtype.is_floating_point:
            tensors.append(torch.randn(batch, *shape, generator=generator).to(torch_dtype))
        else:
            tensors.append(torch.zeros(batch, *shape, dtype=torch_dtype))
    return tuple(tensors)
