"""Where each box of a picture goes: a layered layout in which every block owns a rectangle.

Each cluster (a block call or a group) is laid out on its own, innermost first, as rows of its own
boxes and of its clusters, each of those a rectangle as many rows tall as it holds; its parent then
places it like one tall box. Values come into a cluster at its top and leave at its bottom, and an
edge that skips rows runs down a lane of its own beside the boxes. So no edge crosses a box, no box
enters a cluster it is not in, and the page can fold a cluster into one box and close the rows it
leaves empty without moving anything sideways. No torch.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

BOX_WIDTH, PAD, MARGIN = 190, 10, 40
BOX_MARGIN, LANE_MARGIN = 12, 7
"""Clearance on each side: two boxes stand 24 apart, a lane 19 from a box and 14 from a lane."""

Item = tuple[bool, str]
"""A cluster's direct content: (True, cluster path) or (False, box name)."""


class _Box(Protocol):
    op: str
    scopes: tuple[str, ...]


@dataclass
class Frame:
    """A cluster's rectangle: its first row, how many rows it spans, its left edge and its width; and
    the left edge of the box it folds into, under where its first input comes in."""

    row: int
    rows: int
    x: int
    width: int
    fold: int


@dataclass
class Layout:
    rows: int
    width: int
    places: dict[str, tuple[int, int]]
    """Box → (row, left edge)."""
    frames: dict[str, Frame]
    runs: list[list[tuple[int, int, int]]]
    """Per edge, in the picture's order: the lanes it runs down, as (x, first row, last row)."""


@dataclass
class _Content:
    """What one cluster (None: the whole picture) holds, gathered in one pass over boxes and edges."""

    items: dict[Item, None] = field(default_factory=dict)
    """Its boxes and clusters, in order of their first box."""
    edges: list[tuple[Item, Item, str]] = field(default_factory=list)
    """(from, to, source box) for edges between two of its items."""
    entries: list[tuple[str, Item]] = field(default_factory=list)
    """(source box outside, item reading it)."""
    exits: list[tuple[str, Item]] = field(default_factory=list)
    """(source box inside, item holding it) for values read outside."""
    reads: dict[Item, list[tuple[str, Item | None]]] = field(default_factory=dict)
    """Item → (source box, the item holding it here, None if outside) for each value it reads, in order."""


@dataclass
class _Placed:
    """One cluster's layout in its own coordinates: rows from 0, x from its left edge."""

    rows: int
    width: int
    rank: dict[Item, int]
    left: dict[Item, int]
    lanes: dict[str, tuple[int, int, int]]
    """Source box → its lane (x, first row, last row)."""
    entries: dict[str, int]
    """Source box outside → the x at which it comes in at the top."""
    exits: dict[str, int]
    """Source box inside → the x at which it leaves at the bottom."""
    forward: set[tuple[Item, Item]]
    """Edges between items that run downwards (all but those closing a cycle between clusters)."""


def _item(scopes: tuple[str, ...], name: str, level: int) -> Item:
    """What stands for a box in the cluster `level` deep on its scope path: the next cluster or itself."""
    return (True, scopes[level]) if level < len(scopes) else (False, name)


def _common(sa: tuple[str, ...], sb: tuple[str, ...]) -> int:
    """How many clusters two boxes are both in: the depth of the cluster that holds an edge between them."""
    common = 0
    while common < min(len(sa), len(sb)) and sa[common] == sb[common]:
        common += 1
    return common


def _gather(boxes: Mapping[str, _Box], edges: Sequence[tuple[str, str, bool]], clusters: Iterable[str]) -> dict[str | None, _Content]:
    contents: dict[str | None, _Content] = {None: _Content(), **{path: _Content() for path in clusters}}
    for name, box in boxes.items():
        for level in range(len(box.scopes) + 1):
            contents[box.scopes[level - 1] if level else None].items[_item(box.scopes, name, level)] = None
    for a, b, _ in edges:
        sa, sb = boxes[a].scopes, boxes[b].scopes
        common = _common(sa, sb)
        owner = contents[sa[common - 1] if common else None]
        source, target = _item(sa, a, common), _item(sb, b, common)
        owner.edges.append((source, target, a))
        owner.reads.setdefault(target, []).append((a, source))
        for level in range(common, len(sb)):
            inner, target = contents[sb[level]], _item(sb, b, level + 1)
            inner.entries.append((a, target))
            inner.reads.setdefault(target, []).append((a, None))
        for level in range(common, len(sa)):
            contents[sa[level]].exits.append((a, _item(sa, a, level + 1)))
    return contents


def _order(items: Iterable[Item], edges: Iterable[tuple[Item, Item, str]]) -> list[Item]:
    """A topological order of the items, earliest first where free; a cycle between clusters (values
    that leave a group and come back into it) is broken at its earliest item."""
    index = {item: i for i, item in enumerate(items)}
    waiting = dict.fromkeys(index, 0)
    after: dict[Item, list[Item]] = {}
    for a, b, _ in edges:
        waiting[b] += 1
        after.setdefault(a, []).append(b)
    ready = [i for item, i in index.items() if not waiting[item]]
    heapq.heapify(ready)
    order: list[Item] = []
    done: set[Item] = set()
    items_by_index = list(index)
    while len(order) < len(index):
        if not ready:  # a cycle: take the earliest item left
            heapq.heappush(ready, next(i for i, item in enumerate(items_by_index) if item not in done))
        item = items_by_index[heapq.heappop(ready)]
        if item in done:
            continue
        done.add(item)
        order.append(item)
        for b in after.get(item, []):
            waiting[b] -= 1
            if not waiting[b] and b not in done:
                heapq.heappush(ready, index[b])
    return order


def _place(
    content: _Content, placed: Mapping[str | None, _Placed], boxes: Mapping[str, _Box], order_of: Mapping[str, int], pad: int, least: int
) -> _Placed:
    """Lay out one cluster's items (its clusters already laid out in `placed`), `pad` inside its edges
    and at least `least` wide."""
    order = _order(content.items, content.edges)
    position = {item: i for i, item in enumerate(order)}
    forward = {(a, b) for a, b, _ in content.edges if position[a] < position[b]}
    span = {item: placed[item[1]].rows if item[0] else 1 for item in order}
    rank = _ranks(order, content, forward, span, boxes)
    rows = max(rank[item] + span[item] for item in order)
    lanes = _lane_rows(content, forward, rank, span, rows)
    columns = _Columns(content, forward, placed, boxes)
    columns.place(order, rank, span)
    lane_x = columns.place_lanes(lanes, order_of)
    exits = {s: lane_x[s] if s in lanes and lanes[s][1] == rows - 1 else columns.leaves(item, s) for s, item in content.exits}
    left = columns.left
    right = max([*(left[item] + columns.width(item) for item in order), *lane_x.values()])
    shift = pad - min([*left.values(), *lane_x.values()])
    return _Placed(
        rows,
        max(right + shift + pad, least),
        rank,
        {item: x + shift for item, x in left.items()},
        {s: (lane_x[s] + shift, first, last) for s, (first, last) in lanes.items()},
        {s: x + shift for s, x in columns.ports.items()},
        {s: x + shift for s, x in exits.items()},
        forward,
    )


def _ranks(
    order: list[Item], content: _Content, forward: set[tuple[Item, Item]], span: dict[Item, int], boxes: Mapping[str, _Box]
) -> dict[Item, int]:
    """Each item's row: the longest path to it (a value from outside arrives at row 0, a cluster
    ends as many rows on as it spans); a learnable tensor sits just above its first reader (an
    unread one beside the item before it), everything moved down a row if that is above row 0."""
    preds: dict[Item, list[Item]] = {}
    readers: dict[Item, list[Item]] = {}
    for a, b, _ in content.edges:
        if (a, b) in forward:
            preds.setdefault(b, []).append(a)
        readers.setdefault(a, []).append(b)
    rank: dict[Item, int] = {}
    for item in order:
        rank[item] = max((rank[a] + span[a] for a in preds.get(item, ())), default=0)
    previous = 0
    for item in order:
        if _is_parameter(item, boxes):
            rank[item] = min(rank[b] for b in readers[item]) - 1 if item in readers else previous
        previous = rank[item]
    low = min(rank.values())
    return {item: r - low for item, r in rank.items()}


def _is_parameter(item: Item, boxes: Mapping[str, _Box]) -> bool:
    return not item[0] and boxes[item[1]].op == "parameter"


def _lane_rows(
    content: _Content, forward: set[tuple[Item, Item]], rank: dict[Item, int], span: dict[Item, int], rows: int
) -> dict[str, tuple[int, int]]:
    """Source box → the rows its lane runs down: past the rows between it and its last reader here,
    from the top to the reader of a value from outside, to the bottom for a value read outside."""
    lanes: dict[str, tuple[int, int]] = {}

    def need(source: str, first: int, last: int) -> None:
        if first <= last:
            old = lanes.get(source, (first, last))
            lanes[source] = (min(old[0], first), max(old[1], last))

    for a, b, source in content.edges:
        if (a, b) in forward:
            need(source, rank[a] + span[a], rank[b] - 1)
    for source, b in content.entries:
        need(source, 0, rank[b] - 1)
    for source, a in content.exits:
        need(source, rank[a] + span[a], rows - 1)
    return lanes


class _Columns:
    """The x-intervals taken in each row of one cluster; each item, then each lane, goes where it is
    free, nearest to where its inputs would have it (to the right on a tie)."""

    def __init__(
        self, content: _Content, forward: set[tuple[Item, Item]], placed: Mapping[str | None, _Placed], boxes: Mapping[str, _Box]
    ) -> None:
        self.taken: dict[int, list[tuple[int, int]]] = {}
        self.placed, self.boxes = placed, boxes
        self.left: dict[Item, int] = {}
        self.ports: dict[str, int] = {}
        """Source box outside → where its first reader takes it in at the top."""
        self.forward = forward
        self.reads = content.reads
        self.readers: dict[str, Item] = {}
        self.holder: dict[str, Item] = {}
        for a, b, source in content.edges:
            self.holder[source] = a
            self.readers.setdefault(source, b)
        for source, a in content.exits:
            self.holder[source] = a

    def width(self, item: Item) -> int:
        return self.placed[item[1]].width if item[0] else BOX_WIDTH

    def enters(self, item: Item, source: str) -> int:
        return self.placed[item[1]].entries[source] if item[0] else BOX_WIDTH // 2

    def leaves(self, item: Item, source: str) -> int:
        return self.left[item] + (self.placed[item[1]].exits[source] if item[0] else BOX_WIDTH // 2)

    def place(self, order: list[Item], rank: dict[Item, int], span: dict[Item, int]) -> None:
        """Items row by row (learnable tensors last, above their readers), each where its first input
        would put it: a residual block's sum stays under its main path, a concat under its first branch;
        items of a row whose first input is the same value stand left to right in the spec's order."""
        position = {item: i for i, item in enumerate(order)}
        beside: dict[tuple[int, int], int] = {}
        """(row, x of a value) → the right edge of the last item of that row placed under it."""
        for item in sorted(order, key=lambda i: (_is_parameter(i, self.boxes), rank[i], position[i])):
            wants = [
                (self.leaves(a, s) if a is not None else self.ports[s], self.enters(item, s))
                for s, a in self.reads.get(item, ())
                if ((a, item) in self.forward and a in self.left) or (a is None and s in self.ports)
            ]
            reader = self.readers.get(item[1]) if _is_parameter(item, self.boxes) else None
            if reader is not None:
                wants = [(self.left[reader] + self.enters(reader, item[1]), BOX_WIDTH // 2)]
            anchor, inlet = wants[0] if wants else (0, self.width(item) // 2)
            wanted = max(anchor - inlet, beside.get((rank[item], anchor), -(10**9)) + 2 * BOX_MARGIN)
            self.left[item] = self.put(rank[item], rank[item] + span[item] - 1, self.width(item), BOX_MARGIN, wanted)
            beside[rank[item], anchor] = self.left[item] + self.width(item)
            for s, a in self.reads.get(item, ()):
                if a is None:
                    self.ports.setdefault(s, self.left[item] + self.enters(item, s))

    def place_lanes(self, lanes: dict[str, tuple[int, int]], order_of: Mapping[str, int]) -> dict[str, int]:
        """Each lane below its source (or where the value comes in), shortest first, so that longer
        lanes run outside shorter ones and do not cross them."""
        xs: dict[str, int] = {}
        for source, (first, last) in sorted(lanes.items(), key=lambda lane: (lane[1][1] - lane[1][0], lane[1][0], order_of[lane[0]])):
            wanted = self.leaves(self.holder[source], source) if source in self.holder else self.ports[source]
            xs[source] = self.put(first, last, 0, LANE_MARGIN, wanted)
        return xs

    def put(self, first: int, last: int, width: int, margin: int, wanted: int) -> int:
        """The free left edge nearest `wanted` for a rectangle over rows first..last; taken from then on."""
        merged: list[list[int]] = []
        for lo, hi in sorted(interval for row in range(first, last + 1) for interval in self.taken.get(row, ())):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        bounds = [-(10**9), *(v for interval in merged for v in interval), 10**9]
        best = None
        for free_lo, free_hi in zip(bounds[0::2], bounds[1::2]):
            lo, hi = free_lo + margin, free_hi - margin - width
            if lo <= hi:
                left = min(max(wanted, lo), hi)
                if best is None or abs(left - wanted) <= abs(best - wanted):
                    best = left
        assert best is not None  # the last gap is unbounded
        for row in range(first, last + 1):
            self.taken.setdefault(row, []).append((best - margin, best + width + margin))
        return best


def lay_out(boxes: Mapping[str, _Box], edges: Sequence[tuple[str, str, bool]], clusters: Mapping[str, str]) -> Layout:
    """Every cluster laid out, innermost first, then placed in its parent; the lanes each edge runs down."""
    contents = _gather(boxes, edges, clusters)
    parents = {scope: box.scopes[i - 1] if i else None for box in boxes.values() for i, scope in enumerate(box.scopes)}
    depth = {scope: i for box in boxes.values() for i, scope in enumerate(box.scopes)}
    outer_first = sorted(parents, key=depth.__getitem__)
    order_of = {name: i for i, name in enumerate(boxes)}
    placed: dict[str | None, _Placed] = {}
    for path in reversed(outer_first):
        placed[path] = _place(contents[path], placed, boxes, order_of, PAD, len(clusters[path]) * 7 + 2 * PAD)
    placed[None] = root = _place(contents[None], placed, boxes, order_of, MARGIN, 0)
    origin: dict[str | None, tuple[int, int]] = {None: (0, 0)}
    for path in outer_first:
        row, x = origin[parents[path]]
        parent = placed[parents[path]]
        origin[path] = (row + parent.rank[(True, path)], x + parent.left[(True, path)])
    frames = {path: _frame(placed[path], *origin[path]) for path in outer_first}
    places = {}
    for name, box in boxes.items():
        scope = box.scopes[-1] if box.scopes else None
        row, x = origin[scope]
        places[name] = (row + placed[scope].rank[(False, name)], x + placed[scope].left[(False, name)])
    runs = [_runs(a, b, boxes, placed, origin) for a, b, _ in edges]
    return Layout(root.rows, root.width, places, frames, runs)


def _frame(placed: _Placed, row: int, x: int) -> Frame:
    inlet = next(iter(placed.entries.values()), placed.width // 2)
    return Frame(row, placed.rows, x, placed.width, x + min(max(inlet - BOX_WIDTH // 2, 0), placed.width - BOX_WIDTH))


def _runs(
    a: str, b: str, boxes: Mapping[str, _Box], placed: Mapping[str | None, _Placed], origin: Mapping[str | None, tuple[int, int]]
) -> list[tuple[int, int, int]]:
    """The lanes the edge a → b runs down, top to bottom: out of each cluster `a` is in, across the
    cluster holding both, into each cluster `b` is in; none for an edge that closes a cycle."""
    sa, sb = boxes[a].scopes, boxes[b].scopes
    common = _common(sa, sb)
    owner = sa[common - 1] if common else None
    if (_item(sa, a, common), _item(sb, b, common)) not in placed[owner].forward:
        return []

    def lane(scope: str | None, reader: Item | None) -> list[tuple[int, int, int]]:
        """The lane of `a` in `scope`, down to the row above `reader` (None: to its end)."""
        found = placed[scope].lanes.get(a)
        if found is None:
            return []
        row, x = origin[scope]
        last = found[2] if reader is None else placed[scope].rank[reader] - 1
        return [(x + found[0], row + found[1], row + last)] if found[1] <= last else []

    runs = [run for level in reversed(range(common, len(sa))) for run in lane(sa[level], None)]
    runs += lane(owner, _item(sb, b, common))
    return runs + [run for level in range(common, len(sb)) for run in lane(sb[level], _item(sb, b, level + 1))]
