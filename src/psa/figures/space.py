"""The design space drawn log-log, one square per architecture at (width, depth); labels sit in
lanes beside their square and are pushed apart along the lane, with curved leaders, so none
overlap. Every heat map is this drawing with its own colours; `make-design-space-figure` draws it
plain."""

import math
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, NullFormatter

from psa import options
from psa.architecture import FAMILY_TITLES, Architecture, read_configurations
from psa.figures import save
from psa.published import CONFIGURATIONS

MAP_SIZE = (12.0, 9.0)  # inches, every design-space figure
MAP_AXES = (0.07, 0.07, 0.70, 0.86)  # left, bottom, width, height (figure fraction); the key goes right
WIDE_AXES = (0.07, 0.07, 0.90, 0.86)
KEY_AXES = (0.80, 0.25, 0.02, 0.60)
SQUARE = 0.055  # side of an architecture's square, in decades
FONT = 6.5  # label size, points
LIMITS = ((0.5, 5000.0), (0.5, 2500.0))  # width, depth


def spread(desired: list[float], gap: float) -> list[float]:
    """Positions as close to the sorted `desired` ones as possible, at least `gap` apart: runs that
    collide are merged and laid out evenly around their members' mean."""
    clusters: list[list[float]] = []
    for position in desired:
        clusters.append([position])
        while len(clusters) > 1 and _start(clusters[-2], gap) + gap * len(clusters[-2]) > _start(clusters[-1], gap):
            clusters[-2:] = [clusters[-2] + clusters[-1]]
    return [_start(members, gap) + gap * i for members in clusters for i in range(len(members))]


def _start(members: list[float], gap: float) -> float:
    return sum(members) / len(members) - gap * (len(members) - 1) / 2


def position(arch: Architecture) -> tuple[float, float]:
    """(log10 width, log10 depth); a mixed-width architecture sits at its widest layer."""
    return math.log10(max(arch.widths)), math.log10(arch.depth)


def label_layout(archs: list[Architecture], texts: list[str], ax) -> list[tuple[float, float, str, str, bool]]:
    """(x, y, horizontal alignment, vertical alignment, leader?) per label, in data coordinates.
    Wide-and-shallow architectures are labelled below their square, deep-and-narrow ones to its
    right, and the square ones of the diagonal alternate between two lanes beside it."""
    box = ax.get_position()
    fig_w, fig_h = ax.figure.get_size_inches()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    per_x = box.width * fig_w / math.log10(x1 / x0)  # inches per decade
    per_y = box.height * fig_h / math.log10(y1 / y0)
    line = 1.35 * FONT / 72  # inches per label line

    lanes = defaultdict(list)  # lane -> [(index, coordinate along the lane)]
    # The upper-left lane would run into the labels of the narrow columns (width <= 4) below
    # depth ~20, so small square architectures all take the lower lane; the crowded rest alternate.
    crowded = sorted((i for i, a in enumerate(archs) if a.depth == max(a.widths) >= 16), key=lambda i: archs[i].depth)
    for i, arch in enumerate(archs):
        u, v = position(arch)
        if arch.depth == max(arch.widths):
            upper = i in crowded and crowded.index(i) % 2 == 1
            lanes["upper" if upper else "lower"].append((i, u))
        elif v < u:
            lanes[("row", round(v, 6))].append((i, u))
        else:
            lanes[("column", round(u, 6))].append((i, v))

    layout = [None] * len(archs)
    for lane, members in lanes.items():
        members.sort(key=lambda member: member[1])
        longest = max(len(texts[i]) for i, _ in members) * 0.55 * FONT / 72
        lines = max(texts[i].count("\n") + 1 for i, _ in members)
        if lane in ("upper", "lower"):
            gap, offset = lines * line / per_y, 0.22
        elif lane[0] == "row":
            gap, offset = (longest + 0.08) / per_x, SQUARE / 2 + 0.02
        else:
            gap, offset = lines * line / per_y, SQUARE / 2 + 0.02
        for (i, along), placed in zip(members, spread([m[1] for m in members], gap)):
            u, v = position(archs[i])
            if lane == "upper":
                x, y, ha, va = placed - offset, placed + offset, "right", "center"
            elif lane == "lower":
                x, y, ha, va = placed + offset, placed - offset, "left", "center"
            elif lane[0] == "row":
                x, y, ha, va = placed, v - offset, "center", "top"
            else:
                x, y, ha, va = u + offset, placed, "left", "center"
            leader = lane in ("upper", "lower") or abs(placed - along) > 1e-9
            layout[i] = (10**x, 10**y, ha, va, leader)
    return layout


def draw_design_space(ax, archs: list[Architecture], colours: list, texts: list[str] | None = None, hatches=None) -> None:
    """One labelled square per architecture on log-log axes of width and depth."""
    texts = texts or [arch.label for arch in archs]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*LIMITS[0])
    ax.set_ylim(*LIMITS[1])
    ax.grid(True, which="major", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Width (neurons per hidden layer)")
    ax.set_ylabel("Depth (hidden layers)")
    half = 10 ** (SQUARE / 2)
    for i, (arch, colour) in enumerate(zip(archs, colours)):
        width, depth = 10 ** np.array(position(arch))
        ax.add_patch(Rectangle((width / half, depth / half), width * (half - 1 / half), depth * (half - 1 / half),
                               facecolor=colour, edgecolor="black", linewidth=0.4,
                               hatch=hatches[i] if hatches else None, zorder=3))
    for (width, depth), text, (x, y, ha, va, leader) in zip(
        (10 ** np.array(position(a)) for a in archs), texts, label_layout(archs, texts, ax)
    ):
        arrow = dict(arrowstyle="-", color="0.45", linewidth=0.4, connectionstyle="arc3,rad=0.15", shrinkA=0, shrinkB=1)
        ax.annotate(text, (width, depth), (x, y), ha=ha, va=va, fontsize=FONT, zorder=4,
                    arrowprops=arrow if leader else None)


def map_figure(title: str, keyed: bool = True):
    """A design-space figure; `keyed` leaves the right-hand side for a colour bar or legend."""
    fig = plt.figure(figsize=MAP_SIZE)
    ax = fig.add_axes(MAP_AXES if keyed else WIDE_AXES)
    ax.set_title(title, fontsize=13, pad=10)
    return fig, ax


def legend_key(fig, handles: list[Patch], title: str) -> None:
    fig.legend(handles=handles, title=title, loc="center left", bbox_to_anchor=(KEY_AXES[0], 0.5), frameon=False, fontsize=9)


def colour_key(fig, mappable, label: str) -> None:
    fig.colorbar(mappable, cax=fig.add_axes(KEY_AXES), label=label)


def design_space_figure(config_file: Path | str, output_file: Path | str, family: str = "simplemlp") -> Path:
    archs = read_configurations(config_file)
    fig, ax = map_figure(f"{FAMILY_TITLES[family]} Testing Design Space: {len(archs)} architectures", keyed=False)
    draw_design_space(ax, archs, ["lightsteelblue"] * len(archs))
    return save(fig, output_file)


def run(args) -> None:
    output = args.output_file or Path("results") / f"{FAMILY_TITLES[args.family]}_Testing_Design_Space.png"
    print(design_space_figure(args.config_file, output, args.family))


def configure(parser) -> None:
    parser.add_argument("--config-file", type=Path, default=CONFIGURATIONS,
                        help="architectures, one L*W per line (default: the published study's)")
    parser.add_argument("--output-file", type=Path, help="default: results/<Family>_Testing_Design_Space.png")
    options.add_family(parser, "--family")
    parser.set_defaults(func=run)


