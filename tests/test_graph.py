"""`nncompile graph`: SVG, HTML, DOT and Mermaid pictures hold every node, the blocks as clusters and the
shortcut edges; the HTML page loads in a real headless browser without a console message."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from conftest import ROOT
from nncompile.compiler import analyze
from nncompile.compiler.picture import picture, to_dot, to_mermaid

from nncompile.cli import main

RESNET18 = ROOT / "specs" / "resnet18.yaml"
SVG = "{http://www.w3.org/2000/svg}"


def _draw(tmp_path: Path, suffix: str, spec: Path = RESNET18) -> Path:
    output = tmp_path / f"model{suffix}"
    assert main(["graph", str(spec), "-o", str(output)]) == 0
    return output


def test_svg_has_every_node_the_blocks_and_the_shortcuts(tmp_path: Path):
    root = ElementTree.parse(_draw(tmp_path, ".svg")).getroot()
    graph = analyze(RESNET18).graph
    nodes = {g.get("data-name") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert nodes == set(graph.nodes)
    clusters = {g.get("data-path") for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"}
    assert {"layer1.0", "layer4.1", "layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample"} <= clusters
    assert "layer1.0.downsample" not in clusters  # the block needs no projection there
    skips = {(p.get("data-from"), p.get("data-to")) for p in root.iter(f"{SVG}path") if p.get("class") == "edge skip"}
    assert ("maxpool", "layer1.0.5") in skips  # the identity shortcut around layer1.0
    assert ("layer1.1.5_relu", "layer2.0.downsample.0") not in skips  # the projection runs beside the block, not around it
    adds = [name for name, node in graph.nodes.items() if node.node.op == "add"]
    assert len(adds) == 8
    identity = [add for add in adds if not any(ref.node.endswith("downsample.1") for ref in graph.nodes[add].inputs)]
    assert {add for _, add in skips} >= set(identity)
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "[B, 64, 56, 56]" in texts and "9,408 params" in texts


def test_dot_and_mermaid_nest_clusters_and_mark_shortcuts():
    pic = picture(analyze(RESNET18).graph)
    dot = to_dot(pic)
    assert dot.count("subgraph") == len(pic.clusters) == 11
    assert dot.count("->") == len(pic.edges)
    assert dot.count("style=dashed") == sum(skips for _, _, skips in pic.edges)
    nested = dot[dot.index('subgraph "cluster_layer2.0"') :]
    assert nested.index('subgraph "cluster_layer2.0.downsample"') < nested.index("}")
    mermaid = to_mermaid(pic)
    assert mermaid.startswith("flowchart TD")
    assert mermaid.count("-.->") == sum(skips for _, _, skips in pic.edges)
    assert len(re.findall(r'^\s+n\d+\["', mermaid, re.MULTILINE)) == len(pic.boxes)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_reads_the_dot_file(tmp_path: Path):
    result = subprocess.run(["dot", "-Tsvg", str(_draw(tmp_path, ".dot"))], capture_output=True, text=True)
    assert result.returncode == 0 and "<svg" in result.stdout, result.stderr


def test_symbolic_sizes_show_as_formulas(tmp_path: Path):
    pic = picture(analyze(ROOT / "specs" / "zoo" / "gpt.yaml").graph)
    assert any("T" in box.shape for box in pic.boxes.values())


def test_graph_needs_no_torch(tmp_path: Path):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from nncompile.cli import main\n"
        f"sys.exit(main(['graph', {str(RESNET18)!r}, '-o', {str(tmp_path / 'r.html')!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.html").stat().st_size > 0


def test_unknown_picture_format_is_a_usage_error(tmp_path: Path, capsys):
    assert main(["graph", str(RESNET18), "-o", str(tmp_path / "r.png")]) == 2
    assert "unknown picture format '.png'" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _open(page: Path) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and the console messages it logged."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result.stdout, console


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt install chromium)")
def test_html_opens_in_headless_chromium_without_console_messages(tmp_path: Path):
    page = _draw(tmp_path, ".html")
    dom, console = _open(page)
    assert console == []
    assert 'data-ready="yes"' in dom
    nodes = len(analyze(RESNET18).graph.nodes)
    assert f'data-nodes="{nodes}"' in dom
    details = json.loads(re.search(r"const details = (\{.*?\});\n", page.read_text()).group(1))
    assert details["layer1.0.conv1"]["text"].startswith("- {id: conv1, op: conv2d")
    assert details["layer1.0.conv1"]["where"].endswith("resnet18.yaml:12")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt install chromium)")
def test_the_browser_check_sees_a_broken_page(tmp_path: Path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notDefined();</script></body></html>")
    _, console = _open(page)
    assert any("notDefined" in line for line in console)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt install chromium)")
def test_folding_a_block_hides_every_node_inside_it_at_any_depth(tmp_path: Path):
    page = _draw(tmp_path, ".html")
    fold = (
        "<script>document.querySelector('.cluster[data-path=\"layer2.0\"] .cluster-label').dispatchEvent(new MouseEvent('click'));"
        "document.body.dataset.hidden = document.querySelectorAll('.node.hidden').length;</script></body>"
    )
    page.write_text(page.read_text().replace("</body>", fold))
    dom, console = _open(page)
    assert console == []
    inside = [name for name, box in picture(analyze(RESNET18).graph).boxes.items() if "layer2.0" in box.scopes]
    assert any("layer2.0.downsample" in name for name in inside)  # a cluster nested inside the folded one
    assert f'data-hidden="{len(inside)}"' in dom
