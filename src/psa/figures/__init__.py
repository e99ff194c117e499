"""Publication figures, 300 DPI PNG: the design space (figures.space), its six heat maps
(figures.heatmaps), and the convergence and late-breakthrough plots (figures.convergence)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402

from psa.files import write_atomic  # noqa: E402

DPI = 300
MODE_STYLE = {  # the study's colours; yellow and cyan darkened enough to read on white
    "none": ("Control (None)", "saddlebrown"),
    "decay": ("Weight Decay", "purple"),
    "dropout": ("Dropout", "hotpink"),
    "hidden": ("Hidden Ablation", "goldenrod"),
    "output": ("Output Ablation", "darkturquoise"),
    "full": ("Full Ablation", "darkorange"),
}


def save(fig, path: Path | str) -> Path:
    """Write `fig` as a 300 DPI PNG (atomically), and release it whatever happens."""
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    finally:
        plt.close(fig)


def add_family_and_zeror(parser) -> None:
    from psa import options

    options.add_family(parser, "--family")
    parser.add_argument("--zeror", type=options.PERCENT, help="ZeroR line / failure threshold, percent (default: from MNIST)")
    options.add_data_dir(parser)
