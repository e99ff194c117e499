"""Architecture labels on the log-log maps, placed so that no label overlaps another label or a
marker. Work happens in inches from the axes' lower left corner, where log axes are linear.

Wide-and-shallow architectures (depth < width) stand in columns of equal depth: their labels go
above the marker and are pushed apart up the column. Deep-and-narrow ones stand in rows of equal
width: labels below, pushed apart along the row. A row or column label that would still hit
something takes the first free spot around its marker instead. Square architectures crowd the
diagonal: their labels take two lanes beside it (alternately below-right and above-left, as the
paper fans them out), with leader lines; a lane label that would hit something slides on along
its lane. A square architecture with room around it is labelled like the others."""

import itertools
import math
from dataclasses import dataclass

import numpy as np

from psa.trial.architecture import Architecture

FONT = 6.5  # points; the smallest text of any figure
PAD = 0.025  # inches between a marker and its label
STEP = 0.02  # inches a colliding label slides along its lane per try
TRIES = 400


@dataclass
class Label:
    text: str
    point: tuple[float, float]  # the marker, inches
    anchor: tuple[float, float]  # the text's alignment point, inches
    ha: str
    va: str
    size: tuple[float, float]  # text width and height, inches

    def box(self) -> tuple[float, float, float, float]:
        (u, v), (w, h) = self.anchor, self.size
        left = u - {"left": 0.0, "center": w / 2, "right": w}[self.ha]
        bottom = v - {"bottom": 0.0, "center": h / 2, "top": h}[self.va]
        return left, bottom, left + w, bottom + h


def spread(desired: list[float], extents: list[float]) -> list[float]:
    """Positions as close to the sorted `desired` ones as possible, neighbours at least half their
    `extents` (sizes along the lane) apart: runs that collide are merged and laid out back to back
    around their members' mean."""
    runs: list[list[int]] = []

    def collide(before: list[int], after: list[int]) -> bool:
        gap = (extents[before[-1]] + extents[after[0]]) / 2
        return _run(before, desired, extents)[-1] + gap > _run(after, desired, extents)[0]

    for k in range(len(desired)):
        runs.append([k])
        while len(runs) > 1 and collide(runs[-2], runs[-1]):
            runs[-2:] = [runs[-2] + runs[-1]]
    return [position for run in runs for position in _run(run, desired, extents)]


def _run(members: list[int], desired: list[float], extents: list[float]) -> list[float]:
    offsets = [0.0]
    for before, after in itertools.pairwise(members):
        offsets.append(offsets[-1] + (extents[before] + extents[after]) / 2)
    start = sum(desired[k] for k in members) / len(members) - sum(offsets) / len(offsets)
    return [start + offset for offset in offsets]


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class LabelPlacer:
    """Labels placed one lane at a time, each checked against every marker and placed label."""

    def __init__(self, ax, archs: list[Architecture], radii: list[float], texts: list[str]):
        fig = ax.figure
        box = ax.get_position()
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        self.per_x = box.width * fig.get_figwidth() / math.log10(x1 / x0)  # inches per decade
        self.per_y = box.height * fig.get_figheight() / math.log10(y1 / y0)
        self.origin = (x0, y0)
        self.points = [
            (math.log10(a.depth / x0) * self.per_x, math.log10(max(a.widths) / y0) * self.per_y) for a in archs
        ]
        self.texts = texts
        self.sizes = []
        for text in texts:
            probe = ax.text(0, 0, text, fontsize=FONT)
            extent = probe.get_window_extent(fig.canvas.get_renderer())
            probe.remove()
            self.sizes.append((extent.width / fig.dpi, extent.height / fig.dpi))
        self.reach = [r / 72 + PAD for r in radii]  # marker radius plus padding, inches
        self.taken = [(u - r / 72, v - r / 72, u + r / 72, v + r / 72) for (u, v), r in zip(self.points, radii)]
        self.labels: list[Label | None] = [None] * len(archs)

    def label(self, i: int, anchor: tuple[float, float], ha: str, va: str) -> Label:
        return Label(self.texts[i], self.points[i], anchor, ha, va, self.sizes[i])

    def free(self, label: Label) -> bool:
        return not any(overlaps(label.box(), other) for other in self.taken)

    def take(self, i: int, label: Label) -> None:
        self.labels[i] = label
        self.taken.append(label.box())

    def around(self, i: int) -> list[Label]:
        """Above, right of, below and left of the marker."""
        (u, v), r = self.points[i], self.reach[i]
        return [
            self.label(i, (u, v + r), "center", "bottom"),
            self.label(i, (u + r, v), "left", "center"),
            self.label(i, (u, v - r), "center", "top"),
            self.label(i, (u - r, v), "right", "center"),
        ]

    def first_free(self, i: int) -> bool:
        for label in self.around(i):
            if self.free(label):
                self.take(i, label)
                return True
        return False

    def lane(self, lane: list[int], anchor_of, desired, extent, slide: bool) -> None:
        """Spread the lane's labels along it. A label that hits something then takes the first
        free spot around its marker, or in a sliding lane moves on along the lane (and the labels
        after it with it) until it hits nothing."""
        lane = sorted(lane, key=desired)
        extents = [extent(i) for i in lane]
        reached = -math.inf  # where the previous label of a sliding lane ends
        for i, position, size in zip(lane, spread([desired(i) for i in lane], extents), extents):
            if not slide:
                label = self.label(i, *anchor_of(i, position))
                if self.free(label) or not self.first_free(i):
                    self.take(i, label)  # where nothing is free, it keeps its place in the lane
                continue
            position = max(position, reached + size / 2)
            label = self.label(i, *anchor_of(i, position))
            for _ in range(TRIES):
                if self.free(label):
                    break
                position += STEP
                label = self.label(i, *anchor_of(i, position))
            self.take(i, label)
            reached = position + size / 2


def label_archs(ax, archs: list[Architecture], radii: list[float], texts: list[str] | None = None) -> None:
    """Annotate each architecture's marker (radius in points) on log-log axes whose limits and
    position are final."""
    layout = LabelPlacer(ax, archs, radii, texts or [str(a) for a in archs])
    points, sizes, reach = layout.points, layout.sizes, layout.reach
    rows, columns, diagonal = {}, {}, []
    for i, arch in enumerate(archs):
        depth, width = arch.depth, max(arch.widths)
        if depth > width:
            rows.setdefault(width, []).append(i)
        elif depth < width:
            columns.setdefault(depth, []).append(i)
        else:
            diagonal.append(i)
    for lane in rows.values():
        layout.lane(
            lane,
            lambda i, p: ((p, points[i][1] - reach[i]), "center", "top"),
            lambda i: points[i][0],
            lambda i: sizes[i][0] + 2 * PAD,
            slide=False,
        )
    for lane in columns.values():
        layout.lane(
            lane,
            lambda i, p: ((points[i][0], p), "center", "bottom"),
            lambda i: points[i][1] + reach[i],
            lambda i: sizes[i][1] + PAD / 2,
            slide=False,
        )

    # A square architecture is crowded when a neighbour on the diagonal is less than 2.5 labels'
    # heights away: labels beside their markers would hardly fit. The crowded ones take the lanes
    # first; the others then take the first free spot around their marker, or else the lane's.
    heights = [points[i][1] for i in diagonal]
    crowded = [i for i, v in zip(diagonal, heights) if sum(abs(v - h) < 2.5 * sizes[i][1] for h in heights) > 1]
    crowded.sort(key=lambda i: points[i][1])
    slope = layout.per_x / layout.per_y  # depth = width runs along u = slope * v + shift
    shift = math.log10(layout.origin[1] / layout.origin[0]) * layout.per_x
    offset = 1.5 * max(reach, default=0.0)

    def beside(i: int, p: float, side: int = 1):
        return (slope * p + shift + side * offset, p - side * offset), "left" if side > 0 else "right", "center"

    for side in (1, -1):  # below-right first, as the paper's fan
        lane = crowded[(1 - side) // 2 :: 2]
        layout.lane(
            lane,
            lambda i, p, s=side: beside(i, p, s),
            lambda i: points[i][1],
            lambda i: sizes[i][1] + PAD / 2,
            slide=True,
        )
    for i in diagonal:
        if i not in crowded and not layout.first_free(i):
            layout.lane([i], beside, lambda i: points[i][1], lambda i: sizes[i][1], slide=True)

    (x0, y0), per_x, per_y = layout.origin, layout.per_x, layout.per_y
    for arch, label, r in zip(archs, layout.labels, reach):
        near = math.dist(label.point, label.anchor) < 1.2 * r  # right beside its marker: no leader needed
        anchor = (x0 * 10 ** (label.anchor[0] / per_x), y0 * 10 ** (label.anchor[1] / per_y))
        leader = {"arrowstyle": "-", "color": "0.55", "linewidth": 0.4, "shrinkA": 0, "shrinkB": 2}
        ax.annotate(
            label.text,
            (arch.depth, max(arch.widths)),
            anchor,
            ha=label.ha,
            va=label.va,
            fontsize=FONT,
            color="0.15",
            zorder=5,
            annotation_clip=False,
            arrowprops=None if near else leader,
        )


def marker_radius(size: float | np.ndarray) -> float | np.ndarray:
    """Radius in points of a scatter marker of `size` (points squared)."""
    return np.sqrt(size) / 2
