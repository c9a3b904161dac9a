"""The expression language evaluates arithmetic and shape queries, and nothing else."""

from __future__ import annotations

import re

import pytest

from compiler.expr import ExprError, evaluate, parse

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
