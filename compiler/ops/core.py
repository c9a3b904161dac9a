"""What an op is: its parameters, its shape and dtype rule, its costs, how it becomes PyTorch, where
it does not export, whether it is a view, and a sample for the tests.

Everything here is plain Python. How an op becomes torch is data (an import path and the
keyword arguments to call it with), resolved only by `compiler.emit`, so the check path
never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..targets import ExportLimit
    from .sample import Sample

REQUIRED: Any = object()
MAX_SIZE = 2**31 - 1  # sizes beyond this are never meant, and overflow torch's int32 kernels
MAX_ITEMS = 1024  # a list argument (a shape, dims, split sizes) longer than this is never meant, and each copy would carry it

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INT_DTYPES = ("int64", "int32")


@dataclass(frozen=True)
class TensorType:
    """A tensor flowing through the graph: its per-sample shape (the batch dimension is implicit) and
    dtype. A value without a batch dimension (a learnable tensor, `positions`) has `batched` False and
    `shape` is its whole shape; it broadcasts against batched values like torch does. Sizes are ints,
    or `dims.Dim` where they depend on symbolic input sizes."""

    shape: tuple[Any, ...]
    dtype: str = "float32"
    batched: bool = True
    bound: Any = None
    """For integer values known to lie in [0, bound) (the output of `positions`): the bound."""

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def full_shape(self) -> tuple[Any, ...]:
        """The shape torch sees: `"B"` stands for the batch dimension."""
        return ("B", *self.shape) if self.batched else self.shape

    def numel(self) -> Any:
        total = 1
        for size in self.shape:
            total *= size
        return total

    def with_shape(self, shape: tuple[Any, ...]) -> TensorType:
        return TensorType(tuple(shape), self.dtype, self.batched)


class ShapeError(Exception):
    """Raised by a shape rule; `param` names the argument the message is about, if any."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, eq=False)
class Param:
    """One argument of an op: its JSON Schema (the single source of truth for its type) and default."""

    name: str
    schema: Mapping[str, Any]
    default: Any = REQUIRED
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema", _bounded(self.schema))

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def is_scalar(self) -> bool:
        """True when no valid value is a list, so a list can only mean one value per repetition."""
        kinds = self.schema.get("type") or [alt.get("type") for alt in self.schema.get("anyOf", ())]
        kinds = kinds if isinstance(kinds, list) else [kinds]
        return "array" not in kinds


def _bounded(schema: Any) -> Any:
    """`schema` with every integer capped at MAX_SIZE where it has no maximum, and every list at
    MAX_ITEMS items: no size, stride or count beyond torch's int32 kernels, and no list argument long
    enough to slow check down as a spec repeats it, passes `check` (for every op, plugin ops included)."""
    if isinstance(schema, list):
        return [_bounded(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    result = {
        key: _bounded(value) if key in ("items", "anyOf", "properties") or isinstance(value, Mapping) else value
        for key, value in schema.items()
    }
    if "properties" in schema:
        result["properties"] = {key: _bounded(value) for key, value in schema["properties"].items()}
    kinds = schema.get("type")
    if (kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds)) and "maximum" not in schema:
        result["maximum"] = MAX_SIZE
    if (kinds == "array" or (isinstance(kinds, list) and "array" in kinds)) and "maxItems" not in schema:
        result["maxItems"] = MAX_ITEMS
    return result


def Int(name: str, default: Any = REQUIRED, minimum: int | None = None, doc: str = "") -> Param:
    bounds = {} if minimum is None else {"minimum": minimum}
    return Param(name, {"type": "integer", **bounds, "maximum": MAX_SIZE}, default, doc)


def Float(name: str, default: Any = REQUIRED, minimum: float | None = None, maximum: float | None = None, doc: str = "") -> Param:
    schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return Param(name, schema, default, doc)


def Bool(name: str, default: Any = REQUIRED, doc: str = "") -> Param:
    return Param(name, {"type": "boolean"}, default, doc)


def Choice(name: str, choices: tuple[str, ...], default: Any = REQUIRED, doc: str = "") -> Param:
    return Param(name, {"type": "string", "enum": list(choices)}, default, doc)


def IntOrPair(name: str, default: Any = REQUIRED, minimum: int = 0, doc: str = "") -> Param:
    item = {"type": "integer", "minimum": minimum, "maximum": MAX_SIZE}
    pair = {"type": "array", "items": item, "minItems": 2, "maxItems": 2}
    return Param(name, {"anyOf": [item, pair]}, default, doc)


def Ints(name: str, default: Any = REQUIRED, doc: str = "") -> Param:
    return Param(name, {"type": "array", "items": {"type": "integer"}, "minItems": 1}, default, doc)


@dataclass(frozen=True)
class Call:
    """An op applied: its argument values (defaults filled in) and the types of its inputs."""

    args: Mapping[str, Any]
    inputs: tuple[TensorType, ...]

    @property
    def x(self) -> TensorType:
        return self.inputs[0]


def resolve_target(target: str) -> Callable[..., Any]:
    """'torch.nn:Conv2d' → the class; targets come from op definitions, never from specs."""
    module_name, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


@dataclass(frozen=True)
class ModuleEmit:
    """Becomes `target(**kwargs(call))`, an nn.Module registered under the layer's id, called with the
    inputs and `call_kwargs`; `select` takes one item of a tuple result (nn.MultiheadAttention's output)."""

    target: str
    kwargs: Callable[[Call], dict[str, Any]]
    call_kwargs: Mapping[str, Any] = field(default_factory=dict)
    select: int | None = None
    self_inputs: int = 0
    """If > 0, a single input is passed this many times (self-attention: query, key and value)."""


@dataclass(frozen=True)
class FunctionEmit:
    """Becomes a call of `target` on the inputs: as positional args, one list, or folded pairwise.
    A function with several outputs returns a tuple, one item per output."""

    target: str | Callable[[Call], str]
    kwargs: Callable[[Call], dict[str, Any]] = lambda call: {}
    inputs: Literal["args", "list", "fold"] = "args"
    operand: Callable[[Call], Any] | None = None
    """A constant second argument after a single input (`x + value`, `x[index]`)."""


@dataclass(frozen=True)
class TensorEmit:
    """A learnable tensor: an `nn.Parameter` of the inferred shape, filled by `compiler.nn.initialize`."""


def no_count(call: Call, *_: Any) -> int:
    return 0


@dataclass(frozen=True, eq=False)
class OpDef:
    """One op, defined once: parameters, shape and dtype rule, parameter and MAC counts, emission,
    export limits, view-ness and a sample (`tests/test_op_registry.py` requires each of a builtin op).

    `infer` returns the output's type, or a tuple of types for an op with several outputs; it raises
    ShapeError for inputs the op cannot take. `count_macs` gets the first output's type. `unbatched`
    ops also take values without a batch dimension (learnable tensors). An op whose emission is a
    `TensorEmit` makes a learnable tensor (a `tensor` node in the IR) and takes no input.
    `export_limits`, `view` and `sample` are None where not declared (a plugin op's, by default):
    no known export limits, not a view, no sample."""

    name: str
    doc: str
    infer: Callable[[Call], Any]
    emit: ModuleEmit | FunctionEmit | TensorEmit
    params: tuple[Param, ...] = ()
    count_params: Callable[[Call], Any] = no_count
    count_macs: Callable[[Call, TensorType], Any] = no_count
    arity: tuple[int, int | None] | Callable[[Mapping[str, Any]], tuple[int, int | None]] = (1, 1)
    """How many inputs: (fewest, most or None); or a function of the arguments giving that."""
    category: Literal["layer", "activation", "merge", "tensor", "attention"] = "layer"
    unbatched: bool = False
    weights: Callable[[Call], dict[str, tuple[int, ...]]] | None = None
    """The shapes of its learnable tensors by attribute name, for layers that `share` them."""
    float32_state: Callable[[Call], bool] | None = None
    """Whether its module holds float32 tensors (weights or buffers) that its input must match;
    None: whenever it has parameters."""
    half_inputs: bool = False
    """Its module takes float16 and bfloat16 inputs with float32 tensors (torch's norms do)."""
    scratch: Callable[[Call], Any] = no_count
    """Elements per sample its kernel may allocate beyond its outputs while it runs (attention's score
    matrix, where a path materialises it): counted by the memory estimate before building."""
    export_limits: tuple[ExportLimit, ...] | None = None
    """Where its layers do not export (`compiler.targets`); () where they export to every target."""
    view: bool | None = None
    """Its outputs are views of its input (they share its storage), so they take no activation memory."""
    sample: Sample | None = None
    """A small use of it, with its dtype rule, that the tests hold to torch (`ops.sample`)."""
    param_index: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})

    def arity_for(self, args: Mapping[str, Any]) -> tuple[int, int | None]:
        return self.arity(args) if callable(self.arity) else self.arity

    @property
    def makes_tensor(self) -> bool:
        return isinstance(self.emit, TensorEmit)


def pair(value: int | list[int] | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def expect_rank(x: TensorType, ranks: tuple[int, ...], what: str) -> None:
    if x.rank not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ShapeError(f"expects {what} (rank {want} per sample), got shape {list(x.shape)}")


def expect_float(x: TensorType) -> None:
    if x.dtype not in FLOAT_DTYPES:
        raise ShapeError(f"expects a floating-point input, got {x.dtype}")


def normalize_dim(dim: int, rank: int, param: str) -> int:
    """A torch dim (0 is the batch) → an index into the per-sample shape."""
    full = rank + 1
    if not -full <= dim < full:
        raise ShapeError(f"dim {dim} is out of range for a rank-{full} tensor (batch included)", param)
    dim %= full
    if dim == 0:
        raise ShapeError("dim 0 is the batch dimension and cannot be used here", param)
    return dim - 1


def broadcast_shapes(shapes: list[tuple[Any, ...]], described: Callable[[], str]) -> tuple[Any, ...]:
    """torch's broadcasting of full shapes (right-aligned); `"B"`, the batch dimension, matches only
    itself or 1, and must stay first. `described` writes the shapes for a message, only on failure
    (writing a symbolic size is dearer than the rule: a GPT's check spent half its time on it)."""
    rank = max(len(s) for s in shapes)
    result = []
    for position in range(rank):
        sizes = [s[position - rank + len(s)] for s in shapes if position - rank + len(s) >= 0]
        kept = [size for size in sizes if not (isinstance(size, int) and size == 1)]
        size = kept[0] if kept else 1
        if any(other != size for other in kept[1:]):
            raise ShapeError(f"input shapes do not broadcast: {described()}")
        result.append(size)
    if "B" in result[1:]:
        raise ShapeError(f"broadcasting would move the batch dimension: {described()}")
    return tuple(result)


def broadcast(types: tuple[TensorType, ...]) -> TensorType:
    """The type torch's broadcasting gives `types`; it has a batch dimension if any input has."""
    full = broadcast_shapes([t.full_shape for t in types], lambda: ", ".join(describe_shape(t) for t in types))
    batched = bool(full) and full[0] == "B"
    return TensorType(full[1:] if batched else full, types[0].dtype, batched)


def describe_shape(t: TensorType) -> str:
    """`[3, 4]` for a batched value (per sample), `[1, 197, 768] (no batch dimension)` otherwise."""
    return str(list(t.shape)) if t.batched else f"{list(t.shape)} (no batch dimension)"


_FLOAT_ORDER = {"float16": 1, "bfloat16": 1, "float32": 2, "float64": 3}


def _category(dtype: str) -> int:
    """torch's dtype categories, in promotion order: bool, integer, floating point."""
    return 0 if dtype == "bool" else 1 if dtype in INT_DTYPES else 2


def result_dtype(dtypes: list[str], scalar: float | None = None, true_division: bool = False) -> str:
    """The dtype torch's type promotion gives tensors of `dtypes` (and a Python number `scalar`): the
    highest category wins (bool, then integers, then floats); within it the wider (float16 with
    bfloat16 is float32); a scalar of a higher category gives its default dtype (bool + 1 is int64,
    an integer + 0.5 is float32), and true division of integers or bools is float32."""
    top = max(_category(d) for d in dtypes)
    kept = [d for d in dtypes if _category(d) == top]
    if top == 2:
        widest = max(kept, key=_FLOAT_ORDER.__getitem__)
        mixed_halves = {"float16", "bfloat16"} <= set(kept) and _FLOAT_ORDER[widest] == 1
        dtype = "float32" if mixed_halves else widest
    else:
        dtype = "int64" if "int64" in kept else kept[0]
    scalar_category = -1 if scalar is None or isinstance(scalar, bool) else 2 if isinstance(scalar, float) else 1
    if scalar_category > top:
        dtype, top = ("float32" if scalar_category == 2 else "int64"), scalar_category
    return "float32" if true_division and top < 2 else dtype


def expect_no_bool(x: TensorType) -> None:
    """Refuses a bool input where torch has no bool kernel (subtraction, relu, matrix products)."""
    if x.dtype == "bool":
        raise ShapeError("takes no bool values (torch has no bool kernel for it)")


def axis_of(dim: int, t: TensorType, param: str) -> int:
    """A torch dim of value `t` → an index into its `shape`: 0 is the batch (refused) for a batched
    value; for a value without a batch dimension, dims are its own."""
    if t.batched:
        return normalize_dim(dim, t.rank, param)
    if not -t.rank <= dim < t.rank:
        raise ShapeError(f"dim {dim} is out of range for a rank-{t.rank} tensor (it has no batch dimension)", param)
    return dim % t.rank


def same_dtype(call: Call) -> None:
    first = call.inputs[0]
    for other in call.inputs[1:]:
        if other.dtype != first.dtype:
            raise ShapeError(f"inputs have different dtypes: {first.dtype} and {other.dtype}")
