"""Two studies' convergence curves side by side, for the architectures where they differ (`psa
compare --figure`): per architecture a panel, each mode's study row (per meta-loop the best
accuracy over its trials, which both a store and the published tables have), ours solid and the
reference's dashed, on the paper's log-scaled axis."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from psa.study.figures import MODE_STYLE, ZEROR_STYLE, save
from psa.study.series import SeriesRow, study_rows

MOST = 6  # panels


def comparison_figure(
    ours: list[SeriesRow],
    reference: list[SeriesRow],
    archs: list[str],
    output: Path,
    zeror: float,
    names=("ours", "reference"),
) -> Path:
    archs = archs[:MOST]
    mine = {(row.arch, row.mode): row.values for row in study_rows(ours)}
    theirs = {(row.arch, row.mode): row.values for row in study_rows(reference)}
    fig, axes = plt.subplots(len(archs), 1, figsize=(6.0, 0.9 + 2.3 * len(archs)), squeeze=False)
    for ax, arch in zip(axes[:, 0], archs):
        for mode, (_, colour, _, _) in MODE_STYLE.items():
            for curves, style in ((mine, "-"), (theirs, "--")):
                values = curves.get((arch, mode))
                if values:
                    y = np.array([np.nan if v is None else v for v in values])
                    ax.plot(np.arange(1, len(y) + 1), y, color=colour, linestyle=style, linewidth=1.4, alpha=0.9)
        ax.axhline(zeror, **ZEROR_STYLE)
        ax.set_yscale("log")
        ax.set_title(f"Architecture {arch}", loc="right", pad=4)
        ax.set_ylabel("Validation Accuracy")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:.0f}%"))
        ax.grid(True, color="0.9", linewidth=0.6)
    axes[-1, 0].set_xlabel("Meta-Loop")
    handles = [Line2D([], [], color=colour, label=name) for name, colour, _, _ in MODE_STYLE.values()]
    handles += [Line2D([], [], color="0.3", linestyle=style, label=name) for name, style in zip(names, ("-", "--"))]
    fig.legend(handles=handles, ncol=4, loc="upper center", frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / fig.get_figheight()))
    return save(fig, output)
