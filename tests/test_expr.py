"""The expression language evaluates arithmetic and shape queries, and nothing else."""

from __future__ import annotations

import re
import time

import pytest
from nncompile.compiler import expr
from nncompile.compiler.expr import MAX_ELEMENTS, MAX_STEPS, ExprError, Function, evaluate, parse

from nncompile import compiler

PARAMS = {"width": 64, "stride": 2}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$width * 4", 256),
        ("$width // 3 + 1", 22),
        ("$stride != 1 or channels(input) != $width", True),
        ("shape(input)[1]", 8),
        ("max($width, 100) if $stride == 2 else 0", 100),
        ("not $stride > 1", False),
    ],
)
def test_evaluates(text: str, value):
    assert evaluate(parse(text), PARAMS, lambda name: (64, 8, 8)) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "unknown function"),
        ("().__class__", "not allowed"),
        ("$width ** 99999", "too large"),
        ("$width << 2", "not supported"),
        ("'a' * 10", "needs numbers"),
        ("width", "parameters are written $width"),
        ("$widht", "did you mean 'width'"),
        ("lambda: 1", "not allowed"),
        ("1 / 0", "division by zero"),
        ("$", "must be followed"),
        ("(" * 300, "cannot parse"),
        ("1 + " * 200 + "1", "longer than"),
    ],
)
def test_rejects(text: str, message: str):
    with pytest.raises(ExprError, match=re.escape(message)):
        evaluate(parse(text), PARAMS, lambda name: (1,))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$scale ** 2", 6.25),
        ("$scale ** -1", 0.4),
        ("2 ** 0.5", 2**0.5),
        ("$width ** 0", 1),
        ("(-1) ** 10**18", 1),
        ("0.5 ** 10**18", 0.0),
    ],
)
def test_powers_of_floats_and_ints(text: str, value):
    """A float base with an integer exponent is computed (it once crashed on int.bit_length)."""
    assert evaluate(parse(text), {**PARAMS, "scale": 2.5}) == pytest.approx(value)


@pytest.mark.parametrize(
    "text",
    ["$scale ** 400", "$scale ** 10**18", "10 ** 400.0", "$huge * $huge", "$huge + $huge * 2", "$ceil($huge)", "$int(1e18 * 10)"],
)
def test_results_stay_finite_and_below_two_to_the_63(text: str):
    with pytest.raises(ExprError, match=r"too large \(2\*\*63 or more\)|not a finite number"):
        evaluate(parse(text), {"scale": 10.5, "huge": 1e308})


@pytest.mark.parametrize(("text", "message"), [("1e400", "past a float's range"), ("9223372036854775808 - 1", "2**63 or more")])
def test_number_literals_are_bounded(text: str, message: str):
    with pytest.raises(ExprError, match=re.escape(message)):
        parse(text)


def _functions(**bodies: tuple[tuple[str, ...], str]) -> dict[str, Function]:
    """The spec's own functions, each seeing the others, as params.py makes them."""
    env: dict[str, Function] = {}
    env.update({name: Function(name, args, parse(body), env) for name, (args, body) in bodies.items()})
    return env


def test_a_list_doubled_through_a_function_is_refused_at_the_bound():
    """30 doublings would be 2**30 elements (8 GiB): refused once a list passes MAX_ELEMENTS."""
    env = _functions(grow=(("items", "n"), "$grow($items + $items, $n - 1) if $n > 0 else len($items)"))
    assert evaluate(parse("$grow([1], 13)"), env) == 2**13
    with pytest.raises(ExprError, match=f"a list of more than {MAX_ELEMENTS:,} elements"):
        evaluate(parse("$grow([1], 30)"), env)


def test_a_list_holding_one_list_many_times_counts_every_copy():
    """`[l, l]` is small in memory but 2**40 elements for whatever walks or compares it."""
    env = _functions(nest=(("items", "n"), "$nest([$items, $items], $n - 1) if $n > 0 else $items"))
    assert evaluate(parse("len($nest([1], 3))"), env) == 2
    with pytest.raises(ExprError, match="a list of more than"):
        evaluate(parse("$nest([1], 40) == $nest([1], 40)"), env)


def test_fan_out_recursion_is_cut_at_the_step_bound():
    """3**30 calls if nothing stopped it; refused after MAX_STEPS steps, in well under a second."""
    env = _functions(fan=(("n",), "$fan($n - 1) + $fan($n - 1) + $fan($n - 1) if $n > 0 else 1"))
    assert evaluate(parse("$fan(5)"), env) == 3**5
    start = time.process_time()
    with pytest.raises(ExprError, match=f"more than {MAX_STEPS:,} steps"):
        evaluate(parse("$fan(30)"), env)
    assert time.process_time() - start < 5


def test_comparing_and_summing_long_lists_costs_steps():
    long = list(range(MAX_ELEMENTS))
    assert evaluate(parse("sum($long) > 0 and $long == $long"), {"long": long})
    env = {**_functions(spin=(("items", "n"), "$spin($items, $n - 1) + sum($items) if $n > 0 else 0")), "long": long}
    with pytest.raises(ExprError, match="steps"):
        evaluate(parse("$spin($long, 30)"), env)


def test_a_spec_shares_one_allowance_of_steps(monkeypatch: pytest.MonkeyPatch):
    """Inside `metered()` every expression draws on MAX_SPEC_STEPS; each evaluation outside it starts afresh."""
    monkeypatch.setattr(expr, "MAX_SPEC_STEPS", 1_000)
    text = parse("+".join(["$width"] * 60))  # 119 steps
    for _ in range(10):
        evaluate(text, PARAMS)
    with expr.metered():
        for _ in range(8):
            evaluate(text, PARAMS)
        with pytest.raises(ExprError, match="the spec's expressions together take more than 1,000 steps"):
            evaluate(text, PARAMS)
    evaluate(text, PARAMS)


def test_messages_show_a_few_elements_of_a_shared_list():
    """A value in a message is abbreviated, never printed whole (a 2**60-element shared list would hang)."""
    shared: list = [1]
    for _ in range(60):
        shared = [shared, shared]
    with pytest.raises(ExprError, match=r"arithmetic needs numbers, got \[\[\[\[") as error:
        evaluate(parse("$deep + 1"), {"deep": shared})
    assert len(str(error.value)) < 150


FLOAT_POWERS = """\
nncompile: 1
params: {width: 2.5, area: $width ** 2}
functions:
  squared: {args: [v], value: $v ** 2}
sizes:
  L: {min: 1, max: '$int($width ** 2)', default: 4}
inputs: {x: [L, 4]}
layers:
  - {id: a, op: linear, out: '$int($area)'}
  - {id: b, op: linear, out: '$round($squared($width) * 4)'}
"""


def test_float_powers_in_params_functions_and_sizes(write_spec):
    """`$width ** 2` with a float width, in a derived parameter, a function and a size bound (each an
    exit 3 once): 2.5 ** 2 = 6.25."""
    analysis = compiler.analyze(write_spec(FLOAT_POWERS))
    assert analysis.ok, analysis.diagnostics
    assert analysis.graph.nodes["a"].args["out"] == 6 and analysis.graph.nodes["b"].args["out"] == 25
    assert analysis.graph.sizes["L"].maximum == 6


GROWING = """\
nncompile: 1
params: {depth: 3}
functions:
  grow: {args: [items, n], value: '$grow($items + $items, $n - 1) if $n > 0 else len($items)'}
inputs: {x: [4]}
layers:
  - {id: fc, op: linear, out: '$grow([1], $depth)'}
"""


def test_a_list_doubled_as_deep_as_set_is_refused_at_the_expression(write_spec):
    """`--set depth=40` once took gigabytes; now E0304 at the expression that doubles the list."""
    assert compiler.analyze(write_spec(GROWING)).graph.nodes["fc"].args["out"] == 8
    analysis = compiler.analyze(write_spec(GROWING), {"depth": 40})
    (error,) = analysis.diagnostics
    assert (error.code, error.span.line) == ("E0304", 7) and "a list of more than" in error.message


def test_symbolic_results_are_bounded_at_every_point():
    """A size over a symbolic input stays below 2**63 at every value of the size, as a plain number does."""
    from nncompile.compiler.dims import Dim, Size

    height = Dim.of(Size("H", 1, 8))
    assert evaluate(parse("shape(x)[0] * 2**59"), {}, lambda name: (height,)).table[-1] == 2**62
    with pytest.raises(ExprError, match=r"too large \(2\*\*63 or more\)"):
        evaluate(parse("shape(x)[0] * 2**61"), {}, lambda name: (height,))
