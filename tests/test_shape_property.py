"""Soundness of shape inference over generated specs: for every layer of every generated spec
that `check` accepts, the inferred shape is the shape torch produces, and the parameter and
MAC counts are torch's. A test asserts that most generated specs are accepted (not vacuous)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from conftest import check_fx_shapes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.fx.passes.shape_prop import ShapeProp
from torch.utils.flop_counter import FlopCounterMode

import compiler
from compiler.emit import example_inputs

ACTIVATIONS = ["relu", "sigmoid", "tanh", "gelu", "silu", "leaky_relu", "elu", "hardswish"]

small = st.integers(1, 3)
channels = st.sampled_from([2, 4, 6, 8])
image_layer = st.one_of(
    st.fixed_dictionaries(
        {"op": st.just("conv2d"), "out": channels, "kernel": st.one_of(small, st.lists(small, min_size=2, max_size=2))},
        optional={
            "stride": st.integers(1, 2),
            "padding": st.one_of(st.integers(0, 2), st.just("same")),
            "dilation": st.integers(1, 2),
            "groups": st.sampled_from([1, 2]),
            "bias": st.booleans(),
            "activation": st.sampled_from(ACTIVATIONS),
        },
    ),
    st.fixed_dictionaries(
        {"op": st.sampled_from(["maxpool2d", "avgpool2d"]), "kernel": st.integers(1, 3)},
        optional={"stride": st.integers(1, 3), "padding": st.integers(0, 1), "ceil_mode": st.booleans()},
    ),
    st.fixed_dictionaries({"op": st.just("batchnorm2d")}, optional={"activation": st.sampled_from(ACTIVATIONS)}),
    st.fixed_dictionaries({"op": st.just("groupnorm"), "groups": st.sampled_from([1, 2])}),
    st.fixed_dictionaries({"op": st.just("adaptive_avgpool2d"), "size": st.one_of(small, st.lists(small, min_size=2, max_size=2))}),
    st.fixed_dictionaries({"op": st.sampled_from(["add", "mul", "concat"]), "from": st.just("SKIP")}),
    st.fixed_dictionaries({"op": st.sampled_from([*ACTIVATIONS, "identity", "dropout"])}),
    st.fixed_dictionaries({"op": st.just("permute"), "dims": st.permutations([1, 2, 3]).map(lambda p: [0, *p])}),
)
vector_layer = st.one_of(
    st.fixed_dictionaries(
        {"op": st.just("linear"), "out": st.integers(1, 12)}, optional={"bias": st.booleans(), "activation": st.sampled_from(ACTIVATIONS)}
    ),
    st.fixed_dictionaries({"op": st.just("layernorm")}, optional={"affine": st.booleans()}),
    st.fixed_dictionaries({"op": st.sampled_from(["softmax", "log_softmax"])}),
    st.fixed_dictionaries({"op": st.just("reshape"), "shape": st.just([-1])}),
)


sequence_layer = st.one_of(
    st.fixed_dictionaries(
        {"op": st.just("conv1d"), "out": channels, "kernel": small},
        optional={
            "stride": st.integers(1, 2),
            "padding": st.integers(0, 2),
            "dilation": st.integers(1, 2),
            "groups": st.sampled_from([1, 2]),
        },
    ),
    st.fixed_dictionaries({"op": st.just("batchnorm1d")}, optional={"activation": st.sampled_from(ACTIVATIONS)}),
    st.fixed_dictionaries({"op": st.sampled_from(["add", "concat"]), "from": st.just("SKIP")}),
)


@st.composite
def image_specs(draw) -> tuple[dict, list]:
    return {"image": [draw(channels), draw(st.integers(4, 12)), draw(st.integers(4, 12))]}, draw(
        st.lists(image_layer, min_size=1, max_size=6)
    )


@st.composite
def token_specs(draw) -> tuple[dict, list]:
    """Token ids → embedding → channels-first → 1-D convolutions."""
    embed = {"op": "embedding", "num": draw(st.integers(1, 20)), "dim": draw(channels)}
    inputs = {"image": {"shape": [draw(st.integers(4, 16))], "dtype": "int64"}}
    return inputs, [embed, {"op": "permute", "dims": [0, 2, 1]}, *draw(st.lists(sequence_layer, max_size=4))]


@st.composite
def specs(draw) -> dict:
    """An input, some layers (with residual merges), a flatten, then vector layers."""
    inputs, body = draw(st.one_of(image_specs(), token_specs()))
    layers = []
    for index, layer in enumerate(body):
        layer = dict(layer, id=f"l{index}")
        if layer.get("from") == "SKIP":
            earlier = draw(st.integers(0, index - 1)) if index else None
            layer["from"] = [f"l{index - 1}", f"l{earlier}"] if index else ["image", "image"]
        layers.append(layer)
    layers.append({"id": "flat", "op": "flatten"})
    layers += [dict(layer, id=f"v{i}") for i, layer in enumerate(draw(st.lists(vector_layer, max_size=3)))]
    return {"nncompile": 1, "name": "generated", "inputs": inputs, "layers": layers}


def _compile(spec: dict, tmp_path: Path):
    path = tmp_path / "generated.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    analysis = compiler.analyze(path)
    return analysis, (compiler.build(path) if analysis.ok else None)


ACCEPTED = {"yes": 0, "no": 0}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs())
def test_inferred_shapes_and_counts_equal_torch(spec: dict, tmp_path: Path):
    analysis, model = _compile(spec, tmp_path)
    ACCEPTED["yes" if model is not None else "no"] += 1
    if model is None:
        assert all(d.code.startswith("E04") for d in analysis.diagnostics if d.is_error), analysis.diagnostics
        return
    model.eval()
    inputs = example_inputs(model, batch=1)
    ShapeProp(model).propagate(*inputs)
    check_fx_shapes(model, analysis.graph, batch=1)
    assert analysis.graph.total_params == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    assert counter.get_total_flops() == 2 * analysis.graph.total_macs


def test_generated_specs_are_mostly_accepted():
    """Runs after the property test (file order): guards against a generator that only makes duds."""
    total = ACCEPTED["yes"] + ACCEPTED["no"]
    assert total == 0 or ACCEPTED["yes"] / total > 0.5, ACCEPTED
