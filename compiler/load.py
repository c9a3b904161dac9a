"""Load: safe YAML text → plain data plus a source map (a span for every key and value).

The document is built from libyaml's event stream by an explicit stack, so that no
Python object is ever constructed from a tag, duplicate keys are caught, and nesting,
alias expansion and size are bounded before anything downstream sees the data.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .diagnostics import Diagnostic, Span

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000

Key = str | int
JsonPath = tuple[Key, ...]

_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_CONTAINER_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.1 scalars, plus exponent floats without a dot (`1e-3`), as people write them."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_RESOLVER = _Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_UNSEEN = object()


@dataclass(frozen=True)
class Document:
    """A loaded spec: its data and where every piece of it came from."""

    path: str
    text: str
    data: Any
    spans: dict[JsonPath, Span] = field(repr=False)
    key_spans: dict[JsonPath, Span] = field(repr=False)
    sources: dict[str, str] = field(default_factory=dict, repr=False)
    """The text of every other file a span may point into (a `--config` file, the `--set` flags)."""

    def source(self, file: str) -> str | None:
        """The text of `file`, for showing the line a diagnostic points at."""
        return self.text if file == self.path else self.sources.get(file)

    def span(self, path: JsonPath) -> Span:
        """The span of the value at `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.spans.get(tuple(path[:end]))
            if found:
                return found
        return Span(self.path, 1, 1)

    def key_span(self, path: JsonPath) -> Span:
        """The span of the key naming the value at `path` (the value's span if none)."""
        return self.key_spans.get(tuple(path)) or self.span(path)


class LoadError(Exception):
    def __init__(self, code: str, message: str, span: Span, hint: str | None = None):
        super().__init__(message)
        self.diagnostic = Diagnostic(code, message, span, hint)


def read_limited(path: str | Path) -> bytes | None:
    """The bytes of a regular file, or None if it holds more than MAX_BYTES. A device, FIFO or socket
    (`/dev/zero`, a named pipe) is refused without reading or waiting: OSError(EINVAL).
    A missing file raises FileNotFoundError; other OS errors propagate for the caller to report."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = handle.read(MAX_BYTES + 1)
    return None if len(data) > MAX_BYTES else data


STDIN, STDIN_NAME = "-", "<stdin>"


def load_file(path: str | Path) -> tuple[Document | None, list[Diagnostic]]:
    """Read and load a spec file, or standard input for `-`; a missing or unreadable file is the
    caller's usage error (OSError)."""
    name = STDIN_NAME if str(path) == STDIN else str(path)
    data = _standard_input() if str(path) == STDIN else read_limited(path)
    if data is None:
        return None, [Diagnostic("E0104", f"spec is over the {MAX_BYTES}-byte limit", Span(name, 1, 1))]
    return load_text(data, name)


@functools.cache
def _standard_input() -> bytes | None:
    """Standard input's bytes, read once (a command may load its spec more than once), or None if
    they are more than MAX_BYTES."""
    data = sys.stdin.buffer.read(MAX_BYTES + 1)
    return None if len(data) > MAX_BYTES else data


def load_text(raw: bytes | str, name: str = "<string>") -> tuple[Document | None, list[Diagnostic]]:
    """Load a spec from bytes or text. Returns the document, or None and the diagnostics."""
    try:
        text = _decode(raw, name)
        if len(text) > MAX_BYTES:
            raise LoadError("E0104", f"spec is over the {MAX_BYTES}-byte limit", Span(name, 1, 1))
        builder = _Builder(name)
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
        return builder.document(text), []
    except LoadError as error:
        return None, [error.diagnostic]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        span = Span(name, mark.line + 1, mark.column + 1) if mark else Span(name, 1, 1)
        message = f"YAML syntax error: {error.problem or error.context}"
        return None, [Diagnostic("E0101", message, span, _syntax_hint(error, text))]
    except yaml.reader.ReaderError as error:
        before = text[: error.position]
        span = Span(name, before.count("\n") + 1, error.position - (before.rfind("\n") + 1) + 1)
        code = error.character if isinstance(error.character, int) else ord(error.character)
        message = f"spec contains a character YAML does not allow (#x{code:04x}: {error.reason})"
        return None, [Diagnostic("E0105", message, span)]


def _syntax_hint(error: yaml.MarkedYAMLError, text: str) -> str | None:
    """Where the construct that broke began, or that tabs cannot indent YAML."""
    mark = error.problem_mark
    if mark and mark.index < len(text) and text[mark.index] == "\t":
        return "YAML does not allow tabs for indentation: use spaces"
    context = error.context_mark
    if error.context and "flow" in error.context and mark and "$" in text[text.rfind("\n", 0, mark.index) + 1 : mark.index + 1]:
        return "inside {…} or […], quote an expression that holds , [ ] { }: out: '$make_divisible($w * 0.25, 8)'"
    if error.context and context and (not mark or context.line != mark.line or context.column != mark.column):
        return f"{error.context} at line {context.line + 1}, column {context.column + 1}"
    return None


def _decode(raw: bytes | str, name: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        col = error.start - (before.rfind(b"\n") + 1) + 1
        message = f"spec is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start})"
        raise LoadError("E0105", message, Span(name, line, col)) from None


def _span(name: str, event: yaml.Event) -> Span:
    start, end = event.start_mark, event.end_mark
    return Span(name, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


@dataclass
class _Frame:
    container: dict | list
    path: JsonPath
    start_count: int
    anchor: str | None
    pending_key: str | None = None


class _Builder:
    """Turns libyaml events into plain data, recording spans, within the limits above."""

    def __init__(self, name: str):
        self.name = name
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.count = 0
        self.documents = 0
        self.root: Any = None
        self.spans: dict[JsonPath, Span] = {}
        self.key_spans: dict[JsonPath, Span] = {}
        self.scalars: dict[tuple, Any] = {}

    def document(self, text: str) -> Document:
        if self.documents == 0 or self.root is None:
            raise LoadError("E0106", "spec is empty", Span(self.name, 1, 1), "a spec is a YAML mapping")
        return Document(self.name, text, self.root, self.spans, self.key_spans)

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise LoadError("E0108", "a spec file holds exactly one YAML document", _span(self.name, event))
        elif isinstance(event, yaml.ScalarEvent):
            self._scalar(event)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self._start(event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self._end()
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        frame = self.stack[-1] if self.stack else None
        if isinstance(frame and frame.container, dict) and frame.pending_key is None:
            self._key(frame, event)
            return
        key = (event.tag, event.value, event.implicit)
        value = self.scalars.get(key, _UNSEEN)
        if value is _UNSEEN:
            value = self.scalars[key] = self._value(event)
        self.count += len(event.value) // 256
        self._place(value, _span(self.name, event), event.anchor, size=1)

    def _value(self, event: yaml.ScalarEvent) -> Any:
        """A scalar's value; the same text with the same tag always gives the same (immutable) value,
        so the builder keeps each and resolves a repeated one once."""
        self._check_tag(event, _CORE_TAGS)
        tag = event.tag if event.tag not in (None, "!") else None
        if tag is None:
            implicit = event.implicit if event.tag is None else (False, True)
            tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, implicit)
        if tag == "tag:yaml.org,2002:timestamp":
            tag = "tag:yaml.org,2002:str"
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
        kind = tag.rsplit(":", 1)[-1]
        try:
            value = _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
        except (ValueError, KeyError, TypeError, yaml.YAMLError):
            raise LoadError("E0101", f"invalid {kind} value {event.value!r}", _span(self.name, event)) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise LoadError("E0101", f"non-finite number {event.value!r}", _span(self.name, event), "specs hold finite numbers only")
        if isinstance(value, int) and value.bit_length() > 63:
            raise LoadError(
                "E0101", f"integer {event.value[:40]!r}… is too large", _span(self.name, event), "integers in a spec are below 2**63"
            )
        return value

    def _key(self, frame: _Frame, event: yaml.ScalarEvent) -> None:
        self._check_tag(event, {"tag:yaml.org,2002:str"})
        key = event.value
        path = (*frame.path, key)
        if key in frame.container:
            first = self.key_spans[path]
            raise LoadError(
                "E0103",
                f"duplicate key '{key}' (first defined at line {first.line})",
                _span(self.name, event),
                "each key may appear once in a mapping",
            )
        if key == "<<" and event.implicit[0]:
            raise LoadError("E0102", "YAML merge keys ('<<') are not supported", _span(self.name, event))
        frame.pending_key = key
        self.key_spans[path] = _span(self.name, event)

    def _start(self, event: yaml.CollectionStartEvent) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame and isinstance(frame.container, dict) and frame.pending_key is None:
            raise LoadError("E0101", "mapping keys must be plain strings", _span(self.name, event))
        self._check_tag(event, _CONTAINER_TAGS)
        if len(self.stack) >= MAX_DEPTH:
            raise LoadError("E0107", f"spec is nested deeper than {MAX_DEPTH} levels", _span(self.name, event))
        container: dict | list = {} if isinstance(event, yaml.MappingStartEvent) else []
        path = self._child_path()
        self.spans[path] = _span(self.name, event)
        self._count(1, event)
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(container, path, self.count, event.anchor))

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (frame.container, self.count - frame.start_count + 1)
        self._attach(frame.container)

    def _alias(self, event: yaml.AliasEvent) -> None:
        if event.anchor in self.open_anchors:
            raise LoadError("E0107", f"alias '*{event.anchor}' refers to itself", _span(self.name, event))
        if event.anchor not in self.anchors:
            raise LoadError("E0101", f"unknown alias '*{event.anchor}'", _span(self.name, event))
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.container, dict) and frame.pending_key is None:
            raise LoadError(
                "E0101", f"alias '*{event.anchor}' cannot be a mapping key", _span(self.name, event), "mapping keys are plain strings"
            )
        value, size = self.anchors[event.anchor]
        self._place(value, _span(self.name, event), None, size + _text_size(value))

    def _place(self, value: Any, span: Span, anchor: str | None, size: int) -> None:
        self.spans[self._child_path()] = span
        self._count(size, span)
        if anchor:
            self.anchors[anchor] = (value, size)
        self._attach(value)

    def _attach(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if isinstance(frame.container, dict):
            frame.container[frame.pending_key] = value
            frame.pending_key = None
        else:
            frame.container.append(value)

    def _child_path(self) -> JsonPath:
        if not self.stack:
            return ()
        frame = self.stack[-1]
        key = frame.pending_key if isinstance(frame.container, dict) else len(frame.container)
        return (*frame.path, key)

    def _count(self, size: int, where: yaml.Event | Span) -> None:
        self.count += size
        if self.count > MAX_NODES:
            span = where if isinstance(where, Span) else _span(self.name, where)
            message = f"spec expands to more than {MAX_NODES} YAML nodes (alias expansion or sheer size)"
            raise LoadError("E0107", message, span)

    def _check_tag(self, event: yaml.NodeEvent, allowed: set[str]) -> None:
        tag = getattr(event, "tag", None)
        if tag in (None, "!") or tag in allowed:
            return
        raise LoadError(
            "E0102",
            f"YAML tag '{tag}' is not allowed",
            _span(self.name, event),
            "specs are plain data: tags that construct objects are never executed",
        )


def _text_size(value: Any) -> int:
    """What an alias of a long string costs downstream, in nodes: its length / 256."""
    return len(value) // 256 if isinstance(value, str) else 0
