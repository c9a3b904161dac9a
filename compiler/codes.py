"""Every diagnostic code: its stage, a short name, and what it means. The README's table of error
codes and the rules of SARIF output are made from this (a test keeps the README equal to it)."""

from __future__ import annotations

from typing import NamedTuple


class Code(NamedTuple):
    stage: str
    name: str
    meaning: str


CODES: dict[str, Code] = {
    "E0101": Code(
        "load",
        "YamlSyntax",
        "YAML syntax error, a scalar that is not a valid value (`!!bool maybe`, `.nan`, an integer of 2**63 or more), or an alias used as a mapping key",
    ),
    "E0102": Code(
        "load", "ForbiddenTag", "a YAML tag that would construct an object (`!!python/…`, on a value or a key), or a merge key `<<`"
    ),
    "E0103": Code("load", "DuplicateKey", "a key repeated in one mapping"),
    "E0104": Code("load", "FileTooLarge", "the file is over 4 MiB (it is read no further)"),
    "E0105": Code("load", "NotText", "not UTF-8 text, or a character YAML forbids"),
    "E0106": Code("load", "EmptySpec", "an empty spec"),
    "E0107": Code(
        "load",
        "TooDeepOrLarge",
        "nesting deeper than 64, over 200,000 nodes after alias expansion (alias bombs), or a self-referencing alias",
    ),
    "E0108": Code("load", "SeveralDocuments", "more than one YAML document in the file"),
    "E0201": Code("validate", "UnknownKey", "an unknown key (with a suggestion)"),
    "E0202": Code("validate", "MissingKey", "a required key is missing"),
    "E0203": Code("validate", "InvalidValue", "a value of the wrong type, outside its range, or not one of the allowed choices"),
    "E0301": Code("resolve", "UnknownOp", "an unknown op or block (with a suggestion)"),
    "E0302": Code("resolve", "DuplicateId", "an id used twice in one scope"),
    "E0303": Code("resolve", "UnknownReference", "a reference to no layer or input"),
    "E0304": Code(
        "resolve",
        "BadExpression",
        "a malformed expression, or one that cannot be evaluated (unknown `$param` or function, division by zero, a result too large or not finite, a list of more than 10,000 elements, more evaluation steps than the bounds, …)",
    ),
    "E0305": Code(
        "resolve",
        "BadBlockParameter",
        "a block parameter that is unknown, missing, mistyped, or named like a layer key; a parameter named `i`; a variant or function that does not fit the parameters, a variant selector that is a list or mapping",
    ),
    "E0306": Code(
        "resolve", "RepetitionMismatch", "per-repetition values that do not match `repeat`, or a list where one value is expected"
    ),
    "E0307": Code("resolve", "InputCount", "the wrong number of inputs for an op or block"),
    "E0308": Code("resolve", "Cycle", "the layers form a cycle"),
    "E0309": Code(
        "resolve", "InvalidConstruct", "an invalid construct: a recursive block, a block named like an op, `activation` on a block call"
    ),
    "E0310": Code("resolve", "TooManyLayers", "the spec expands to more than 100,000 layers"),
    "E0311": Code(
        "resolve",
        "InvalidArgument",
        "an op argument, `repeat`, a repeat name or `activation` whose value (after `$` substitution) is invalid, or that reads shapes where it is needed before them",
    ),
    "E0312": Code(
        "resolve",
        "ReservedName",
        "an id or input name that every module already has as an attribute (`training`, `forward`, `half`, …), a Python keyword, or a special name (`__init__`, `__class__`, …)",
    ),
    "E0313": Code(
        "resolve",
        "BadSize",
        "an input size that names no declared size, or a size whose range is empty, too large (over 4,096 values) or whose default is outside it",
    ),
    "E0314": Code(
        "resolve",
        "SkippedTensor",
        "a reference to a learnable tensor (`op: parameter`) that its condition skips: it has no input to pass through",
    ),
    "E0401": Code(
        "infer",
        "ShapeMismatch",
        "an op cannot take its input's shape (rank, sizes, dtype, merges that do not match, a float input other than float32 to a layer with weights, a batch-free tensor where a batch is needed, …); with symbolic sizes, at the size named",
    ),
    "E0402": Code("infer", "BadShapeValue", "a shape-dependent expression or value is invalid"),
    "E0403": Code(
        "infer",
        "SymbolicSize",
        "a value that must be fixed depends on a symbolic size, a layer's shape follows different rules across the declared range, or sizes combine into too many points to prove",
    ),
    "E0404": Code(
        "infer",
        "OutputPick",
        "a value with several outputs read without picking one (`split.0`), or a pick of an output that does not exist",
    ),
    "E0405": Code("infer", "BadShare", "a `share` of a learnable tensor the layers do not both have, or of different shapes"),
    "E0406": Code("infer", "PluginFailure", "a plugin op's rule failed with an exception other than ShapeError (a bug in the plugin)"),
    "E0407": Code(
        "infer",
        "TooLarge",
        "the model is absurdly large: more parameters than `--max-params`, a value of more than 2³¹ elements per sample, or (when building) more memory for its weights and one forward pass than this process may allocate",
    ),
    "E0408": Code("infer", "OverBudget", "the model exceeds a budget the spec declares (`budgets`: params, MACs, training-step memory)"),
    "E0409": Code("infer", "NotExportable", "with `check --target`, a layer that would not export to that target (the export table)"),
    "E0501": Code(
        "train",
        "DataUnreadable",
        "the data cannot be read: a missing `root`, file or folder, no test split, a tensors file without `inputs`/`targets`, a data file whose tensors are not dense float or integer tensors, negative labels, token ids beyond `vocab_size`, more samples or image-folder entries than the limits",
    ),
    "E0502": Code(
        "train",
        "DataModelMismatch",
        "data and model do not fit: sample shape vs input shape, fewer outputs than classes, a classification loss on float targets, a metric this run does not measure, batches of one sample for a model with batch norm, targets by output name under one loss",
    ),
    "E0503": Code(
        "train",
        "BadInitialWeights",
        "`init.from` cannot be read (a checkpoint without a model, non-string keys, tensors that are not dense CPU data), or (with `strict`) its keys or shapes differ from the model's",
    ),
    "E0504": Code(
        "train", "PatternMatchesNothing", "a `freeze`, `exclude` or `groups` pattern matches no parameter, or every parameter is frozen"
    ),
    "E0505": Code("train", "DeviceUnavailable", "the requested device is not available"),
    "E0506": Code("train", "NoTrainSection", "the spec has no train section"),
    "W0301": Code("resolve", "Unused", "a layer's output, a learnable tensor or a model input is never used"),
    "W0401": Code(
        "infer",
        "PositionGap",
        "a layer skipped by a condition that reads shapes keeps its position, so a later layer with weights in its list skips a number",
    ),
}
