"""The design space drawn log-log as in the paper: depth (x) against width (y), the axes fitted to
the architectures drawn. `make-design-space-figure` draws each architecture as the paper does, a
rectangle from (1, 1) to (depth, width); every heat map (figures.heatmaps) is a scatter of circles
on the same axes (`map_figure`, `fit_axes`)."""

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from psa.study.figures import save
from psa.study.figures.labels import label_archs
from psa.trial.architecture import FAMILY_TITLES, Architecture, read_configurations

MAP_SIZE = (6.4, 6.2)  # inches, every design-space figure
MARGIN = (0.75, 0.55, 0.2, 0.45)  # left, bottom, right, top: inches around the axes
KEY_WIDTH = 1.05  # inches right of the axes for a colour bar or a size legend
LEGEND_ROW = 0.21  # inches per row of a legend above the axes
ROOM = (0.3, 0.28, 0.4, 0.3)  # inches inside the axes beyond the outermost markers: left, bottom, right, top
MIN_DECADES = 0.8  # an axis spans at least this much of the data, so one architecture still gets a scale


def map_figure(title: str, legend_rows: int = 0, keyed: bool = False):
    """A design-space figure with room above the axes for a legend of `legend_rows` rows (its
    title counts as one) and, if `keyed`, for a colour bar or size legend on the right."""
    width, height = MAP_SIZE
    left, bottom, right, top = MARGIN
    right += KEY_WIDTH if keyed else 0.0
    top += LEGEND_ROW * legend_rows + 0.1 if legend_rows else 0.0
    fig = plt.figure(figsize=MAP_SIZE)
    ax = fig.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (bottom + top) / height))
    fig.suptitle(title, y=1 - 0.08 / height, va="top")
    return fig, ax


def legend_above(fig, ax, handles: list, title: str | None = None, ncol: int = 4) -> None:
    if not handles:
        return
    box = ax.get_position()
    fig.legend(
        handles=handles,
        title=title,
        ncol=ncol,
        loc="lower center",
        frameon=False,
        handletextpad=0.3,
        columnspacing=1.2,
        bbox_to_anchor=(box.x0 + box.width / 2, box.y1 + 0.04 / fig.get_figheight()),
    )


def key_axes(fig, ax):
    """Axes for a colour bar right of `ax`, as tall as it."""
    box, width = ax.get_position(), fig.get_figwidth()
    return fig.add_axes((box.x1 + 0.15 / width, box.y0, 0.14 / width, box.height))


def key_anchor(fig, ax) -> tuple[float, float]:
    """Where a legend standing in for a colour bar hangs ('center left'), in figure fraction."""
    box = ax.get_position()
    return box.x1 + 0.08 / fig.get_figwidth(), box.y0 + box.height / 2


def _limits(values: list[float], length: float, room_low: float, room_high: float) -> tuple[float, float]:
    """Log-axis limits that keep `room_*` inches between the extreme values and the axis ends."""
    low, high = math.log10(min(values)), math.log10(max(values))
    if high - low < MIN_DECADES:
        middle = (low + high) / 2
        low, high = middle - MIN_DECADES / 2, middle + MIN_DECADES / 2
    per = (length - room_low - room_high) / (high - low)  # inches per decade
    return 10 ** (low - room_low / per), 10 ** (high + room_high / per)


def _log_axis(axis, low: float, high: float) -> None:
    """Decades labelled as plain numbers; 2 and 5 between them when the axis spans few decades."""
    decades = math.log10(high / low)
    subs = (1.0,) if decades > 2.2 else (1.0, 2.0, 5.0) if decades > 0.9 else (1.0, 2.0, 3.0, 5.0, 7.0)
    axis.set_major_locator(LogLocator(10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(LogLocator(10, subs=np.arange(1, 10)))
    axis.set_minor_formatter(NullFormatter())


def fit_axes(ax, archs: list[Architecture], from_origin: bool = False, reach: float = 0.0) -> None:
    """Log-log axes, depth across and width up, fitted to `archs` (and to (1, 1) if
    `from_origin`), with room inside for the outermost markers (up to `reach` inches in radius)
    and their labels."""
    fig = ax.figure
    box = ax.get_position()
    depths = [a.depth for a in archs] + [1] * from_origin
    widths = [max(a.widths) for a in archs] + [1] * from_origin
    left, bottom, right, top = (max(room, reach + 0.05) for room in ROOM)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*_limits(depths, box.width * fig.get_figwidth(), left, right))
    ax.set_ylim(*_limits(widths, box.height * fig.get_figheight(), bottom, top))
    _log_axis(ax.xaxis, *ax.get_xlim())
    _log_axis(ax.yaxis, *ax.get_ylim())
    ax.grid(True, which="major", color="0.8", linestyle="--", linewidth=0.6)
    ax.grid(True, which="minor", color="0.9", linestyle="--", linewidth=0.4)
    ax.set_axisbelow(True)
    ax.set_xlabel("Depth (# of layers)")
    ax.set_ylabel("Width (neurons per layer)")


def diagonal(ax) -> None:
    """The line depth = width, dashed, across the whole axes."""
    low = min(ax.get_xlim()[0], ax.get_ylim()[0])
    high = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([low, high], [low, high], color="0.65", linestyle="--", linewidth=0.8, zorder=1)
    ax.set_xlim(ax.get_xlim())  # plotting must not widen the fitted limits


def scatter(ax, archs: list[Architecture], colours, sizes, marker: str = "o", **style):
    return ax.scatter(
        [a.depth for a in archs], [max(a.widths) for a in archs], s=sizes, c=colours, marker=marker, zorder=3, **style
    )


def design_space_figure(config_file: Path | str, output_file: Path | str, family: str = "simplemlp") -> Path:
    archs = read_configurations(config_file)
    fig, ax = map_figure(f"{FAMILY_TITLES[family]} Design Space (Logarithmic Scale): {len(archs)} architectures")
    fit_axes(ax, archs, from_origin=True)
    # Largest first, so the smaller rectangles' edges stay visible on top of the larger ones.
    for arch in sorted(archs, key=lambda a: -a.depth * max(a.widths)):
        ax.add_patch(
            Rectangle(
                (1, 1),
                arch.depth - 1,
                max(arch.widths) - 1,
                facecolor="cyan",
                alpha=0.3,
                edgecolor="blue",
                linewidth=0.5,
                zorder=2,
            )
        )
    corner = 12.0  # points squared: the dot marking each rectangle's far corner
    ax.scatter(
        [a.depth for a in archs], [max(a.widths) for a in archs], s=corner, color="#0d47a1", zorder=4, linewidths=0
    )
    label_archs(ax, archs, [math.sqrt(corner) / 2] * len(archs), [a.label for a in archs])
    return save(fig, output_file)
