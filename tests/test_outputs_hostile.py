"""What the compiler commands write and print, against a hostile checkout: a link planted at an output is
replaced, never written through; `-o` that cannot be a file is a usage error before any work; an export
that fails verification leaves what was there; bytes from a spec, a file name or a weights file never
start a line of output (a CI workflow command), nor become markup or script in a picture; a picture's
cost grows with the model, not its square."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from nncompile.compiler import analyze
from nncompile.compiler.picture import Box, Picture, picture, to_dot, to_html, to_mermaid, to_svg

from nncompile.cli import main

TINY = """\
nncompile: 1
name: tiny
inputs: {x: [4]}
layers:
  - {id: fc, op: linear, out: 2}
"""

# every line break a reader may split at: LF, CR, NEL, the Unicode line and paragraph separators
BREAKS = ["\n", "\r", "\x85", "\u2028", "\u2029"]


@pytest.fixture
def tiny(write_spec) -> Path:
    return write_spec(TINY, "tiny.yaml")


def _plant(link: Path, victim: Path) -> None:
    """A symbolic link at `link` to a file outside what was asked to be written."""
    victim.write_text("precious")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(victim)


OUTPUTS = {
    ".pt": ["build"],
    ".pt2": ["build"],
    ".onnx": ["build"],
    ".py": ["build"],
    ".svg": ["graph"],
    ".html": ["graph"],
    ".dot": ["graph"],
    ".mmd": ["graph"],
}


@pytest.mark.parametrize("suffix", sorted(OUTPUTS))
def test_a_link_planted_at_the_output_is_replaced_not_written_through(suffix: str, tiny: Path, tmp_path: Path, capsys):
    if suffix == ".onnx":
        pytest.importorskip("onnxruntime")
    output = tmp_path / "out" / f"model{suffix}"
    victim = tmp_path / f"victim{suffix}"
    _plant(output, victim)
    planted = [output]
    if suffix == ".onnx":  # the exporter writes the weights beside the model
        planted.append(output.with_name(output.name + ".data"))
        _plant(planted[1], tmp_path / "victim.data")
    assert main([*OUTPUTS[suffix], str(tiny), "-o", str(output)]) == 0, capsys.readouterr()
    assert victim.read_text() == "precious"
    assert (tmp_path / "victim.data").read_text() == "precious" if suffix == ".onnx" else True
    for path in planted:
        assert path.is_file() and not path.is_symlink()
    assert output.stat().st_size > 0
    assert sorted(p.name for p in output.parent.iterdir()) == sorted(p.name for p in planted)  # no temporary left


@pytest.mark.parametrize(("command", "default"), [("build", "build/tiny.pt"), ("build", "build/tiny.py"), ("graph", "build/tiny.svg")])
def test_a_link_planted_at_the_default_output_is_replaced(command: str, default: str, tiny: Path, tmp_path: Path, monkeypatch):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    monkeypatch.chdir(checkout)
    victim = tmp_path / "victim"
    _plant(checkout / default, victim)
    extra = ["--emit", "python"] if default.endswith(".py") else []
    assert main([command, str(tiny), *extra]) == 0
    assert victim.read_text() == "precious"
    assert (checkout / default).is_file() and not (checkout / default).is_symlink()


def _refuse_analysis(monkeypatch) -> None:
    from nncompile.compiler.commands import build, graph

    for command in (build, graph):
        monkeypatch.setattr(command, "analyze_spec", lambda *_: pytest.fail("the spec was analysed before the output was checked"))


@pytest.mark.parametrize("argv", [["build"], ["build", "--emit", "python"], ["graph"]])
@pytest.mark.parametrize("where", ["directory", "under a file"])
def test_an_output_that_cannot_be_a_file_is_refused_before_any_work(argv, where, tiny: Path, tmp_path: Path, monkeypatch, capsys):
    _refuse_analysis(monkeypatch)
    (tmp_path / "file").write_text("a file")
    suffix = {"graph": ".svg"}.get(argv[0], ".py" if "python" in argv else ".pt")
    output = tmp_path / f"dir{suffix}" if where == "directory" else tmp_path / "file" / "sub" / f"m{suffix}"
    if where == "directory":
        output.mkdir()
    assert main([argv[0], str(tiny), *argv[1:], "-o", str(output)]) == 2
    err = capsys.readouterr().err
    assert str(output) in err and ("is a directory" in err if where == "directory" else "not a directory" in err), err
    assert "Traceback" not in err
    assert (tmp_path / "file").read_text() == "a file"


def test_an_unknown_export_format_is_refused_before_any_work(tiny: Path, tmp_path: Path, monkeypatch, capsys):
    _refuse_analysis(monkeypatch)
    assert main(["build", str(tiny), "-o", str(tmp_path / "model.h5")]) == 2
    assert "unknown output format '.h5': use one of .pt, .pt2, .onnx, or .py to eject" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a file system that refuses new files (Linux's /proc)")
@pytest.mark.parametrize(("command", "suffix"), [("build", ".pt"), ("build", ".onnx"), ("build", ".py"), ("graph", ".html")])
def test_a_folder_that_refuses_new_files_is_a_usage_error(command: str, suffix: str, tiny: Path, capsys):
    if suffix == ".onnx":
        pytest.importorskip("onnxruntime")
    assert main([command, str(tiny), "-o", f"/proc/model{suffix}"]) == 2  # even root cannot create a file there
    err = capsys.readouterr().err
    assert f"cannot write /proc/model{suffix}: " in err and "Traceback" not in err


@pytest.mark.parametrize("suffix", [".pt", ".pt2", ".onnx"])
def test_an_export_that_fails_verification_leaves_the_old_file(suffix: str, tiny: Path, tmp_path: Path, monkeypatch, capsys):
    if suffix == ".onnx":
        pytest.importorskip("onnxruntime")
    import nncompile.compiler.export
    from nncompile.compiler.export import ExportError

    def differs(expected, actual, path, inputs):
        raise ExportError(f"{path}: reloaded outputs differ from the eager model's")

    monkeypatch.setattr(nncompile.compiler.export, "_compare", differs)
    good, fresh = tmp_path / "good", tmp_path / "fresh"
    good.mkdir()
    fresh.mkdir()
    (good / f"model{suffix}").write_text("a good export")
    for folder in (good, fresh):
        assert main(["build", str(tiny), "-o", str(folder / f"model{suffix}")]) == 2
        err = capsys.readouterr().err
        assert f"{folder / f'model{suffix}'}: reloaded outputs differ" in err  # the target is named, not a temporary file
    assert [p.name for p in good.iterdir()] == [f"model{suffix}"] and (good / f"model{suffix}").read_text() == "a good export"
    assert list(fresh.iterdir()) == []


def _forged(text: str) -> list[str]:
    """The lines of `text`, split at every line break a reader may honour, that are workflow commands."""
    return [line for line in text.splitlines() if line.lstrip().startswith("::")]


def test_a_weights_key_cannot_forge_a_workflow_command(tiny: Path, tmp_path: Path, capsys):
    torch = pytest.importorskip("torch")
    from nncompile import compiler

    state = compiler.build(tiny).state_dict()
    for i, brk in enumerate(BREAKS):
        state[f"extra{i}{brk}::error file=README.md,line=1::forged{i}"] = torch.zeros(1)
    weights = tmp_path / "weights.pt"
    torch.save(state, weights)
    assert main(["build", str(tiny), "--weights", str(weights), "-o", str(tmp_path / "m.pt")]) == 2
    out, err = capsys.readouterr()
    assert _forged(out + err) == []
    for i, brk in enumerate(BREAKS):
        assert f"unexpected: extra{i}{repr(brk)[1:-1]}::error file=README.md,line=1::forged{i}" in err
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("brk", BREAKS)
def test_a_file_name_in_a_usage_error_cannot_start_a_line(brk: str, tiny: Path, tmp_path: Path, capsys):
    forged = tmp_path / f"x{brk}::error file=README.md,line=1::forged"
    for argv in (["build", str(forged)], ["graph", str(forged)], ["build", str(tiny), "--weights", str(forged), "-o", "m.pt"]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert _forged(out + err) == [] and len(err.splitlines()) == 1, err
        assert f"x{repr(brk)[1:-1]}::error file=README.md" in err


@pytest.mark.parametrize("brk", BREAKS)
def test_github_annotations_hold_one_line_per_diagnostic_whatever_the_spec_holds(brk: str, write_spec, capsys):
    key = f"bad{brk}::error file=README.md,line=1::forged"
    spec = write_spec(TINY + f"{json.dumps(key)}: 1\n", "spec.yaml")
    assert main(["check", str(spec), "--format", "json"]) == 1
    count = len(json.loads(capsys.readouterr().out))
    assert main(["check", str(spec), "--format", "github"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert count >= 1 and len(lines) == count and all(line.startswith(f"::error file={spec},") for line in lines), lines
    assert _forged(err) == []


def test_a_file_name_that_is_not_utf8_is_reported_in_every_format(tmp_path: Path, capsys):
    name = os.fsdecode(b"\xff.yaml")  # Python keeps the byte as the surrogate U+DCFF
    spec = tmp_path / name
    spec.write_text(TINY.replace("op: linear", "op: linearx"))
    reports = {}
    for fmt in ("text", "github", "json", "sarif"):
        assert main(["check", str(spec), "--format", fmt]) == 1, fmt
        reports[fmt] = capsys.readouterr().out
    sarif = json.loads(reports["sarif"])
    uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.endswith("/%FF.yaml")
    assert "\\udcff.yaml:5:" in reports["text"] and "\\udcff.yaml" in reports["github"]
    assert json.loads(reports["json"])[0]["code"] == "E0301"


def test_a_set_value_that_is_not_utf8_is_a_usage_error(tiny: Path, capsys):
    assert main(["check", str(tiny), "--set", "x=" + os.fsdecode(b"\xff")]) == 2
    err = capsys.readouterr().err
    assert "--set x: not UTF-8 text" in err and "Traceback" not in err


def test_an_export_named_with_bytes_that_are_not_utf8_is_a_usage_error(tmp_path: Path):
    """torch.export aborted the whole process (SIGABRT) on such a name; the others failed as exports."""
    spec = tmp_path / os.fsdecode(b"\xfe.yaml")
    spec.write_text(TINY)
    command = [sys.executable, "-m", "nncompile", "build", os.fsencode(spec)]
    for extra in ([], ["-o", os.fsencode(tmp_path / os.fsdecode(b"o\xfe.pt2"))]):
        result = subprocess.run([*command, *extra], capture_output=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        err = result.stderr.decode("utf-8")
        assert result.returncode == 2, err
        assert "\\udcfe.pt" in err and "exporters take only UTF-8 file names" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [spec.name]


# -- pictures -------------------------------------------------------------------------------------

HOSTILE_LINES = """\
nncompile: 1
name: tiny
inputs: {x: [4]}  # <!--<script>document.body.dataset.injected = "comment"</script>
layers:
  - {id: fc, op: linear, out: 2}  # </script><script>document.body.dataset.injected = "line"</script> {{svg}} {{data}} &amp;
"""


def _hostile_page(tmp_path: Path) -> Path:
    spec = tmp_path / "x<!--<script>.yaml"
    spec.write_text(HOSTILE_LINES)
    page = tmp_path / "page.html"
    assert main(["graph", str(spec), "-o", str(page)]) == 0
    return page


def test_an_html_page_carries_no_markup_from_the_spec(tmp_path: Path):
    page = _hostile_page(tmp_path).read_text()
    assert page.count("<script") == 1 and page.count("</script") == 1  # the page's own element only
    assert "<!--" not in page and page.count("const details") == 1  # no value was read as a slot of the page
    script = page[page.index("<script>") : page.index("</script>")]
    details = json.loads(re.search(r"const details = (\{.*?\});\n", script).group(1))
    assert "</script><script>" in details["fc"]["text"] and "{{data}} &amp;" in details["fc"]["text"]  # shown as written
    assert details["fc"]["where"].endswith("x<!--<script>.yaml:5")


def test_picture_text_is_escaped_for_each_format():
    hostile = 'a"]; evil\n} digraph x { <script>`**md**`'
    box = Box(hostile, "op<!--", "[B, 4]", 0, 1, (hostile,))
    pic = Picture(hostile, {hostile: box}, [], {hostile: hostile})
    dot = to_dot(pic)
    assert len(dot.splitlines()) == 7 and dot.count('"cluster_a\\"]; evil\\\\n} digraph x {') == 1
    assert all(line.endswith(("{", ";", "}")) for line in dot.splitlines())
    mermaid = to_mermaid(pic)
    assert len(mermaid.splitlines()) == 4 and "<script" not in mermaid and "`" not in mermaid
    svg = to_svg(pic)
    assert "<script" not in svg and "<!--" not in svg
    import xml.etree.ElementTree as ElementTree

    ElementTree.fromstring(svg)  # still well-formed XML


CHROMIUM = None
if sys.platform != "win32":
    import shutil

    CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt install chromium)")
def test_an_html_page_from_a_hostile_spec_runs_only_its_own_script(tmp_path: Path):
    from test_graph import _open

    dom, console = _open(_hostile_page(tmp_path))
    assert console == []
    assert 'data-ready="yes"' in dom and "data-injected" not in dom


def _steps(draw, pic: Picture, budget: int) -> int:
    """Lines of the picture modules (compiler/picture*.py) run by `draw(pic)`; fails as soon as `budget` is passed."""
    import nncompile.compiler.picture

    sources = {str(path) for path in Path(nncompile.compiler.picture.__file__).parent.glob("picture*.py")}
    count = 0

    def line(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
            if count > budget:
                raise RuntimeError(f"{draw.__name__} ran over {budget} steps")
        return line

    sys.settrace(lambda frame, event, arg: line if frame.f_code.co_filename in sources else None)
    try:
        draw(pic)
    finally:
        sys.settrace(None)
    return count


def test_pictures_of_thousands_of_groups_cost_steps_in_proportion_to_their_size(write_spec):
    groups = "".join(f"  - {{id: g{i}, layers: [{{id: inner, layers: [{{op: relu}}]}}, {{op: relu}}]}}\n" for i in range(2000))
    spec = write_spec("nncompile: 1\nname: many\ninputs: {x: [4]}\nlayers:\n" + groups)
    pic = picture(analyze(spec).graph)
    assert len(pic.clusters) == 4000
    size = len(pic.boxes) + len(pic.clusters) + len(pic.edges)
    for draw in (to_dot, to_mermaid, to_svg, lambda p: to_html(p, "\n" * 6, "x.yaml")):
        assert size < _steps(draw, pic, 60 * size)  # 18 an element for DOT and Mermaid, 47 SVG, 50 HTML, at any size


def test_a_picture_of_deeply_nested_groups_grows_with_its_names_not_their_depth(write_spec):
    """Each box once listed every cluster around it (20 deep, 20 ids of 40 characters: 14 bytes of SVG
    for each byte of the names); now it names its innermost, and each cluster its parent."""
    layers = "[{op: relu, repeat: 200}]"
    for depth in range(20):
        layers = f"[{{id: {'n' * 40}{depth}, layers: {layers}}}]"
    pic = picture(analyze(write_spec(f"nncompile: 1\nname: deep\ninputs: {{x: [4]}}\nlayers: {layers}\n")).graph)
    names = sum(map(len, pic.boxes)) + sum(map(len, pic.clusters))
    for draw, most in ((to_svg, 6), (to_dot, 4), (to_mermaid, 1), (lambda p: to_html(p, "", "x.yaml"), 9)):
        assert len(draw(pic)) < most * names


def test_a_long_line_is_shown_around_the_column_however_far_along_it(write_spec, capsys):
    layers = ", ".join(["{op: relu}"] * 3000 + ["{op: relux}"])
    spec = write_spec(f"nncompile: 1\nname: wide\ninputs: {{x: [4]}}\nlayers: [{layers}]\n")
    assert main(["check", str(spec)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) < 260  # the caret line was as long as the spec's line (36 KB here)
    shown, caret = lines[2], lines[3]
    assert shown[caret.index("^") :].startswith("relux") and caret.count("^") == len("relux")


def test_a_file_named_like_a_workflow_command_does_not_start_a_line(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    name = "::error file=README.md,line=1::forged.yaml"
    Path(name).write_text(TINY.replace("op: linear", "op: linearx"))
    assert main(["check", name]) == 1
    out, err = capsys.readouterr()
    assert _forged(out + err) == [] and out.startswith(f"./{name}:5:")
    assert main(["check", name, "--format", "github"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [line for line in _forged(out) if line.startswith("::error file=%3A%3Aerror file=README.md%2Cline=1%3A%3A")]
    assert len(out.splitlines()) == 1 and _forged(err) == []


def test_training_lines_escape_what_they_print(capsys) -> None:
    """A run's notes carry paths and error text (a file name may hold a newline): one line each, escaped."""
    from nncompile.runtime.progress import Progress

    Progress().line("model.ts not written: runs/a\n::error::forged")
    assert capsys.readouterr().out == "model.ts not written: runs/a\\n::error::forged\n"
