"""The train configuration: a validated `train:` section with the schema's defaults filled in."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml
from nncompile.compiler.diagnostics import SpecError
from nncompile.compiler.load import JsonPath, load_text
from nncompile.compiler.train_schema import CLASSIFICATION_LOSSES, train_schema
from nncompile.compiler.validate import validate_section


class TrainError(Exception):
    """A train setting that cannot work with this model or data; `path` locates it in the train section."""

    def __init__(self, path: JsonPath, message: str, hint: str | None = None, code: str = "E0501"):
        where = ".".join(map(str, ("train", *path)))
        super().__init__(f"{where}: {message}" + (f" ({hint})" if hint else ""))
        self.path, self.message, self.hint, self.code = path, message, hint, code


def checked(config: Mapping[str, Any]) -> dict[str, Any]:
    """A train section given as plain data (the Python API): validated as a spec's would be
    (raises SpecError), then completed with defaults."""
    text = yaml.safe_dump({"train": dict(config)}, sort_keys=False)
    document, diagnostics = load_text(text, "<train config>")
    if document is not None:
        diagnostics = validate_section(document, "train")
    if diagnostics:
        raise SpecError(diagnostics)
    return with_defaults(document.data["train"])


def with_defaults(section: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a valid train section with every `default` of the schema filled in."""
    return _fill(train_schema(), copy.deepcopy(dict(section)))


def _fill(schema: Mapping[str, Any], value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    for branch in schema.get("allOf", ()):  # the branch of the kind chosen (`dataset: fake` → fake's keys)
        condition = branch["if"]["properties"]
        if all(value.get(key) == rule.get("const") for key, rule in condition.items()):
            _fill(branch["then"], value)
    for key, child in schema.get("properties", {}).items():
        if not isinstance(child, dict):
            continue
        if key not in value and "default" in child:
            value[key] = copy.deepcopy(child["default"])
        if key in value:
            value[key] = _fill(child, value[key])
    return value


def loss_settings(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The loss's name and its options (`loss: mse` and `loss: {type: mse}` are the same)."""
    loss = config["loss"]
    if isinstance(loss, str):
        return loss, {}
    options = dict(loss)
    return options.pop("type"), options


def per_output(config: Mapping[str, Any]) -> bool:
    """Whether the loss is given per named output (`loss: {logits: cross_entropy, box: smooth_l1}`)."""
    return isinstance(config["loss"], Mapping) and "type" not in config["loss"]


def is_classification(config: Mapping[str, Any]) -> bool:
    """Whether the loss is one classification loss (per-output losses are judged output by output)."""
    return not per_output(config) and loss_settings(config)[0] in CLASSIFICATION_LOSSES


def label_losses(config: Mapping[str, Any]) -> dict[str | None, int]:
    """The targets scored as class labels, by output name (None: the run's one loss), each with the
    label value its loss ignores (`ignore_index`, -100 by default)."""
    losses = config["loss"].items() if per_output(config) else [(None, config["loss"])]
    found = {}
    for name, value in losses:
        kind, options = loss_settings({"loss": value})
        if kind in CLASSIFICATION_LOSSES:
            found[name] = options.get("ignore_index", -100)
    return found
