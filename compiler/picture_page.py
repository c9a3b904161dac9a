"""The HTML page around the SVG: one self-contained file (no network), whose script opens at a
readable zoom on the input, keeps an overview of the whole model, pans, zooms, shows a node's spec
line and folds a cluster into one box.

Folding moves nothing sideways: the folded cluster's frame becomes one box on its first row, the rows
it leaves empty close, and each edge that came in or went out now ends on the box (the lanes inside
the cluster are dropped, one lane down its empty frame stands in for them). The script reads the
rows, frames and lanes the SVG carries and places them as compiler/picture_svg.py does.
"""

from __future__ import annotations

READABLE = 0.85
"""The least zoom the page opens at when the model does not fit: 12 px labels at 10 px or more."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>
  body { margin: 0; font-family: Helvetica, Arial, sans-serif; display: flex; height: 100vh; overflow: hidden; }
  #view { flex: 1; min-width: 0; overflow: hidden; cursor: grab; background: #fff; }
  #view svg { width: 100%; height: 100%; display: block; }
  #panel { width: min(320px, 35vw); box-sizing: border-box; border-left: 1px solid #ccc; padding: 12px; overflow: auto;
    font-size: 13px; display: flex; flex-direction: column; gap: 8px; }
  #panel h3 { margin: 0; }
  #panel pre { white-space: pre-wrap; background: #f5f5f5; padding: 6px; }
  #overview { width: 100%; height: 38vh; flex: none; border: 1px solid #ccc; background: #fafafa; cursor: crosshair; }
  #overview .frame { fill: #e3e8f2; }
  #overview .mark { fill: #8a94a6; }
  #overview .viewport { fill: rgba(26, 115, 232, 0.12); stroke: #1a73e8; stroke-width: 2; vector-effect: non-scaling-stroke; }
  .node { cursor: pointer; }
  .node.selected rect { stroke: #1a73e8; stroke-width: 3; }
  .cluster-label { cursor: pointer; text-decoration: underline dotted; }
  .hidden { display: none; }
  .cluster.folded rect { fill: #e9ecf2; stroke: #555; stroke-width: 1.5; cursor: pointer; }
  .cluster.folded .cluster-label { font-weight: bold; fill: #222; }
  .cluster.folded .cluster-summary { display: inline; cursor: pointer; }
</style>
</head>
<body>
<div id="view">{{svg}}</div>
<div id="panel"><h3>{{title}}</h3>
<svg id="overview" role="img" aria-label="overview of the whole model"></svg>
<div><button id="fit">Fit</button> <button id="actual">100%</button>
<button id="fold-all">Fold all</button> <button id="unfold-all">Unfold all</button></div>
<p>Drag to pan, wheel to zoom; click or drag in the overview to move there. Click a node for its spec line;
click a block's name to fold it into one box, and the box to open it.</p>
<div id="details"></div></div>
<script>
"use strict";
const details = {{data}};
const M = {{metrics}};
const NS = "http://www.w3.org/2000/svg";
const svg = document.querySelector("#view svg");
const overview = document.getElementById("overview");
const set = (element, values) => { for (const [key, value] of Object.entries(values)) element.setAttribute(key, value); };
const nodes = new Map();
for (const el of svg.querySelectorAll(".node")) {
  const rect = el.querySelector("rect");
  nodes.set(el.dataset.name, { el, name: el.dataset.name, scope: el.dataset.scope, row: +el.dataset.row,
    x: +rect.getAttribute("x"), y: +rect.getAttribute("y") });
}
const clusters = new Map();
for (const el of svg.querySelectorAll(".cluster")) {
  const rect = el.querySelector("rect");
  const [first, last] = el.dataset.rows.split(" ").map(Number);
  clusters.set(el.dataset.path, { el, rect, path: el.dataset.path, parent: el.dataset.parent, first, last,
    x: +rect.getAttribute("x"), width: +rect.getAttribute("width"), fold: +el.dataset.fold,
    label: el.querySelector(".cluster-label"), summary: el.querySelector(".cluster-summary") });
}
const inner = [...clusters.values()].reverse();  // each cluster before the ones around it
const edges = [...svg.querySelectorAll(".edge")].map((el) => {
  const numbers = (el.dataset.runs || "").split(" ").filter(Boolean).map(Number), runs = [];
  for (let i = 0; i < numbers.length; i += 3) runs.push(numbers.slice(i, i + 3));
  return { el, from: nodes.get(el.dataset.from), to: nodes.get(el.dataset.to), runs };
});
const folded = new Set();

function arrange() {  // which rows stay open and where each lies, as compiler/picture_svg.py's rows()
  for (const c of clusters.values()) {
    const around = clusters.get(c.parent);
    c.shut = around && around.shut ? around.shut : folded.has(c.path) ? c : null;  // the outermost folded cluster at or around it
  }
  const open = new Array(M.rows).fill(false);
  for (const n of nodes.values()) {
    n.shut = n.scope === undefined ? null : clusters.get(n.scope).shut;
    if (!n.shut) open[n.row] = true;
  }
  for (const c of clusters.values()) {
    Object.assign(c, { end: c.shut === c ? c.first : -1, heads: 1, tails: 1 });
    if (c.shut === c) open[c.first] = true;
  }
  for (const n of nodes.values()) if (!n.shut && n.scope !== undefined) { const c = clusters.get(n.scope); c.end = Math.max(c.end, n.row); }
  for (const c of inner) {
    const around = clusters.get(c.parent);
    if (around && !around.shut && (!c.shut || c.shut === c)) around.end = Math.max(around.end, c.end);
  }
  for (const c of inner) {
    const around = clusters.get(c.parent);
    if (c.shut || !around || around.shut) continue;
    if (c.first === around.first) around.heads = Math.max(around.heads, c.heads + 1);
    if (c.end === around.end) around.tails = Math.max(around.tails, c.tails + 1);
  }
  const above = new Array(M.rows).fill(0), below = new Array(M.rows).fill(0);
  for (const c of clusters.values()) {
    if (!c.shut) [above[c.first], below[c.end]] = [Math.max(above[c.first], c.heads), Math.max(below[c.end], c.tails)];
  }
  const top = [], bottom = [];
  let y = M.margin;
  for (let row = 0; row < M.rows; row++) {
    if (!open[row]) { top.push(y - M.rowGap / 2); bottom.push(y - M.rowGap / 2); continue; }
    y += above[row] * M.head;
    top.push(y);
    y += M.boxHeight;
    bottom.push(y);
    y += below[row] * M.tail + M.rowGap;
  }
  const opened = [0];  // opened[r]: how many rows above row r are open
  for (let row = 0; row < M.rows; row++) opened.push(opened[row] + open[row]);
  return { top, bottom, opened, height: y - M.rowGap + M.margin };
}

function route([x, y], runs, end, top, bottom) {  // as compiler/picture_svg.py's route()
  const steps = [`M ${x} ${y}`];
  for (const [x2, y2] of [...runs.flatMap(([lane, first, last]) => [[lane, top[first]], [lane, bottom[last]]]), end]) {
    const middle = Math.floor((y + y2) / 2);
    steps.push(x2 === x ? `V ${y2}` : `C ${x} ${middle} ${x2} ${middle} ${x2} ${y2}`);
    [x, y] = [x2, y2];
  }
  return steps.join(" ");
}

let shape = arrange();

function redraw() {
  shape = arrange();
  for (const n of nodes.values()) {
    n.el.classList.toggle("hidden", n.shut !== null);
    const dy = shape.top[n.row] - n.y;
    if (dy) n.el.setAttribute("transform", `translate(0 ${dy})`); else n.el.removeAttribute("transform");
  }
  for (const c of clusters.values()) {
    const shut = c.shut === c;
    c.el.classList.toggle("hidden", c.shut !== null && !shut);
    c.el.classList.toggle("folded", shut);
    if (c.shut !== null && !shut) continue;
    const x = shut ? c.fold : c.x, y = shut ? shape.top[c.first] : shape.top[c.first] - c.heads * M.head;
    set(c.rect, { x, y, width: shut ? M.boxWidth : c.width, height: shut ? M.boxHeight : shape.bottom[c.end] + c.tails * M.tail - y });
    set(c.label, { x: x + 8, y: y + (shut ? 18 : 15) });
    set(c.summary, { x: x + 8, y: y + 36 });
  }
  const drawn = new Set();
  for (const e of edges) {
    const a = e.from.shut, b = e.to.shut;
    const key = `${a ? "c" + a.path : "n" + e.from.name}\\n${b ? "c" + b.path : "n" + e.to.name}`;
    const hide = (a !== null && a === b) || ((a || b) && drawn.has(key));  // edges into or out of a folded box, drawn once
    drawn.add(key);
    e.el.classList.toggle("hidden", hide);
    if (hide) continue;
    let runs = e.runs;
    if (a) runs = [...(a.last > a.first ? [[a.fold + M.boxWidth / 2, a.first + 1, a.last]] : []), ...runs.filter((run) => run[1] > a.last)];
    if (b) runs = runs.filter((run) => run[2] < b.first);
    const start = a ? [a.fold + M.boxWidth / 2, shape.top[a.first] + M.boxHeight] : [e.from.x + M.boxWidth / 2, shape.bottom[e.from.row]];
    const end = b ? [b.fold + M.boxWidth / 2, shape.top[b.first]] : [e.to.x + M.boxWidth / 2, shape.top[e.to.row]];
    e.el.setAttribute("d", route(start, runs, end, shape.top, shape.bottom));
    const [first, last] = [a ? a.first : e.from.row, b ? b.first : e.to.row];
    const skips = shape.opened[last] - shape.opened[first + 1] > 0;  // an open row between its ends
    e.el.classList.toggle("skip", skips);
    set(e.el, { stroke: skips ? M.skip : M.edge, "stroke-dasharray": skips ? M.dashes : "none" });
  }
  sketch();
}

const colours = { input: "#34a853", output: "#ea4335", parameter: "#f9ab00" };
let viewport = null;
function sketch() {  // the overview: every frame and box shown, and where the window is
  const width = +svg.getAttribute("width");
  overview.setAttribute("viewBox", `0 0 ${width} ${shape.height}`);
  const marks = [];
  const mark = (kind, x, y, w, h, fill) => {
    const r = document.createElementNS(NS, "rect");
    set(r, { class: kind, x, y, width: w, height: h });
    if (fill) r.style.fill = fill;
    marks.push(r);
  };
  for (const c of clusters.values()) if (!c.shut) mark("frame", c.x, c.rect.getAttribute("y"), c.width, c.rect.getAttribute("height"));
  for (const n of nodes.values()) if (!n.shut) mark("mark", n.x, shape.top[n.row], M.boxWidth, M.boxHeight, colours[details[n.name].op]);
  for (const c of clusters.values()) if (c.shut === c) mark("mark folded", c.fold, shape.top[c.first], M.boxWidth, M.boxHeight, "#5f6b80");
  viewport = document.createElementNS(NS, "rect");
  viewport.setAttribute("class", "viewport");
  overview.replaceChildren(...marks, viewport);
  frame();
}

let view = { x: 0, y: 0, w: 1, h: 1 };
function frame() { set(viewport, { x: view.x, y: view.y, width: view.w, height: view.h }); }
function apply() { svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`); frame(); }
function look(scale, cx, cy) {
  const r = svg.getBoundingClientRect(), w = r.width / scale, h = r.height / scale;
  view = { x: cx - w / 2, y: cy - h / 2, w, h };
  apply();
}
const scale = () => svg.getBoundingClientRect().width / view.w;
function fit() {
  const r = svg.getBoundingClientRect(), width = +svg.getAttribute("width");
  look(Math.min(r.width / width, r.height / shape.height), width / 2, shape.height / 2);
}
function opening() {  // the whole model if its labels can be read so, else its top at full size, on the input
  const r = svg.getBoundingClientRect(), width = +svg.getAttribute("width");
  const whole = Math.min(r.width / width, r.height / shape.height);
  if (whole >= M.readable) return look(Math.min(whole, 1.25), width / 2, shape.height / 2);
  const zoom = Math.max(M.readable, Math.min(1, r.width / width));
  const input = [...nodes.values()].find((n) => details[n.name].op === "input") || nodes.values().next().value;
  const cx = width * zoom <= r.width ? width / 2 : input.x + M.boxWidth / 2;
  look(zoom, cx, input.y - M.margin + r.height / zoom / 2);
}

svg.addEventListener("wheel", (event) => {
  event.preventDefault();
  const factor = event.deltaY > 0 ? 1.15 : 1 / 1.15;
  const rect = svg.getBoundingClientRect();
  const px = view.x + (event.clientX - rect.left) / rect.width * view.w;
  const py = view.y + (event.clientY - rect.top) / rect.height * view.h;
  view = { x: px - (px - view.x) * factor, y: py - (py - view.y) * factor, w: view.w * factor, h: view.h * factor };
  apply();
}, { passive: false });
let drag = null, moved = false, steering = false;
svg.addEventListener("mousedown", (event) => { drag = { x: event.clientX, y: event.clientY, view: { ...view } }; moved = false; });
function steer(event) {
  const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(overview.getScreenCTM().inverse());
  view.x = p.x - view.w / 2;
  view.y = p.y - view.h / 2;
  apply();
}
overview.addEventListener("mousedown", (event) => { steering = true; steer(event); event.preventDefault(); });
window.addEventListener("mouseup", () => { drag = null; steering = false; });
window.addEventListener("mousemove", (event) => {
  if (steering) return steer(event);
  if (!drag) return;
  const rect = svg.getBoundingClientRect();
  moved = moved || Math.abs(event.clientX - drag.x) + Math.abs(event.clientY - drag.y) > 3;
  view.x = drag.view.x - (event.clientX - drag.x) / rect.width * view.w;
  view.y = drag.view.y - (event.clientY - drag.y) / rect.height * view.h;
  apply();
});
window.addEventListener("resize", () => look(scale(), view.x + view.w / 2, view.y + view.h / 2));
function show(name) {
  const d = details[name];
  document.querySelectorAll(".node.selected").forEach((n) => n.classList.remove("selected"));
  nodes.get(name).el.classList.add("selected");
  const panel = document.getElementById("details");
  panel.replaceChildren();
  const add = (tag, text) => { const e = document.createElement(tag); e.textContent = text; panel.appendChild(e); };
  add("h4", name);
  add("div", `op: ${d.op}`);
  add("div", `output: ${d.shape}`);
  add("div", `parameters: ${d.params.toLocaleString()}`);
  if (d.where) { add("div", d.where); add("pre", d.text); }
}
for (const n of nodes.values()) n.el.addEventListener("click", () => { if (!moved) show(n.name); });
function toggle(c) {
  if (moved) return;
  if (folded.has(c.path)) folded.delete(c.path); else folded.add(c.path);
  redraw();
}
for (const c of clusters.values()) {
  c.label.addEventListener("click", () => toggle(c));
  for (const part of [c.rect, c.summary]) part.addEventListener("click", () => { if (c.shut === c) toggle(c); });
}
document.getElementById("fit").addEventListener("click", fit);
document.getElementById("actual").addEventListener("click", () => look(1, view.x + view.w / 2, view.y + view.h / 2));
document.getElementById("fold-all").addEventListener("click", () => { clusters.forEach((c) => folded.add(c.path)); redraw(); });
document.getElementById("unfold-all").addEventListener("click", () => { folded.clear(); redraw(); });
sketch();
opening();
document.body.dataset.nodes = String(nodes.size);
document.body.dataset.ready = "yes";
</script>
</body>
</html>
"""
