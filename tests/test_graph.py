"""`nncompile graph`: SVG, HTML, DOT and Mermaid pictures hold every node, the blocks as clusters and the
shortcut edges; the HTML page loads in a real headless browser without a console message."""

from __future__ import annotations

import html
import itertools
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from nncompile.compiler import analyze
from nncompile.compiler.picture import picture, to_dot, to_mermaid, to_svg

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
    """The page's DOM after its scripts ran in a 1280x800 window, and the console messages it logged."""
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,800",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        page.as_uri(),
    ]
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


# -- geometry of the SVG: every edge from its source's bottom to its target's top, through no other box --

SPECS = [*sorted((ROOT / "specs").glob("*.yaml")), *sorted((ROOT / "specs" / "zoo").glob("*.yaml"))]
PLUGIN_SPEC = ROOT / "tests" / "specs" / "normalized_mlp.yaml"
NUMBER = r"-?\d+(?:\.\d+)?"


def _rect(element: ElementTree.Element) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of an SVG rect."""
    x, y, w, h = (float(element.get(key)) for key in ("x", "y", "width", "height"))
    return x, y, x + w, y + h


def _points(d: str) -> list[tuple[float, float]]:
    """Points along an SVG path of M, L, H, V and C commands (absolute), every cubic sampled 40 times."""
    points: list[tuple[float, float]] = []
    for command, numbers in re.findall(rf"([MLHVC])((?:\s*{NUMBER})*)", d):
        values = [float(n) for n in re.findall(NUMBER, numbers)]
        x, y = points[-1] if points else (0.0, 0.0)
        if command in "ML":
            points.append((values[0], values[1]))
        elif command == "H":
            points.append((values[0], y))
        elif command == "V":
            points.append((x, values[0]))
        else:
            (ax, ay), (bx, by), (cx, cy) = zip(values[0::2], values[1::2])
            for step in range(1, 41):
                t = step / 40
                u = 1 - t
                points.append(
                    (
                        u**3 * x + 3 * u * u * t * ax + 3 * u * t * t * bx + t**3 * cx,
                        u**3 * y + 3 * u * u * t * ay + 3 * u * t * t * by + t**3 * cy,
                    )
                )
    return points


def _segments_sampled(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points with each straight piece between them filled in every 2 units."""
    sampled = points[:1]
    for (x1, y1), (x2, y2) in itertools.pairwise(points):
        steps = max(1, int(max(abs(x2 - x1), abs(y2 - y1)) / 2))
        sampled += [(x1 + (x2 - x1) * i / steps, y1 + (y2 - y1) * i / steps) for i in range(1, steps + 1)]
    return sampled


def _inside(point: tuple[float, float], rect: tuple[float, float, float, float], inset: float = 1.5) -> bool:
    x, y = point
    left, top, right, bottom = rect
    return left + inset < x < right - inset and top + inset < y < bottom - inset


@pytest.mark.parametrize("spec", [*SPECS, PLUGIN_SPEC], ids=lambda path: path.stem)
def test_every_edge_runs_from_its_source_to_its_target_and_through_no_other_box(spec: Path):
    plugins = ("normlinear",) if spec == PLUGIN_SPEC else ()
    root = ElementTree.fromstring(to_svg(picture(analyze(spec, plugins=plugins).graph)))
    boxes = {g.get("data-name"): _rect(g.find(f"{SVG}rect")) for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    crossings, detached = [], []
    for path in root.iter(f"{SVG}path"):
        if not (path.get("class") or "").startswith("edge"):
            continue
        source, target = boxes[path.get("data-from")], boxes[path.get("data-to")]
        points = _points(path.get("d"))
        (x1, y1), (x2, y2) = points[0], points[-1]
        if not (source[0] < x1 < source[2] and y1 == source[3] and target[0] < x2 < target[2] and y2 == target[1]):
            detached.append((path.get("data-from"), path.get("data-to")))
        for point in _segments_sampled(points):
            crossings += [(path.get("data-from"), path.get("data-to"), name) for name, box in boxes.items() if _inside(point, box)]
    assert detached == [], "edges that do not run from their source's bottom to their target's top"
    assert sorted(set(crossings)) == [], "edges drawn through a box they do not connect"
    for (name, a), (other, b) in itertools.combinations(boxes.items(), 2):
        assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), f"{name} overlaps {other}"


def test_a_blocks_frame_holds_its_own_boxes_and_no_other(tmp_path: Path):
    """Each block owns a rectangle no other box enters, the ground on which it folds into a small box."""
    for spec in (RESNET18, ROOT / "specs" / "zoo" / "googlenet.yaml", ROOT / "specs" / "zoo" / "unet.yaml"):
        pic = picture(analyze(spec).graph)
        root = ElementTree.fromstring(to_svg(pic))
        frames = {g.get("data-path"): _rect(g.find(f"{SVG}rect")) for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"}
        boxes = {g.get("data-name"): _rect(g.find(f"{SVG}rect")) for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
        for path, (left, top, right, bottom) in frames.items():
            for name, (x1, y1, x2, y2) in boxes.items():
                member = path in pic.boxes[name].scopes
                overlaps = x1 < right and left < x2 and y1 < bottom and top < y2
                inside = left < x1 and x2 < right and top < y1 and y2 < bottom
                assert inside if member else not overlaps, (spec.stem, path, name)


# -- the page in headless Chromium: how it opens, what folding does --------------------------------

PROBE = """
<script>
(() => {
  const view = document.querySelector("#view");
  const svg = view.querySelector("svg");
  const scale = () => svg.getScreenCTM().a;
  const rect = (element) => { const r = element.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const clusters = new Map([...svg.querySelectorAll(".cluster")].map((c) => [c.dataset.path, c]));
  const shown = (element) => !element.classList.contains("hidden");
  function owner(name) {  // the visible thing that stands for a node: itself, or the folded block around it
    const node = svg.querySelector(`.node[data-name="${CSS.escape(name)}"]`);
    let shut = null;
    for (let c = clusters.get(node.dataset.scope); c; c = clusters.get(c.dataset.parent)) if (c.classList.contains("folded")) shut = c;
    return shut ? shut.querySelector("rect") : node.querySelector("rect");
  }
  function state() {
    const boxes = [
      ...[...svg.querySelectorAll(".node")].filter(shown).map((n) => [n.dataset.name, n.querySelector("rect")]),
      ...[...svg.querySelectorAll(".cluster.folded")].filter(shown).map((c) => [c.dataset.path, c.querySelector("rect")]),
    ].map(([name, r]) => [name, rect(r)]);
    const detached = [], crossings = [], near = (a, b) => Math.abs(a - b) <= 1.5;
    const edges = [...svg.querySelectorAll(".edge")].filter(shown);
    for (const edge of edges) {
      const ctm = edge.getScreenCTM(), length = edge.getTotalLength();
      const at = (l) => { const p = edge.getPointAtLength(l); return [ctm.a * p.x + ctm.e, ctm.d * p.y + ctm.f]; };
      const [x1, y1] = at(0), [x2, y2] = at(length);
      const a = rect(owner(edge.dataset.from)), b = rect(owner(edge.dataset.to));
      if (!(a[0] < x1 && x1 < a[2] && near(y1, a[3]) && b[0] < x2 && x2 < b[2] && near(y2, b[1])))
        detached.push([edge.dataset.from, edge.dataset.to]);
      for (let l = 0; l <= length; l += 2) {
        const [x, y] = at(l);
        for (const [name, r] of boxes) {
          if (r[0] + 2 < x && x < r[2] - 2 && r[1] + 2 < y && y < r[3] - 2) crossings.push([edge.dataset.from, edge.dataset.to, name]);
        }
      }
    }
    const output = [...svg.querySelectorAll(".node")].find((n) => details[n.dataset.name].op === "output").querySelector("rect");
    return { detached, crossings, edges: edges.length, bottom: rect(output)[3] / scale(), d: edges.map((e) => e.getAttribute("d")) };
  }
  function fold(path) { clusters.get(path).querySelector(".cluster-label").dispatchEvent(new MouseEvent("click", { bubbles: true })); }
  const label = svg.querySelector(".node text");
  const input = [...svg.querySelectorAll(".node")].find((n) => details[n.dataset.name].op === "input");
  const overview = document.querySelector("#overview");
  const result = {
    font: parseFloat(getComputedStyle(label).fontSize) * label.getScreenCTM().a,
    view: rect(view), input: rect(input.querySelector("rect")),
    overview: overview && { box: rect(overview), marks: overview.querySelectorAll(".mark").length,
                            viewport: overview.querySelectorAll(".viewport").length },
    nodes: svg.querySelectorAll(".node").length,
    open: state(), folds: [],
  };
  for (const paths of FOLDS) {
    const before = paths.map((p) => clusters.get(p).querySelector("rect").getBBox().height);
    paths.forEach(fold);
    const after = paths.map((p) => clusters.get(p).querySelector("rect").getBBox().height);
    result.folds.push({ paths, before, after, state: state() });
    [...paths].reverse().forEach(fold);
  }
  result.reopened = state();
  document.body.dataset.probe = JSON.stringify(result);
})();
</script>
</body>"""


def _probe(tmp_path: Path, spec: Path, folds: list[list[str]]) -> dict[str, Any]:
    """The page drawn for `spec` opened in Chromium at 1280x800: where things are as it opens, and
    after folding each list of blocks in turn (then unfolding them)."""
    page = _draw(tmp_path, ".html", spec)
    page.write_text(page.read_text().replace("</body>", PROBE.replace("FOLDS", json.dumps(folds))))
    dom, console = _open(page)
    assert console == []
    return json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom).group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt install chromium)")
@pytest.mark.parametrize(
    "spec", [RESNET18, ROOT / "specs" / "zoo" / "googlenet.yaml", ROOT / "specs" / "mnist_mlp.yaml"], ids=lambda p: p.stem
)
def test_the_page_opens_readable_on_the_input_with_an_overview(tmp_path: Path, spec: Path):
    probe = _probe(tmp_path, spec, [])
    assert probe["font"] >= 10  # a node's label, in CSS pixels (fitting resnet18's 6,000 px made it 1.6)
    (left, top, right, bottom), (x1, y1, x2, y2) = probe["view"], probe["input"]
    assert left <= x1 and x2 <= right and top <= y1 and y2 <= bottom  # the input box, whole, in the window
    overview = probe["overview"]
    assert overview is not None and overview["viewport"] == 1 and overview["marks"] == probe["nodes"]
    assert overview["box"][2] - overview["box"][0] > 50 and overview["box"][3] - overview["box"][1] > 50
    assert probe["open"]["detached"] == [] and probe["open"]["crossings"] == []


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt install chromium)")
def test_a_folded_block_is_a_small_box_with_its_edges_rerouted_to_it(tmp_path: Path):
    folds = {("layer2.0",): True, ("layer1.0",): True, ("layer2.0.downsample",): False, ("layer1.0", "layer1.1", "layer4.1"): True}
    probe = _probe(tmp_path, RESNET18, [list(paths) for paths in folds])
    opened = probe["open"]
    for fold, rows_close in zip(probe["folds"], folds.values()):
        for before, after in zip(fold["before"], fold["after"]):
            assert after <= 60 and after < before / 3, fold["paths"]  # one box's height, not the block's
        state = fold["state"]
        assert state["detached"] == [], fold["paths"]  # no arrowhead in mid-air: each edge ends on what is shown
        assert state["crossings"] == [], fold["paths"]
        # what lay below moved up: by most of the block's height where it had its rows to itself
        assert state["bottom"] < opened["bottom"] - (sum(fold["before"]) / 2 if rows_close else 0), fold["paths"]
        assert state["edges"] < opened["edges"]  # the edges inside are gone, the ones around drawn once
    assert probe["reopened"]["d"] == opened["d"]  # unfolding draws every edge as before


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt install chromium)")
@pytest.mark.parametrize(
    ("spec", "folds"),
    [
        ("zoo/googlenet.yaml", [["inception3a"], ["inception4a.branch2"]]),
        ("zoo/unet.yaml", [["down1"], ["up4"]]),
        ("zoo/yolov8n.yaml", [["model.2"], ["model.9"]]),
    ],
    ids=["googlenet", "unet", "yolov8n"],
)
def test_folding_blocks_of_other_shapes_keeps_every_edge_on_a_box(tmp_path: Path, spec: str, folds: list[list[str]]):
    probe = _probe(tmp_path, ROOT / "specs" / spec, folds)
    for fold in probe["folds"]:
        assert fold["after"][0] <= 60, fold["paths"]
        assert fold["state"]["detached"] == [] and fold["state"]["crossings"] == [], fold["paths"]
    assert probe["reopened"]["d"] == probe["open"]["d"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt install chromium)")
def test_a_screenshot_as_it_opens_shows_the_input_box_at_full_size(tmp_path: Path):
    """From the pixels: the input's green box is drawn about 190 px wide (it was 25 px), its label
    dark on it, and the overview beside the graph."""
    image = pytest.importorskip("PIL.Image")
    page, shot = _draw(tmp_path, ".html"), tmp_path / "shot.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,800",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=True)
    pixels = image.open(shot).convert("RGB")
    view = pixels.width - 320  # the graph, left of the panel (which holds the overview)
    green = [(x, y) for y in range(pixels.height) for x in range(view) if pixels.getpixel((x, y)) == (0xE6, 0xF4, 0xEA)]
    xs, ys = [x for x, _ in green], [y for _, y in green]
    assert 170 <= max(xs) - min(xs) <= 200 and 35 <= max(ys) - min(ys) <= 55
    dark = sum(sum(pixels.getpixel((x, y))) < 200 for x in range(min(xs), max(xs)) for y in range(min(ys), max(ys)))
    assert dark > 100  # the label's text is drawn large enough to cover pixels
