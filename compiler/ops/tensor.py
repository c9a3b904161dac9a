"""Ops that move data without weights (flatten, reshape, unflatten, permute, transpose, identity, select,
slice, split, chunk, mean, sum, positions) and the learnable tensor (`parameter`)."""

from __future__ import annotations

from typing import Any

from .. import initializers
from ..dims import is_symbolic, lift
from .core import (
    FLOAT_DTYPES,
    Bool,
    Call,
    FunctionEmit,
    Int,
    Ints,
    ModuleEmit,
    OpDef,
    Param,
    ShapeError,
    TensorEmit,
    TensorType,
    expect_float,
    normalize_dim,
)
from .geometry import volume
from .sample import KEEPS_ANY, KEEPS_FLOATS, Sample, dtype_rule

_SEQUENCE, _MAP = {"x": ("T", 8)}, {"x": (3, "T", "T")}


def _flatten_infer(call: Call) -> TensorType:
    shape = call.x.shape
    start = normalize_dim(call.args["start"], call.x.rank, "start")
    end = normalize_dim(call.args["end"], call.x.rank, "end")
    if start > end:
        raise ShapeError(f"start dim {call.args['start']} comes after end dim {call.args['end']}", "start")
    return call.x.with_shape((*shape[:start], volume(shape[start : end + 1]), *shape[end + 1 :]))


FLATTEN = OpDef(
    name="flatten",
    doc="merges dims start..end into one (torch.flatten); dims count the batch as 0",
    params=(Int("start", 1), Int("end", -1)),
    infer=_flatten_infer,
    emit=FunctionEmit("torch:flatten", lambda call: {"start_dim": call.args["start"], "end_dim": call.args["end"]}),
    category="tensor",
    export_limits=(),
    view=True,
    sample=Sample(_MAP, KEEPS_ANY),
)


def _resolve_sizes(sizes: list[int], total: Any, what: str, param: str) -> tuple[Any, ...]:
    """`sizes` with its one -1 (if any) resolved so that they hold `total` elements."""
    sizes = list(sizes)
    if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise ShapeError(f"{param} {sizes} may hold positive sizes and at most one -1", param)
    known = volume([s for s in sizes if s != -1])
    if -1 in sizes:
        if total % known:
            raise ShapeError(f"cannot reshape {what} ({total} elements) into {sizes}", param)
        sizes[sizes.index(-1)] = total // known
    elif known != total:
        raise ShapeError(f"cannot reshape {what} ({total} elements) into {sizes} ({known})", param)
    return tuple(sizes)


def _reshape_target(call: Call) -> tuple[Any, ...]:
    return _resolve_sizes(call.args["shape"], call.x.numel(), str(list(call.x.shape)), "shape")


def _reshape_emit(call: Call) -> dict:
    if is_symbolic(call.x.shape):
        return {"shape": list(call.args["shape"])}
    return {"shape": [-1, *_reshape_target(call)]}


RESHAPE = OpDef(
    name="reshape",
    doc="reshapes each sample to `shape` (per sample, batch kept; one -1 allowed)",
    params=(Ints("shape"),),
    infer=lambda call: call.x.with_shape(_reshape_target(call)),
    emit=FunctionEmit(lambda call: "nncompile.compiler.nn:reshape" if is_symbolic(call.x.shape) else "torch:reshape", _reshape_emit),
    category="tensor",
    export_limits=(),
    view=True,
    sample=Sample(_SEQUENCE, KEEPS_ANY, {"shape": [-1, 2, 4]}),
)


def _unflatten_infer(call: Call) -> TensorType:
    dim = normalize_dim(call.args["dim"], call.x.rank, "dim")
    sizes = _resolve_sizes(call.args["sizes"], call.x.shape[dim], f"dim {call.args['dim']} of {list(call.x.shape)}", "sizes")
    return call.x.with_shape((*call.x.shape[:dim], *sizes, *call.x.shape[dim + 1 :]))


UNFLATTEN = OpDef(
    name="unflatten",
    doc="splits dim `dim` into `sizes` (torch.unflatten; one -1 allowed); dims count the batch as 0",
    params=(Int("dim"), Ints("sizes")),
    infer=_unflatten_infer,
    emit=FunctionEmit("torch:unflatten", lambda call: {"dim": call.args["dim"], "sizes": list(call.args["sizes"])}),
    category="tensor",
    export_limits=(),
    view=True,
    sample=Sample(_SEQUENCE, KEEPS_ANY, {"dim": 2, "sizes": [2, -1]}),
)


def _permute_infer(call: Call) -> TensorType:
    dims = list(call.args["dims"])
    if sorted(dims) != list(range(call.x.rank + 1)) or dims[0] != 0:
        raise ShapeError(f"dims {dims} must be a permutation of 0..{call.x.rank} that keeps the batch (0) first", "dims")
    return call.x.with_shape(tuple(call.x.shape[d - 1] for d in dims[1:]))


PERMUTE = OpDef(
    name="permute",
    doc="reorders dims (torch.permute); dims count the batch as 0, which stays first",
    params=(Ints("dims"),),
    infer=_permute_infer,
    emit=FunctionEmit("torch:permute", lambda call: {"dims": list(call.args["dims"])}),
    category="tensor",
    export_limits=(),
    view=True,
    sample=Sample(_MAP, KEEPS_ANY, {"dims": [0, 2, 3, 1]}),
)

_PAIR = Param("dims", {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}, doc="the two dims to swap")


def _transpose_infer(call: Call) -> TensorType:
    first, second = (normalize_dim(d, call.x.rank, "dims") for d in call.args["dims"])
    shape = list(call.x.shape)
    shape[first], shape[second] = shape[second], shape[first]
    return call.x.with_shape(tuple(shape))


TRANSPOSE = OpDef(
    name="transpose",
    doc="swaps two dims (torch.transpose); dims count the batch as 0, which stays first",
    params=(_PAIR,),
    infer=_transpose_infer,
    emit=FunctionEmit("torch:transpose", lambda call: {"dim0": call.args["dims"][0], "dim1": call.args["dims"][1]}),
    category="tensor",
    export_limits=(),
    view=True,
    sample=Sample(_SEQUENCE, KEEPS_ANY, {"dims": [1, 2]}),
)

IDENTITY = OpDef(
    name="identity",
    doc="passes its input through (torch.nn.Identity)",
    infer=lambda call: call.x,
    emit=ModuleEmit("torch.nn:Identity", lambda call: {}),
    category="tensor",
    unbatched=True,
    export_limits=(),
    view=True,
    sample=Sample(_SEQUENCE, KEEPS_ANY),
)


def _index(call: Call) -> tuple[Any, ...]:
    """What `x[index]` takes for select (`x[:, 0]`) and slice (`x[:, 1:]`)."""
    dim = normalize_dim(call.args["dim"], call.x.rank, "dim")
    if "index" in call.args:
        return (slice(None),) * (dim + 1) + (call.args["index"],)
    return (slice(None),) * (dim + 1) + (slice(call.args["start"], call.args["end"], call.args["step"]),)


def _select_infer(call: Call) -> TensorType:
    dim = normalize_dim(call.args["dim"], call.x.rank, "dim")
    size, index = call.x.shape[dim], call.args["index"]
    if not -size <= index < size:
        raise ShapeError(f"index {index} is out of range for dim {call.args['dim']} of size {size}", "index")
    return call.x.with_shape((*call.x.shape[:dim], *call.x.shape[dim + 1 :]))


SELECT = OpDef(
    name="select",
    doc="takes one index along `dim`, removing that dim (`x[:, 0]`, ViT's class token); dims count the batch as 0",
    params=(Int("dim"), Int("index")),
    infer=_select_infer,
    emit=FunctionEmit("operator:getitem", operand=_index),
    category="tensor",
    export_limits=(),
    view=True,
    sample=Sample(_SEQUENCE, KEEPS_ANY, {"dim": 1, "index": 0}),
)


@lift
def _slice_length(size: int, start: int, end: int, step: int) -> int:
    return len(range(*slice(start, None if end == _OPEN else end, step).indices(size)))


_OPEN = 2**63 - 1


def _slice_infer(call: Call) -> TensorType:
    dim = normalize_dim(call.args["dim"], call.x.rank, "dim")
    end = _OPEN if call.args["end"] is None else call.args["end"]
    length = _slice_length(call.x.shape[dim], call.args["start"], end, call.args["step"])
    if length < 1:
        raise ShapeError(
            f"slice {call.args['start']}:{call.args['end']} of dim {call.args['dim']} (size {call.x.shape[dim]}) is empty", "start"
        )
    return call.x.with_shape((*call.x.shape[:dim], length, *call.x.shape[dim + 1 :]))


SLICE = OpDef(
    name="slice",
    doc="keeps start:end:step along `dim` (`x[:, 1:]`), as Python slices; dims count the batch as 0",
    params=(
        Int("dim"),
        Int("start", 0),
        Param("end", {"type": ["integer", "null"]}, None, "exclusive; null: to the end"),
        Int("step", 1, minimum=1),
    ),
    infer=_slice_infer,
    emit=FunctionEmit("operator:getitem", operand=_index),
    category="tensor",
    export_limits=(),
    view=True,
    sample=Sample(_SEQUENCE, KEEPS_ANY, {"dim": 1, "start": 1, "step": 2}),
)


def _pieces(call: Call) -> tuple[int, list[Any]]:
    """The split dim and the size of each piece, as torch.split / torch.chunk make them."""
    args = call.args
    if "chunks" not in args and (args["size"] is None) == (args["sizes"] is None):
        given = "sizes" if args["sizes"] is not None else "size"  # both: at 'sizes'; neither: at the layer
        raise ShapeError("give exactly one of 'size' (the size of each piece) and 'sizes' (one per piece)", given)
    dim = normalize_dim(args["dim"], call.x.rank, "dim")
    total = call.x.shape[dim]
    if is_symbolic(total):
        raise ShapeError(f"the number of pieces depends on a symbolic size ({total}); split along a fixed dim", "dim")
    if "chunks" in args:
        step = -(-total // args["chunks"])
    elif args["sizes"] is not None:
        if sum(args["sizes"]) != total:
            raise ShapeError(f"sizes {args['sizes']} add up to {sum(args['sizes'])}, not the {total} of dim {args['dim']}", "sizes")
        return dim, list(args["sizes"])
    else:
        step = args["size"]
    return dim, [min(step, total - start) for start in range(0, total, step)]


def _pieces_infer(call: Call) -> tuple[TensorType, ...]:
    dim, sizes = _pieces(call)
    return tuple(call.x.with_shape((*call.x.shape[:dim], size, *call.x.shape[dim + 1 :])) for size in sizes)


SPLIT = OpDef(
    name="split",
    doc="splits along `dim` into pieces of `size` (the last may be smaller) or of `sizes` (torch.split); one output per piece",
    params=(
        Param("size", {"type": ["integer", "null"], "minimum": 1}, None, "the size of each piece"),
        Param("sizes", {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1}, "minItems": 1}, None, "one size per piece"),
        Int("dim", 1),
    ),
    infer=_pieces_infer,
    emit=FunctionEmit(
        "torch:split",
        lambda call: {"dim": call.args["dim"]},
        operand=lambda call: call.args["size"] or list(call.args["sizes"]),
    ),
    category="tensor",
    export_limits=(),
    view=True,
    sample=Sample(_SEQUENCE, KEEPS_ANY, {"size": 3, "dim": 2}, then=({"op": "concat", "from": ["sample.0", "sample.2"], "dim": 2},)),
)

CHUNK = OpDef(
    name="chunk",
    doc="splits along `dim` into `chunks` pieces (torch.chunk: pieces of ceil(size / chunks)); one output per piece",
    params=(Int("chunks", minimum=1), Int("dim", 1)),
    infer=_pieces_infer,
    emit=FunctionEmit("torch:chunk", lambda call: {"chunks": call.args["chunks"], "dim": call.args["dim"]}),
    category="tensor",
    export_limits=(),
    view=True,
    sample=Sample(_SEQUENCE, KEEPS_ANY, {"chunks": 2, "dim": 2}, then=({"op": "mul", "from": ["sample.0", "sample.1"]},)),
)


def _reduce_infer(name: str):
    def infer(call: Call) -> TensorType:
        """torch.mean needs floats; torch.sum gives int64 for any integer input."""
        if name == "mean":
            expect_float(call.x)
        dims = sorted({normalize_dim(d, call.x.rank, "dims") for d in call.args["dims"]})
        if len(dims) != len(call.args["dims"]):
            raise ShapeError(f"dims {call.args['dims']} name a dim twice", "dims")
        keep = call.args["keepdim"]
        shape = [1 if i in dims else s for i, s in enumerate(call.x.shape) if keep or i not in dims]
        return TensorType(tuple(shape), call.x.dtype if call.x.dtype in FLOAT_DTYPES else "int64", call.x.batched)

    return infer


def _reduction(name: str, doc: str, sample: Sample) -> OpDef:
    return OpDef(
        name=name,
        doc=f"{doc} over `dims` (torch.{name}); dims count the batch as 0",
        params=(Ints("dims"), Bool("keepdim", False)),
        infer=_reduce_infer(name),
        emit=FunctionEmit(f"torch:{name}", lambda call: {"dim": list(call.args["dims"]), "keepdim": call.args["keepdim"]}),
        category="tensor",
        export_limits=(),
        view=False,
        sample=sample,
    )


def _positions_infer(call: Call) -> TensorType:
    dim = normalize_dim(call.args["dim"], call.x.rank, "dim")
    return TensorType((call.x.shape[dim],), "int64", batched=False, bound=call.x.shape[dim])


POSITIONS = OpDef(
    name="positions",
    doc="the positions 0..T-1 along `dim` of its input, as int64 without a batch dimension (for position embeddings)",
    params=(Int("dim", 1),),
    infer=_positions_infer,
    emit=FunctionEmit("nncompile.compiler.nn:positions", lambda call: {"dim": call.args["dim"]}),
    category="tensor",
    export_limits=(),
    view=False,
    sample=Sample(
        {"x": ("T",)},
        dtype_rule(lambda dtype: "int64"),
        dtype="int64",
        then=(
            {"id": "wpe", "op": "embedding", "num": 64, "dim": 4},
            {"id": "wte", "op": "embedding", "num": 10, "dim": 4, "from": "x"},
            {"op": "add", "from": ["wte", "wpe"]},
        ),
    ),
)


def _parameter_infer(call: Call) -> TensorType:
    shape = tuple(call.args["shape"])
    problem = initializers.problem(call.args["init"], shape)
    if problem:
        raise ShapeError(problem, "init")
    return TensorType(shape, "float32", batched=False)


PARAMETER = OpDef(
    name="parameter",
    doc="a learnable tensor of `shape` (written whole: no batch dimension); its state_dict key is the layer's id",
    params=(
        Param("shape", {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}),
        Param("init", initializers.schema(), "zeros", initializers.summary()),
        Bool("trainable", True),
    ),
    infer=_parameter_infer,
    emit=TensorEmit(),
    count_params=lambda call: volume(call.args["shape"]),
    arity=(0, 0),
    category="tensor",
    export_limits=(),
    view=False,
    sample=Sample(
        _SEQUENCE, dtype_rule(lambda dtype: "float32"), {"shape": [8], "init": "ones"}, then=({"op": "mul", "from": ["x", "sample"]},)
    ),
)

OPS = (
    FLATTEN,
    RESHAPE,
    UNFLATTEN,
    PERMUTE,
    TRANSPOSE,
    IDENTITY,
    SELECT,
    SLICE,
    SPLIT,
    CHUNK,
    _reduction("mean", "average", Sample(_MAP, KEEPS_FLOATS, {"dims": [2, 3]})),
    _reduction(
        "sum",
        "sum",
        Sample(_SEQUENCE, dtype_rule(lambda dtype: dtype if dtype in FLOAT_DTYPES else "int64"), {"dims": [1], "keepdim": True}),
    ),
    POSITIONS,
    PARAMETER,
)
