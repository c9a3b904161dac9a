"""Diagnostics as values: what went wrong, where, and what to do about it."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns are 1-based."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


class SpecError(Exception):
    """Raised by the Python API when a spec has errors; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(render_text(d) for d in diagnostics if d.is_error))


class UsageError(Exception):
    """A mistake in how nncompile was invoked (a missing file, a bad flag or override): exit status 2.
    The message is one line (a newline in it is printed as an escape); `details` are printed one a line
    below it (`missing: fc1.weight`)."""

    def __init__(self, message: str, details: Sequence[str] = ()):
        super().__init__(message)
        self.details = tuple(details)


_IGNORE = re.compile(r"#\s*nncompile:\s*ignore\[([A-Z0-9, ]+)\]")


def silenced(diagnostics: list[Diagnostic], file: str, text: str) -> list[Diagnostic]:
    """`diagnostics` without the warnings that a comment on their line silences:
    `# nncompile: ignore[W0301]` (codes separated by commas). Errors cannot be silenced."""
    ignored: dict[int, set[str]] = {}
    for match in _IGNORE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        ignored.setdefault(line, set()).update(code.strip() for code in match.group(1).split(","))
    if not ignored:
        return diagnostics
    return [d for d in diagnostics if d.is_error or d.span is None or d.span.file != file or d.code not in ignored.get(d.span.line, ())]


_LAYER_PATH = re.compile(r"layer '[^']*'")


def merged_copies(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per place and problem: the same error in every copy of a repeated block (same
    span, code and hint, messages that differ only in the layer's path) is reported once, counted."""
    groups: dict[tuple, list[Diagnostic]] = {}
    for d in sorted(diagnostics, key=sort_key):
        groups.setdefault((d.span, d.code, d.severity, d.hint, _LAYER_PATH.sub("layer ?", d.message)), []).append(d)
    merged = []
    for group in groups.values():
        first = group[0]
        if len(group) > 1:
            first = dataclasses.replace(first, message=f"{first.message} (and in {len(group) - 1} more copies of this layer)")
        merged.append(first)
    return sorted(merged, key=sort_key)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def sort_key(diagnostic: Diagnostic) -> tuple:
    """Source order; diagnostics at one place by code and message, so the order never varies."""
    span = diagnostic.span
    where = (span.file, span.line, span.col) if span else ("", 0, 0)
    return (*where, diagnostic.code, diagnostic.message)


_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """Control characters shown as escapes (`\\n`, `\\x85`, `\\u2028`): every line break (CR, LF, NEL,
    the Unicode line and paragraph separators), ANSI escapes, bidirectional overrides, and the bytes of a
    file name that is not UTF-8 (`\\udcff`). A spec's keys, a weights file's keys and a file's name can
    never start a line of output (a CI workflow command), drive the terminal or fail to print."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def render_text(diagnostic: Diagnostic, source: str | Sequence[str] | None = None, colour: bool = False) -> str:
    """`file:line:col: error[E0302]: message`, then the source line with a caret, then the hint.
    `source` is the file's text or, cheaper for many diagnostics, its lines; `colour` adds ANSI
    colours (a terminal's), which change no character of the text."""
    paint = _painter(diagnostic.severity) if colour else _plain
    head = f"{paint('severity', f'{diagnostic.severity.value}[{diagnostic.code}]')}: {paint('bold', printable(diagnostic.message))}"
    span = diagnostic.span
    lines = [f"{paint('bold', printable(f'{_file_at_line_start(span.file)}:{span.line}:{span.col}:'))} {head}" if span else head]
    if span and source is not None:
        snippet = _snippet(span, source.splitlines() if isinstance(source, str) else source)
        if snippet:  # the caret in the severity's colour
            caret = snippet[-1]
            snippet[-1] = caret.rstrip("^") + paint("severity", caret[len(caret.rstrip("^")) :])
        lines.extend(snippet)
    if diagnostic.hint:
        lines.append(paint("hint", printable(f"  = hint: {diagnostic.hint}")))
    return "\n".join(lines)


ANSI = {"bold": "1", "hint": "36", Severity.ERROR: "1;31", Severity.WARNING: "1;33"}


def _plain(_role: str, text: str) -> str:
    return text


def _painter(severity: Severity):
    """Wraps text in the ANSI colour of its role: the severity's colour for the code and the caret."""

    def paint(role: str, text: str) -> str:
        code = ANSI[severity] if role == "severity" else ANSI[role]
        return f"\x1b[{code}m{text}\x1b[0m"

    return paint


def _file_at_line_start(file: str) -> str:
    """A file name as the start of a line: `./` before one that would start a CI workflow command (`::`)."""
    return f"./{file}" if file.lstrip().startswith("::") else file


SNIPPET_WIDTH = 200


def _snippet(span: Span, source_lines: Sequence[str]) -> list[str]:
    """The line and a caret under the span; of a long line, the 200 characters around the column (a
    caret far along a one-line spec was as long as the line, for every diagnostic on it)."""
    if not 1 <= span.line <= len(source_lines):
        return []
    text = printable(source_lines[span.line - 1].expandtabs(1))
    start = max(0, min(span.col - 1 - SNIPPET_WIDTH // 2, len(text) - SNIPPET_WIDTH))
    col = span.col - start + (1 if start else 0)
    text = ("…" if start else "") + text[start : start + SNIPPET_WIDTH] + ("…" if len(text) > start + SNIPPET_WIDTH else "")
    width = 1
    if span.end_line == span.line and span.end_col and span.end_col > span.col:
        width = span.end_col - span.col
    width = max(1, min(width, len(text) - col + 1))
    gutter = " " * len(str(span.line))
    return [f" {gutter} |", f" {span.line} | {text}", f" {gutter} | {' ' * (col - 1)}{'^' * width}"]


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean …' suggestion, or None."""
    import difflib

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    match = closest(name, candidates)
    return f"did you mean '{match}'?" if match else None
