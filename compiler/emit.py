"""Emit: a typed graph → a torch.fx GraphModule whose submodules and learnable tensors sit at the spec's
ids, registered in the order the spec writes them (as a hand-written `__init__` would)."""

from __future__ import annotations

import contextlib
import keyword
import operator
import re
from collections.abc import Iterator
from typing import Any

import torch
from torch import fx

from .diagnostics import Diagnostic, SpecError
from .dims import Size
from .ir import Kind, TypedGraph, TypedNode
from .memory import unaffordable
from .nn import initialize
from .ops import Call, FunctionEmit, ModuleEmit, OpDef, Registry, plugin_failure, resolve_target

LAYER_KEY = "nncompile_layer"


def emit(typed: TypedGraph, registry: Registry) -> fx.GraphModule:
    """Build the module through the fx Graph API: placeholder, get_attr, call_module/call_function, output.

    The fx node holding each node's output carries the node's name in `node.meta[LAYER_KEY]` (and its
    output index, for an op with several), so passes and tests can line fx nodes up with the typed graph.
    """
    problems = unaffordable(typed, registry)
    if problems:
        raise SpecError(problems)
    graph = fx.Graph()
    values: dict[str, list[fx.Node]] = {}
    owned: list[tuple[int, str, torch.nn.Module | torch.nn.Parameter]] = []
    for name, node in typed.nodes.items():
        if node.kind is Kind.INPUT:
            values[name] = [graph.placeholder(name)]
        elif node.kind is Kind.TENSOR:
            with _allocating(node):
                owned.append((node.node.order, name, _tensor(node)))
            values[name] = [graph.get_attr(name)]
        elif node.kind is Kind.CALL:
            args = [values[ref.node][ref.index or 0] for ref in node.inputs]
            with _allocating(node):
                values[name] = _call(graph, owned, node, registry.get(node.node.op), args)
        else:
            outputs = [values[ref.node][ref.index or 0] for ref in node.inputs]
            graph.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
        for index, value in enumerate(values.get(name, ())):
            value.meta[LAYER_KEY] = name if len(values[name]) == 1 else f"{name}.{index}"
    graph.lint()
    root = _module_tree(owned)
    module = fx.GraphModule(root, graph, class_name=_class_name(typed.name))
    _adopt(module, root)
    for node in typed.layers.values():
        for attribute, ref in node.node.shares.items():
            setattr(module.get_submodule(node.name), attribute, getattr(module.get_submodule(ref.node), attribute))
    module.nncompile_inputs = {name: ([_size_name(s) for s in t.shape], t.dtype) for name, t in typed.inputs.items()}
    module.nncompile_sizes = {name: _size_record(size) for name, size in typed.sizes.items()}
    module.nncompile_outputs = list(typed.outputs)
    return module


@contextlib.contextmanager
def _allocating(node: TypedNode) -> Iterator[None]:
    """A layer whose weights the allocator refuses is E0407 at the layer, not a crash."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        if not _out_of_memory(error):
            raise
        message = f"layer '{node.name}' ({node.node.op}): its weights cannot be allocated: {str(error).splitlines()[0][:200]}"
        raise SpecError([Diagnostic("E0407", message, node.node.span)]) from None


def _out_of_memory(error: Exception) -> bool:
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


def _call(graph: fx.Graph, owned: list, node: TypedNode, op: OpDef, args: list[fx.Node]) -> list[fx.Node]:
    spec = op.emit
    call = Call(node.args, node.input_types)
    if isinstance(spec, ModuleEmit):
        owned.append((node.node.order, node.name, _construct(node, op, spec, call)))
        if spec.self_inputs and len(args) == 1:
            args = args * spec.self_inputs
        value = graph.call_module(node.name, tuple(args), dict(spec.call_kwargs))
        if spec.select is not None:
            value = graph.call_function(operator.getitem, (value, spec.select))
    else:
        value = _function(graph, spec, call, args)
    if not node.tuple_valued:
        return [value]
    return [graph.call_function(operator.getitem, (value, index)) for index in range(len(node.outputs))]


def _construct(node: TypedNode, op: OpDef, spec: ModuleEmit, call: Call) -> torch.nn.Module:
    """The layer's module; a plugin's target that does not import, or a constructor that raises, is
    E0406 at the layer (the plugin's bug), not a crash."""
    try:
        return resolve_target(spec.target)(**spec.kwargs(call))
    except Exception as error:
        failure = plugin_failure(op, error, " to build")
        if failure is None or _out_of_memory(error):
            raise
        hint = f"its module '{spec.target}' must be importable where nncompile runs (a plugin file's folder is on the path)"
        raise SpecError([Diagnostic("E0406", f"layer '{node.name}': {failure}", node.node.span, hint)]) from None


def _function(graph: fx.Graph, spec: FunctionEmit, call: Call, args: list[fx.Node]) -> fx.Node:
    target = spec.target if isinstance(spec.target, str) else spec.target(call)
    function, kwargs = resolve_target(target), spec.kwargs(call)
    if len(args) == 1 and spec.operand is not None:
        return graph.call_function(function, (args[0], spec.operand(call)), kwargs)
    if spec.inputs == "list":
        return graph.call_function(function, (list(args),), kwargs)
    if spec.inputs == "fold":
        value = args[0]
        for other in args[1:]:
            value = graph.call_function(function, (value, other), kwargs)
        return value
    return graph.call_function(function, tuple(args), kwargs)


def _tensor(node: TypedNode) -> torch.nn.Parameter:
    shape = node.output.shape
    parameter = torch.nn.Parameter(torch.empty(shape), requires_grad=node.args.get("trainable", True))
    initialize(parameter, node.args["init"])
    return parameter


def _module_tree(owned: list[tuple[int, str, torch.nn.Module | torch.nn.Parameter]]) -> torch.nn.Module:
    """Nest modules and learnable tensors by their dotted names, in spec order."""
    root = torch.nn.Module()
    for _, name, item in sorted(owned, key=lambda entry: entry[0]):
        parent = root
        *path, leaf = name.split(".")
        for part in path:
            if part not in parent._modules:
                parent.add_module(part, torch.nn.Module())
            parent = parent._modules[part]
        if isinstance(item, torch.nn.Parameter):
            parent.register_parameter(leaf, item)
        else:
            parent.add_module(leaf, item)
    return root


def _adopt(module: fx.GraphModule, root: torch.nn.Module) -> None:
    """GraphModule copies the modules its graph uses, in graph order; take the whole tree instead, in
    spec order, unused modules and tensors included (their state_dict keys belong to the model)."""
    module._modules.clear()
    module._parameters.clear()
    for name, parameter in root._parameters.items():
        module.register_parameter(name, parameter)
    for name, child in root._modules.items():
        module.add_module(name, child)


def _class_name(name: str) -> str:
    """`resnet18` → `Resnet18`; a name that is not a usable class name is prefixed: `none` → `ModelNone`."""
    words = re.split(r"[^A-Za-z0-9]+", name)
    text = "".join(w[:1].upper() + w[1:] for w in words if w) or "Model"
    return text if text[0].isalpha() and not keyword.iskeyword(text) else f"Model{text}"


def _size_name(size: Any) -> int | str:
    return size if isinstance(size, int) else str(size)


def _size_record(size: Size) -> dict[str, int]:
    return {"min": size.minimum, "max": size.maximum, "multiple_of": size.multiple_of, "default": size.example}


def example_inputs(module: fx.GraphModule, batch: int = 2, seed: int = 0, sizes: dict[str, int] | None = None) -> tuple[torch.Tensor, ...]:
    """Random inputs of the declared shapes, symbolic sizes at their defaults unless `sizes` says
    otherwise (integer inputs are zeros: always valid indices)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = {name: record["default"] for name, record in getattr(module, "nncompile_sizes", {}).items()} | (sizes or {})
    tensors = []
    for shape, dtype in module.nncompile_inputs.values():
        concrete = [chosen[s] if isinstance(s, str) else s for s in shape]
        torch_dtype = getattr(torch, dtype)
        if torch_dtype.is_floating_point:
            tensors.append(torch.randn(batch, *concrete, generator=generator).to(torch_dtype))
        else:
            tensors.append(torch.zeros(batch, *concrete, dtype=torch_dtype))
    return tuple(tensors)
