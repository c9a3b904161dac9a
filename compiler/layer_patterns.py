"""Layer patterns (`fc`, `layer4`, `layer1.*`): how `train.freeze`, optimizer groups and `init.exclude`
name layers. Used by the runtime to train and by `summary` (no torch) to show what is frozen."""

from __future__ import annotations

from fnmatch import fnmatchcase


def matches(name: str, pattern: str) -> bool:
    """Whether `name` (a parameter `layer1.0.conv1.weight` or a layer `layer1.0.conv1`) lies in a layer
    matching `pattern`: the pattern is matched against the name and each of its dotted prefixes."""
    parts = name.split(".")
    return any(fnmatchcase(".".join(parts[:end]), pattern) for end in range(1, len(parts) + 1))
