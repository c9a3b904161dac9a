"""The JSON Schema of the `train:` section: data, transforms, loss, optimizer, schedule, checkpoints.

Pure data, no torch. The runtime maps every name here to its torch class; a test keeps the two
lists equal. Defaults written here (`default`) are the ones the runtime applies.
"""

from __future__ import annotations

from typing import Any

from .anchors import anchored

POSITIVE = {"type": "number", "exclusiveMinimum": 0}
NON_NEGATIVE = {"type": "number", "minimum": 0}
FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
OPEN_FRACTION = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
COUNT = {"type": "integer", "minimum": 1}
MAX_SAMPLES = 10**8
"""The most samples a dataset may have (a fake dataset's size, token windows per epoch, a tensors file's rows)."""
SAMPLES = {**COUNT, "maximum": MAX_SAMPLES}
PATH = {"type": "string", "minLength": 1}
PATTERNS = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}, "title": "a list of layer id patterns"}
SIZE = {"anyOf": [COUNT, {"type": "array", "minItems": 2, "maxItems": 2, "items": COUNT}], "title": "a size (an integer or [h, w])"}
AUTO_OR_BOOL = {"anyOf": [{"const": "auto"}, {"type": "boolean"}], "default": "auto"}

TORCHVISION_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
"""Datasets with an official test split, downloaded by torchvision into `root`."""

DATASETS: dict[str, dict[str, Any]] = {
    **{name: {"root": PATH, "download": {"type": "boolean", "default": False}} for name in TORCHVISION_DATASETS},
    "image_folder": {"root": PATH, "val_root": PATH},
    "fake": {
        "size": {**SAMPLES, "default": 1000},
        "image_size": {"type": "array", "minItems": 1, "items": COUNT, "default": [3, 32, 32]},
        "num_classes": {**COUNT, "default": 10},
    },
    "digits": {},
    "tensors": {"path": PATH},
    "tokens": {
        "path": {**PATH, "description": "token ids: .npy, .pt (a 1-D integer tensor) or .bin (raw, see dtype)"},
        "block_size": {**COUNT, "description": "tokens per window; default: the model's sequence length (its input's largest size)"},
        "samples": {**SAMPLES, "description": "training windows per epoch, at random offsets; default: as many as fit side by side"},
        "dtype": {"enum": ["uint16", "int32", "int64"], "default": "uint16", "description": "of a .bin file (nanoGPT writes uint16)"},
        "vocab_size": {**COUNT, "description": "the number of token ids; default: the largest id in the file + 1 (a scan)"},
    },
}
DATASET_REQUIRED = {**{name: ["root"] for name in TORCHVISION_DATASETS}, "image_folder": ["root"], "tensors": ["path"], "tokens": ["path"]}

TRANSFORMS: dict[str, dict[str, Any]] = {
    "normalize": {
        "mean": {"type": "array", "minItems": 1, "items": {"type": "number"}},
        "std": {"type": "array", "minItems": 1, "items": POSITIVE},
    },
    "resize": {"size": SIZE},
    "center_crop": {"size": SIZE},
    "random_crop": {"size": SIZE, "padding": {"type": "integer", "minimum": 0}},
    "random_resized_crop": {
        "size": SIZE,
        "scale": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}},
    },
    "random_horizontal_flip": {"p": FRACTION},
    "random_rotation": {"degrees": NON_NEGATIVE},
    "color_jitter": {
        "brightness": NON_NEGATIVE,
        "contrast": NON_NEGATIVE,
        "saturation": NON_NEGATIVE,
        "hue": {"type": "number", "minimum": 0, "maximum": 0.5},
    },
}
TRANSFORM_REQUIRED = {
    "normalize": ["mean", "std"],
    "resize": ["size"],
    "center_crop": ["size"],
    "random_crop": ["size"],
    "random_resized_crop": ["size"],
    "random_rotation": ["degrees"],
}

LOSSES: dict[str, dict[str, Any]] = {
    "cross_entropy": {"label_smoothing": FRACTION, "ignore_index": {"type": "integer", "description": "a target id not scored"}},
    "nll": {"ignore_index": {"type": "integer"}},
    "mse": {},
    "l1": {},
    "smooth_l1": {"beta": POSITIVE},
    "bce_with_logits": {},
}
CLASSIFICATION_LOSSES = ("cross_entropy", "nll")

_ADAM = {
    "betas": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}},
    "eps": POSITIVE,
}
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": NON_NEGATIVE, "dampening": NON_NEGATIVE, "nesterov": {"type": "boolean"}},
    "adam": {**_ADAM, "amsgrad": {"type": "boolean"}},
    "adamw": {**_ADAM, "amsgrad": {"type": "boolean"}},
    "rmsprop": {"alpha": FRACTION, "eps": POSITIVE, "momentum": NON_NEGATIVE, "centered": {"type": "boolean"}},
    "adagrad": {"lr_decay": NON_NEGATIVE, "eps": POSITIVE},
}
OPTIMIZER_COMMON = {"lr": POSITIVE, "weight_decay": NON_NEGATIVE}

SCHEDULES: dict[str, dict[str, Any]] = {
    "constant": {"warmup_epochs": NON_NEGATIVE},
    "step": {"step_size": {**COUNT, "description": "epochs between decays"}, "gamma": POSITIVE, "warmup_epochs": NON_NEGATIVE},
    "cosine": {"min_lr": NON_NEGATIVE, "warmup_epochs": NON_NEGATIVE},
    "onecycle": {"max_lr": POSITIVE, "pct_start": OPEN_FRACTION, "div_factor": POSITIVE, "final_div_factor": POSITIVE},
    "plateau": {"factor": OPEN_FRACTION, "patience": {"type": "integer", "minimum": 0}, "min_lr": NON_NEGATIVE},
}
SCHEDULE_REQUIRED = {"step": ["step_size"]}

METRICS = ("train_loss", "val_loss", "val_accuracy", "val_top5", "val_perplexity")
METRIC_PATTERN = r"^(train_loss|val_([A-Za-z0-9_-]+_)?(loss|accuracy|top5|perplexity))$"
"""What an epoch reports (accuracy for classification losses, top-5 with more than 5 classes,
perplexity for next-token prediction)."""
AMP_MODES = ("auto", "off", "bf16", "fp16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _kinds(
    key: str, kinds: dict[str, dict[str, Any]], common: dict[str, Any], required: dict[str, list[str]], title: str
) -> dict[str, Any]:
    """A mapping whose `key` picks one of `kinds`, each with its own allowed (and required) keys."""
    branches = []
    for name, params in kinds.items():
        then: dict[str, Any] = {"properties": {key: True, **common, **params}, "additionalProperties": False}
        if required.get(name):
            then["required"] = required[name]
        branches.append({"if": {"properties": {key: {"const": name}}, "required": [key]}, "then": then})
    return {
        "type": "object",
        "title": title,
        "required": [key],
        "properties": {key: {"enum": list(kinds)}, **common},
        "allOf": branches,
    }


def _optimizer() -> dict[str, Any]:
    schema = _kinds("type", OPTIMIZERS, {**OPTIMIZER_COMMON, "groups": True}, {}, "an optimizer")
    schema["required"] = ["type", "lr"]
    schema["properties"]["groups"] = {
        "type": "array",
        "description": "parameter groups with their own options; the first group whose patterns match a layer id wins",
        "items": {
            "type": "object",
            "required": ["params"],
            "properties": {"params": PATTERNS, **OPTIMIZER_COMMON, **{k: v for p in OPTIMIZERS.values() for k, v in p.items()}},
            "additionalProperties": False,
        },
    }
    return schema


def _monitor() -> dict[str, Any]:
    metric = {
        "type": "string",
        "pattern": METRIC_PATTERN,
        "examples": list(METRICS),
        "description": "a metric the run reports: train_loss, val_loss, val_accuracy, val_top5, val_perplexity, "
        "or with a loss per output val_NAME_loss, val_NAME_accuracy, val_NAME_top5",
    }
    return {"metric": metric, "mode": {"enum": ["min", "max"]}}


def _loss() -> dict[str, Any]:
    """A loss (`cross_entropy`, `{type: smooth_l1, beta: 0.5}`), or a loss per named output with
    weights (`{logits: cross_entropy, box: {type: smooth_l1, weight: 0.5}}`)."""
    one = {"anyOf": [{"type": "string", "enum": list(LOSSES)}, _kinds("type", LOSSES, {}, {}, "a loss")]}
    weighted = {"anyOf": [{"type": "string", "enum": list(LOSSES)}, _kinds("type", LOSSES, {"weight": POSITIVE}, {}, "a weighted loss")]}
    per_output = {
        "type": "object",
        "title": "a loss per model output",
        "minProperties": 1,
        "not": {"required": ["type"]},
        "additionalProperties": weighted,
    }
    return {"anyOf": [*one["anyOf"], per_output], "default": "cross_entropy"}


def _data() -> dict[str, Any]:
    data = _kinds("dataset", DATASETS, {}, DATASET_REQUIRED, "a dataset")
    data["properties"].update(
        val_split={
            "anyOf": [OPEN_FRACTION, {"const": "test"}],
            "description": "a fraction of the training set held out (seeded), or 'test' for the dataset's test split; "
            "default 'test' where the dataset has one, else 0.2",
        },
        resident={**AUTO_OR_BOOL, "description": "keep the whole dataset as one tensor on the device (no DataLoader)"},
        workers={"anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 0}], "default": "auto"},
    )
    for branch in data["allOf"]:
        branch["then"]["properties"].update(val_split=True, resident=True, workers=True)
    return data


def train_schema() -> dict[str, Any]:
    """The schema of the `train:` section (also of a `--config` file)."""
    transforms = {"type": "array", "items": _kinds("op", TRANSFORMS, {}, TRANSFORM_REQUIRED, "a transform")}
    loss = _loss()
    return anchored(
        {
            "type": "object",
            "required": ["data", "optimizer"],
            "additionalProperties": False,
            "properties": {
                "epochs": {**COUNT, "default": 10},
                "batch_size": {**COUNT, "default": 64},
                "seed": {"type": "integer", "minimum": 0, "default": 0},
                "data": _data(),
                "transforms": {"type": "object", "properties": {"train": transforms, "val": transforms}, "additionalProperties": False},
                "loss": loss,
                "optimizer": _optimizer(),
                "schedule": _kinds("type", SCHEDULES, {}, SCHEDULE_REQUIRED, "a schedule"),
                "accumulate": {**COUNT, "default": 1, "description": "batches whose gradients are summed before each optimizer step"},
                "clip_grad_norm": POSITIVE,
                "early_stopping": {
                    "type": "object",
                    "properties": {
                        **_monitor(),
                        "patience": {"type": "integer", "minimum": 1, "default": 5},
                        "min_delta": {**NON_NEGATIVE, "default": 0},
                    },
                    "additionalProperties": False,
                },
                "checkpoint": {
                    "type": "object",
                    "properties": _monitor(),
                    "additionalProperties": False,
                    "description": "which metric picks best.pt",
                },
                "init": {
                    "type": "object",
                    "required": ["from"],
                    "properties": {
                        "from": {**PATH, "description": "an nncompile checkpoint or a state_dict file (torchvision format)"},
                        "strict": {"type": "boolean", "default": True},
                        "exclude": PATTERNS,
                    },
                    "additionalProperties": False,
                },
                "freeze": PATTERNS,
                "device": {"type": "string", "pattern": "^(auto|cpu|cuda(:[0-9]+)?|mps)$", "default": "auto"},
                "amp": {"enum": list(AMP_MODES), "default": "auto"},
                "channels_last": AUTO_OR_BOOL,
                "compile": {
                    "anyOf": [
                        {"type": "boolean"},
                        {
                            "type": "object",
                            "properties": {"mode": {"enum": list(COMPILE_MODES), "default": "default"}},
                            "additionalProperties": False,
                        },
                    ],
                    "default": False,
                    "description": "torch.compile the model for training and evaluation (true, or {mode: max-autotune, …})",
                },
                "sync_batchnorm": {
                    "type": "boolean",
                    "default": False,
                    "description": "with several processes, batch statistics over all of them (nn.SyncBatchNorm)",
                },
            },
        }
    )
