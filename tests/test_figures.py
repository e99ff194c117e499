import itertools
import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.text import Text
from PIL import Image

from psa import published
from psa.cli import main
from psa.errors import PSAError
from psa.study.figures import DPI, MODE_STYLE, convergence, heatmaps, space
from psa.study.figures.convergence import (
    BREAKTHROUGHS,
    RULES,
    TARGETS,
    late_breakthroughs,
    regime_labels,
    representatives,
    study_rows,
)
from psa.study.figures.heatmaps import ablation_effect
from psa.study.figures.labels import spread
from psa.study.figures.space import MAP_SIZE, design_space_figure
from psa.study.regimes import REGIMES
from psa.study.results import read_trials, write_trials
from psa.study.series import Curve, SeriesRow, read_series, study, write_series
from psa.trial.architecture import Architecture, read_configurations
from psa.trial.modes import MODES

QUICK = ["1*32", "2*16", "4*17", "17*4", "16*2"]  # small published architectures, one of each shape


@pytest.fixture
def figures(monkeypatch):
    """Every figure the figure modules save, kept open for inspection (and saved as usual)."""
    kept = []

    def keep(fig, path):
        kept.append(fig)
        fig.savefig(path, dpi=DPI, format="png")
        return path

    for module in (space, heatmaps, convergence):
        monkeypatch.setattr(module, "save", keep)
    yield kept
    for fig in kept:
        plt.close(fig)


def assert_png(path, size_inches):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (round(size_inches[0] * DPI), round(size_inches[1] * DPI))
        assert round(image.info["dpi"][0]) == DPI


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def assert_labels_apart(fig):
    """No two architecture labels overlap, and each lies inside the figure."""
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]  # the text alone, not its leader
    assert boxes
    for a, b in itertools.combinations(boxes, 2):
        overlap = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
        assert overlap < 1.0, (a, b)  # square pixels: touching is not overlapping
    width, height = fig.get_size_inches() * fig.dpi
    assert all(b.x0 >= 0 and b.y0 >= 0 and b.x1 <= width and b.y1 <= height for b in boxes)


def assert_fitted(ax, archs):
    """Depth across, width up, both log, the limits hugging the architectures drawn."""
    assert ax.get_xlabel() == "Depth (# of layers)" and ax.get_ylabel() == "Width (neurons per layer)"
    assert ax.get_xscale() == ax.get_yscale() == "log"
    depths = [a.depth for a in archs]
    widths = [max(a.widths) for a in archs]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < min(depths) and x1 > max(depths) and y0 < min(widths) and y1 > max(widths)
    for low, high, values in ((x0, x1, depths), (y0, y1, widths)):
        margin = max(math.log10(min(values) / low), math.log10(high / max(values)))
        assert margin < 0.25 * max(math.log10(max(values) / min(values)), 1.0)


def test_design_space_fits_and_labels_every_architecture(tmp_path, figures):
    for name, archs in (("all", read_configurations(published.CONFIGURATIONS)), ("quick", QUICK)):
        config = tmp_path / f"{name}.txt"
        config.write_text("\n".join(map(str, archs)) + "\n")
        design_space_figure(config, tmp_path / f"{name}.png")
        assert_png(tmp_path / f"{name}.png", MAP_SIZE)
        fig, archs = figures[-1], read_configurations(config)
        assert_fitted(fig.axes[0], archs + [Architecture.parse("1*1")])  # rectangles start at (1, 1)
        assert len(fig.axes[0].patches) == len(archs) and len(fig.axes[0].texts) == len(archs)
        assert_labels_apart(fig)


def test_heatmaps_follow_the_paper(tmp_path, figures):
    main(
        [
            "make-figure-heatmaps",
            "--config-file",
            str(published.CONFIGURATIONS),
            "--trials-file",
            str(published.results("trials")),
            "--out",
            str(tmp_path),
            "--zeror",
            "11.02",
        ]
    )
    names = [
        "Regimes",
        "Baseline_Performance",
        "Ablation_Effects",
        "Instability",
        "Winning_Strategy",
        "Parameter_Matching",
    ]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f"SimpleMLP_Heatmap_{n}.png" for n in names)
    maps = dict(zip(names, figures))
    archs = read_configurations(published.CONFIGURATIONS)
    for name, fig in maps.items():
        assert_png(tmp_path / f"SimpleMLP_Heatmap_{name}.png", MAP_SIZE)
        assert_fitted(fig.axes[0], archs)
        assert not [t for t in texts(fig) if ".md" in t or "DESIGN" in t or "section" in t]
    assert maps["Regimes"]._suptitle.get_text() == "SimpleMLP Design Space: Training Regimes"
    assert {n for n, _ in REGIMES.values()} - {"Unknown"} <= set(texts(maps["Regimes"]))
    # Every point of the regime map in its regime's colour: 47*4 is untrainable, black.
    points = maps["Regimes"].axes[0].collections[0]
    where = [i for i, (x, y) in enumerate(points.get_offsets()) if (x, y) == (47, 4)]
    assert to_hex(points.get_facecolors()[where[0]]) == REGIMES["untrainable"][1]
    for name in ("Regimes", "Parameter_Matching"):
        assert len(maps[name].axes[0].texts) == len(archs)
        assert_labels_apart(maps[name])
    for name in ("Baseline_Performance", "Instability", "Parameter_Matching"):
        assert len(maps[name].axes) == 2  # a colour bar with numbers
        assert maps[name].axes[1].get_yticklabels()
    assert {"0.5", "2", "5"} <= set(texts(maps["Ablation_Effects"]))  # the size legend
    assert {"Architectural Failure", "Control (None)", "Dropout", "Weight Decay"} <= set(
        texts(maps["Winning_Strategy"])
    )


def test_heatmaps_fit_a_small_grid(tmp_path, figures):
    trials = read_trials(published.results("trials"))
    write_trials(tmp_path / "quick.md", {arch: trials[arch] for arch in QUICK}, "simplemlp")
    heatmaps.heatmap_figures(None, tmp_path / "quick.md", tmp_path, zeror=11.02)
    for fig in figures:
        assert_fitted(fig.axes[0], [Architecture.parse(a) for a in QUICK])
    assert_labels_apart(figures[0])


def test_ablation_effects_reproduce_the_paper():
    trials = read_trials(published.results("trials"))

    def effect(arch):
        return ablation_effect(*[[v for v in trials[arch][m] if v is not None] for m in ("none", "full")])

    assert effect("1*1")[0] == effect("5*5")[0] == effect("11*11")[0] == "beneficial"
    assert effect("1*2048")[0] == effect("2*115")[0] == "harmful" and effect("1*64")[1] < -9
    assert effect("4*632")[0] == effect("2*939")[0] == effect("1*1024")[0] == "neutral"


def test_mode_colours_are_the_papers():
    assert {mode: colour for mode, (_, colour, _, _) in MODE_STYLE.items()} == {
        "none": "#a1887f",
        "decay": "#651fff",
        "dropout": "#e040fb",
        "hidden": "#ffeb3b",
        "output": "#00b0ff",
        "full": "#ff8a65",
    }
    assert len({(style, marker) for _, _, style, marker in MODE_STYLE.values()}) == len(MODE_STYLE)


def test_convergence_plots_are_the_papers(tmp_path, figures):
    main(
        [
            "make-convergence-plots",
            "--loop-max",  # the published study released only its study rows, not a trial's series
            "--convergence-file",
            str(published.results("trials_convergence")),
            "--trials-file",
            str(published.results("trials")),
            "--output-dir",
            str(tmp_path),
            "--zeror",
            "11.02",
        ]
    )
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "SimpleMLP_Plot_Convergence.png",
        "SimpleMLP_Plot_Late_Breakthroughs.png",
    ]
    for fig, targets in zip(figures, (TARGETS, BREAKTHROUGHS)):
        assert_png(
            tmp_path
            / ("SimpleMLP_Plot_Convergence.png" if targets == TARGETS else "SimpleMLP_Plot_Late_Breakthroughs.png"),
            fig.get_size_inches(),
        )
        assert [ax.get_title(loc="right") for ax in fig.axes] == [f"Architecture {t}" for t in targets]
        for ax in fig.axes:
            low, high = ax.get_ylim()
            assert len([t for t in ax.get_yticks() if low <= t <= high]) >= 3  # readable ticks
            assert len(ax.get_lines()) == 7  # six modes and the ZeroR line
        assert fig.legends and not any(ax.get_legend() for ax in fig.axes)  # one legend, over no data
        assert not [t for t in texts(fig) if "Paired" in t] and RULES["loop-max"] in texts(fig)
        assert all(ax.get_yscale() == "log" for ax in fig.axes)
    assert [ax.texts[0].get_text() for ax in figures[0].axes] == [
        "I. Beneficial Regularization",
        "II. Optimally Sized",
        "III. Chaotic Optimization",
        "IV. Architectural Failure",  # the paper's box; its regime map says Untrainable
    ]
    assert {ax.texts[0].get_text() for ax in figures[1].axes} == {"III. Chaotic Optimization"}
    # The study's row is what is drawn: 18*18's output curve is the table's, loop by loop.
    row = next(
        r for r in read_series(published.results("trials_convergence")) if r.arch == "18*18" and r.mode == "output"
    )
    drawn = figures[0].axes[2].get_lines()[MODES.index("output")].get_ydata()
    assert list(drawn) == row.values


def per_trial_table(path, archs, seeding="paired"):
    """Two trials per cell around the study's rows of `archs`, as psa export writes them."""
    rows = []
    for row in read_series(published.results("trials_convergence")):
        if row.arch in archs:
            for trial, shift in ((1, -1.0), (2, 1.0)):
                rows.append(SeriesRow(row.arch, row.mode, trial, [v + shift for v in row.values], row.final_test))
    write_series(path, rows, "convergence", "simplemlp", {"seeding": seeding})
    return rows


def test_spread_needs_per_trial_rows_and_says_paired_seeds(tmp_path, figures, capsys):
    per_trial = tmp_path / "per_trial.md"
    rows = per_trial_table(per_trial, {"18*18", "4*2"})
    main(
        [
            "make-convergence-plots",
            "--spread",
            "--convergence-file",
            str(per_trial),
            "--output-dir",
            str(tmp_path),
            "--zeror",
            "11.02",
            "--targets",
            "18*18,4*2",
            "--breakthrough-targets",
            "auto",
        ]
    )
    fig = figures[0]
    assert any("Paired seeds" in t for t in texts(fig)) and any("standard deviation" in t for t in texts(fig))
    output = fig.axes[0].get_lines()[MODES.index("output")].get_ydata()
    first = next(r for r in rows if r.arch == "18*18" and r.mode == "output" and r.trial == 1)
    assert np.allclose(output, np.array(first.values) + 1.0)  # the mean of trials 1 and 2
    assert len(fig.axes[0].collections) == 6  # a band per mode
    assert {ax.get_title(loc="right") for ax in figures[1].axes} == {"Architecture 18*18", "Architecture 4*2"}
    for source, message in (
        (published.results("trials_convergence"), "no per-trial rows"),
        (tmp_path / "absent.md", "does not exist"),
    ):
        with pytest.raises(SystemExit):
            main(
                [
                    "make-convergence-plots",
                    "--spread",
                    "--convergence-file",
                    str(source),
                    "--output-dir",
                    str(tmp_path),
                    "--zeror",
                    "11.02",
                ]
            )
        assert message in capsys.readouterr().err


def test_study_semantics_from_per_trial_rows():
    rows = [
        SeriesRow("4*4", "full", 1, [10.0, 30.0, 20.0], None),
        SeriesRow("4*4", "full", 2, [12.0, 25.0, 28.0], 90.0),
        SeriesRow("4*4", "none", None, [11.0, 11.0, 11.0], None),
    ]
    made = {r.mode: r for r in study_rows(rows)}
    assert made["full"].values == [12.0, 30.0, 28.0] and made["full"].trial is None  # per-loop maximum
    assert made["none"] is rows[2]
    curves = [Curve("4*4", "full", 1, [10.0, 30.0, 20.0], [10.0, 30.0, 30.0], None)]
    assert study(curves)[0][0].values == study_rows(rows[:1])[0].values


def test_targets_breakthroughs_and_representatives():
    rows = read_series(published.results("trials_convergence"))
    regimes = regime_labels(published.results("trials"), 11.02)
    chosen = late_breakthroughs(rows, regimes)
    assert len(chosen) == 4 and {regimes[a] for a in chosen} == {"chaotic-optimization"}
    assert {regimes[a] for a in BREAKTHROUGHS} == {"chaotic-optimization"}
    assert [regimes[a] for a in TARGETS] == list(REGIMES)[:4]
    archs = [str(a) for a in read_configurations(published.CONFIGURATIONS)]
    assert representatives(archs, regimes) == list(TARGETS)
    # The first of each regime present, then the others in order: four at most.
    assert representatives(QUICK, regimes) == ["1*32", "17*4", "2*16", "4*17"]
    assert representatives(["1*4", "2*3", "3*2"], {a: "unknown" for a in ("1*4", "2*3", "3*2")}) == [
        "1*4",
        "2*3",
        "3*2",
    ]
    assert representatives(["4*4", "2*939", "64*1", "1*1"], regimes) == ["2*939", "4*4", "1*1", "64*1"]
    assert representatives(["1*4", "2*3"], {}) == ["1*4", "2*3"]


def test_spread_keeps_labels_apart_and_centred():
    assert spread([0.0, 5.0], [1.0, 1.0]) == [0.0, 5.0]
    assert spread([0.0, 0.1, 0.2], [1.0] * 3) == pytest.approx([-0.9, 0.1, 1.1])
    assert spread([0.0, 0.1], [1.0, 3.0]) == pytest.approx([-0.95, 1.05])  # half of each size apart


def test_missing_and_malformed_inputs(tmp_path, capsys):
    with pytest.raises(PSAError, match="absent.txt"):
        design_space_figure(tmp_path / "absent.txt", tmp_path / "x.png")
    bad = tmp_path / "c.md"
    bad.write_text(
        "| Architecture | Mode | Meta-Loop 1 | Final Test |\n|---|---|---|---|\n| 4x4 | full | 9..1 | N/A |\n"
    )
    for source, targets in ((bad, "4*4"), (published.results("trials_convergence"), "3*5")):
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "make-convergence-plots",
                    "--loop-max",
                    "--convergence-file",
                    str(source),
                    "--output-dir",
                    str(tmp_path),
                    "--zeror",
                    "11.02",
                    "--targets",
                    targets,
                ]
            )
        assert exit_info.value.code == 2
    errors = capsys.readouterr().err
    assert "c.md:3:" in errors and "no rows for 3*5" in errors
    assert not list(tmp_path.glob("*.png"))
    with pytest.raises(PSAError, match="none.md"):
        heatmaps.heatmap_figures(published.CONFIGURATIONS, tmp_path / "none.md", tmp_path, zeror=11.02)
    assert plt.get_fignums() == []


@pytest.mark.slow
def test_the_regime_map_rings_fragile_regimes_and_leaves_out_absent_architectures(tmp_path, capsys):
    from psa.study.figures.heatmaps import heatmap_figures

    plain, ringed = tmp_path / "plain", tmp_path / "ringed"
    regimes = lambda folder: (folder / "SimpleMLP_Heatmap_Regimes.png").read_bytes()  # noqa: E731
    heatmap_figures(published.CONFIGURATIONS, published.results("trials"), plain, zeror=11.02)
    heatmap_figures(published.CONFIGURATIONS, published.results("trials"), ringed, zeror=11.02, bootstrap=50)
    assert regimes(plain) != regimes(ringed)
    assert (plain / "SimpleMLP_Heatmap_Baseline_Performance.png").read_bytes() == (
        ringed / "SimpleMLP_Heatmap_Baseline_Performance.png"
    ).read_bytes()  # only the regime map changes
    some = {
        arch: by_mode
        for arch, by_mode in read_trials(published.results("trials")).items()
        if arch in ("1*32", "2*16", "4*17")
    }
    write_trials(tmp_path / "quick.md", some, "simplemlp")
    capsys.readouterr()
    assert len(heatmap_figures(published.CONFIGURATIONS, tmp_path / "quick.md", tmp_path / "quick", zeror=11.02)) == 6
    assert "95 of the 98 architectures" in capsys.readouterr().err


def test_convergence_draws_the_papers_best_trial_by_default(tmp_path, figures):
    """Each mode's one trial with the highest peak, from the per-trial export; not the loop maximum."""
    table = tmp_path / "per_trial.md"
    rows = [
        SeriesRow(arch, mode, trial, values, None)
        for arch in ("18*18", "4*2")
        for mode in MODES
        for trial, values in ((1, [10.0, 40.0, 20.0]), (2, [30.0, 35.0, 39.0]))
    ]
    write_series(table, rows, "convergence", "simplemlp")
    args = [
        "--output-dir",
        str(tmp_path),
        "--zeror",
        "11.02",
        "--targets",
        "18*18,4*2",
        "--breakthrough-targets",
        "4*2",
    ]
    main(["make-convergence-plots", "--convergence-file", str(table), *args])
    for fig in figures:
        assert RULES["best-trial"] in texts(fig)
        assert list(fig.axes[0].get_lines()[MODES.index("output")].get_ydata()) == [10.0, 40.0, 20.0]
    figures.clear()
    main(["make-convergence-plots", "--loop-max", "--convergence-file", str(table), *args])
    assert list(figures[0].axes[0].get_lines()[0].get_ydata()) == [30.0, 40.0, 39.0]


def test_convergence_from_the_original_studys_logs(tmp_path, figures, fixtures):
    logs = fixtures / "original-logs"
    main(["make-convergence-plots", "--logs", str(logs), "--output-dir", str(tmp_path), "--zeror", "11.02",
          "--targets", "1*4", "--breakthrough-targets", "1*4"])  # fmt: skip
    text = next(logs.rglob("*.log")).read_text()
    first_run = [float(v) for v in re.findall(r"Current: ([\d.]+)%", text)][:100]  # its peak is the higher
    assert list(figures[0].axes[0].get_lines()[0].get_ydata()) == first_run
    assert [ax.get_title(loc="right") for ax in figures[0].axes] == ["Architecture 1*4"]
