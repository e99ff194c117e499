"""Publication figures, 300 DPI PNG, drawn as the paper's: the design space (figures.space), its
six maps (figures.heatmaps) and the convergence and late-breakthrough panels (figures.convergence).
Sizes and fonts are chosen so that text stays legible when a figure is printed at column width."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402

from psa.files import write_atomic  # noqa: E402

DPI = 300
STYLE = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10.5,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 12,
}
plt.rcParams.update(STYLE)

# mode -> (the paper's legend name, its colour sampled from the paper's figures, line style, marker).
# Line styles and markers tell apart curves that coincide: with paired seeds, decay trains exactly
# as none in float32 (docs/DESIGN.md section 9), and flat untrainable curves coincide too.
MODE_STYLE = {
    "none": ("Control (None)", "#a1887f", "-", "o"),
    "decay": ("Weight Decay", "#651fff", (0, (4, 2)), "s"),
    "dropout": ("Dropout", "#e040fb", (0, (6, 1.5, 1.5, 1.5)), "^"),
    "hidden": ("Hidden Ablation", "#ffeb3b", "-", "D"),
    "output": ("Output Ablation", "#00b0ff", (0, (2, 1.2)), "v"),
    "full": ("Full Ablation", "#ff8a65", (0, (8, 2)), "P"),
}
UNTRAINABLE = "#212121"  # the paper draws untrainable architectures black on every map
ZEROR_STYLE = {"color": "0.5", "linestyle": "--", "linewidth": 1.2}


def save(fig, path: Path | str) -> Path:
    """Write `fig` as a 300 DPI PNG (atomically), and release it whatever happens."""
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    finally:
        plt.close(fig)
