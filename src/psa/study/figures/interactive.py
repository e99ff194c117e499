"""The report page's figures as Plotly specifications (plain dicts of data and layout, which the page
hands to plotly.js): a map of the design space per mode run, coloured by mean bounty on the
paper's scale, the regime map, the design-space figure, and the data the page's convergence panel
draws from. Colours are the PNG figures' (psa.study.figures)."""

import math

import pandas as pd
from matplotlib.colors import to_hex

from psa.study.figures import MODE_STYLE, UNTRAINABLE
from psa.study.figures.heatmaps import BASELINE_MAP
from psa.study.regimes import REGIMES

BASELINE_SCALE = [[0.0, to_hex(BASELINE_MAP(0.0))], [1.0, to_hex(BASELINE_MAP(1.0))]]  # the paper's, as the PNG maps
FONT = {"family": "DejaVu Sans, Arial, sans-serif", "size": 12}


def axes(shapes: pd.DataFrame) -> dict:
    """Log-log depth x width axes around the architectures, as the paper's maps."""

    def span(values) -> list[float]:
        low, high = math.log10(max(1, min(values))), math.log10(max(values))
        return [low - 0.15, high + 0.15]

    return {
        # A label per decade, as the paper's axes: the log scale's 2s and 5s would crowd them.
        "xaxis": {"type": "log", "title": {"text": "Depth (# of layers)"}, "range": span(shapes["depth"]), "dtick": 1},
        "yaxis": {
            "type": "log",
            "title": {"text": "Width (neurons per layer)"},
            "range": span(shapes["width"]),
            "dtick": 1,
        },
        "legend": {"orientation": "h", "x": 0, "y": -0.22},
        "font": FONT,
        "margin": {"l": 70, "r": 20, "t": 50, "b": 55},
        "height": 450,
        "plot_bgcolor": "white",
        "hoverlabel": {"bgcolor": "white"},
        "hovermode": "closest",
    }


def reference_text(reference: pd.DataFrame | None, arch: str, mode: str) -> str:
    if reference is None:
        return ""
    row = reference[(reference["arch"] == arch) & (reference["mode"] == mode)]
    if row.empty:
        return "<br>reference: not run"
    r = row.iloc[0]
    return f"<br>reference: {r['mean']:.2f} ± {r['std']:.2f}% (n={r['n']})"


def mode_maps(
    summary: pd.DataFrame, shapes: pd.DataFrame, regimes: dict, zeror: float, reference: pd.DataFrame | None
) -> list[dict]:
    """A map per mode: each architecture at (depth, width), coloured by its mean bounty on the paper's
    baseline scale from ZeroR to 100 %; untrainable architectures black, as the paper draws them."""
    figures = []
    for mode, (name, _, _, _) in MODE_STYLE.items():
        cells = summary[summary["mode"] == mode].merge(shapes, on="arch")
        if cells.empty:
            continue
        dead = cells["arch"].map(lambda a: regimes.get(a) == "untrainable")
        text = [
            f"<b>{r.arch}</b><br>mode {mode}<br>mean {r.mean:.2f}%<br>std {r.std:.2f}%<br>n {r.n}"
            + reference_text(reference, r.arch, mode)
            for r in cells.itertuples()
        ]
        marker = {
            "size": 11,
            "color": [float(m) for m in cells["mean"]],
            "colorscale": BASELINE_SCALE,
            "cmin": zeror,
            "cmax": 100.0,
            "colorbar": {"title": {"text": "Mean bounty (%)"}},
            "line": {"width": 0.5, "color": "black"},
        }
        figures.append(
            {
                "id": f"map-{mode}",
                "data": [
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "x": [int(v) for v in cells["depth"]],
                        "y": [int(v) for v in cells["width"]],
                        "text": text,
                        "hovertemplate": "%{text}<extra></extra>",
                        "marker": marker,
                        "name": name,
                    },
                    *_black(cells[dead]),
                ],
                "layout": axes(shapes) | {"title": {"text": f"{name}: mean bounty per architecture"}},
                "points": [str(a) for a in cells["arch"]],
            }
        )
    return figures


def _black(cells: pd.DataFrame) -> list[dict]:
    """Untrainable architectures drawn over the colour scale in black (hovering the coloured point
    beneath still gives the numbers)."""
    if cells.empty:
        return []
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "x": [int(v) for v in cells["depth"]],
            "y": [int(v) for v in cells["width"]],
            "marker": {"size": 11, "color": UNTRAINABLE, "line": {"width": 0.5, "color": "black"}},
            "name": "Architectural Failure",
            "hoverinfo": "skip",
        }
    ]


def regime_map(table: pd.DataFrame, shapes: pd.DataFrame, reference: dict | None) -> dict:
    """The regime of every architecture, a trace per regime (its legend entry); hover: the regime,
    its stability, and with a reference its regime and the verdict."""
    data = []
    table = table.merge(shapes, on="arch")
    for label, (name, colour) in REGIMES.items():
        rows = table[table["regime"] == label]
        if rows.empty:
            continue
        text = [
            f"<b>{r.arch}</b><br>{name}<br>stability {r.stability:.0%}"
            + (f"<br>{r.why}" if r.why else "")
            + (
                f"<br>reference: {reference[r.arch][0]} ({reference[r.arch][1]})"
                if reference and r.arch in reference
                else ""
            )
            for r in rows.itertuples()
        ]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [int(v) for v in rows["depth"]],
                "y": [int(v) for v in rows["width"]],
                "text": text,
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"size": 12, "color": colour, "line": {"width": 0.6, "color": "black"}},
            }
        )
    layout = axes(shapes) | {"title": {"text": "Training regimes"}}
    return {"id": "map-regimes", "data": data, "layout": layout | {"height": 480}}


def design_space(shapes: pd.DataFrame) -> dict:
    """Every architecture at (depth, width), its marker growing with its parameter count."""
    sizes = [8 + 4 * math.log10(max(p, 1) / max(1, shapes["parameters"].min())) for p in shapes["parameters"]]
    text = [
        f"<b>{r.arch}</b><br>depth {r.depth}, width {r.width}<br>{r.parameters:,} parameters"
        for r in shapes.itertuples()
    ]
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": [int(v) for v in shapes["depth"]],
            "y": [int(v) for v in shapes["width"]],
            "text": text,
            "hovertemplate": "%{text}<extra></extra>",
            "marker": {"size": sizes, "color": "#0d47a1", "opacity": 0.75, "line": {"width": 0.5, "color": "white"}},
        }
    ]
    return {"id": "design-space", "data": data, "layout": axes(shapes) | {"title": {"text": "The design space"}}}


def modes_style() -> dict:
    """mode -> (legend name, colour), for the page's convergence panel."""
    return {mode: {"name": name, "colour": colour} for mode, (name, colour, _, _) in MODE_STYLE.items()}
