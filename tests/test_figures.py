import matplotlib.pyplot as plt
import pytest
from PIL import Image

from psa import PSAError, published
from psa.architecture import read_configurations
from psa.cli import main
from psa.figures import DPI
from psa.figures.convergence import best_rows, late_breakthroughs, lkg_curve
from psa.figures.heatmaps import uniform_parameter_count
from psa.figures.space import MAP_SIZE, design_space_figure, spread
from psa.topology import parameter_count
from psa.series import SeriesRow, read_series


def assert_png(path, size_inches):
    assert path.stat().st_size > 50_000
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (round(size_inches[0] * DPI), round(size_inches[1] * DPI))
        assert round(image.info["dpi"][0]) == DPI


def test_design_space(tmp_path):
    main(["make-design-space-figure", "--config-file", str(published.CONFIGURATIONS),
          "--output-file", str(tmp_path / "ds.png")])
    assert_png(tmp_path / "ds.png", MAP_SIZE)
    assert plt.get_fignums() == []  # every figure released


def test_heatmaps(tmp_path):
    main(["make-figure-heatmaps", "--config-file", str(published.CONFIGURATIONS),
          "--trials-file", str(published.results("trials")), "--output-dir", str(tmp_path),
          "--zeror", "11.02"])
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == sorted(f"SimpleMLP_Heatmap_{n}.png" for n in (
        "Baseline_Performance", "Ablation_Effects", "Instability", "Winning_Strategy", "Parameter_Matching", "Regimes"))
    for name in names:
        assert_png(tmp_path / name, MAP_SIZE)
    assert plt.get_fignums() == []


def test_convergence_plots(tmp_path):
    main(["make-convergence-plots", "--convergence-file", str(published.results("trials_convergence")),
          "--trials-file", str(published.results("trials")), "--output-dir", str(tmp_path),
          "--zeror", "11.02", "--targets", "1*1024,18x18"])
    assert_png(tmp_path / "SimpleMLP_Plot_Convergence.png", (10, 7.2))
    assert_png(tmp_path / "SimpleMLP_Plot_Late_Breakthrough.png", (12, 7.6))
    assert plt.get_fignums() == []


def test_best_trial_and_lkg_with_a_trial_column():
    rows = [SeriesRow("4*4", "full", 1, [10.0, 30.0, 20.0], None), SeriesRow("4*4", "full", 2, [10.0, 25.0, 28.0], None)]
    assert best_rows(rows, "4*4")["full"].trial == 1  # highest peak, not highest final score
    assert list(lkg_curve(rows[1])) == [10.0, 25.0, 28.0] and list(lkg_curve(rows[0])) == [10.0, 30.0, 30.0]


def test_late_breakthroughs_are_chaotic_architectures():
    chosen = late_breakthroughs(read_series(published.results("trials_convergence")))
    assert len(chosen) == 4 and all(arch.split("*")[0] == arch.split("*")[1] for arch in chosen)


def test_spread_keeps_labels_apart_and_centred():
    assert spread([0.0, 5.0], 1.0) == [0.0, 5.0]
    assert spread([0.0, 0.1, 0.2], 1.0) == pytest.approx([-0.9, 0.1, 1.1])


def test_closed_form_parameter_count_matches_the_models():
    for family in ("simplemlp", "resmlp"):
        for arch in read_configurations(published.CONFIGURATIONS):
            if arch.widths[0] != 784:
                assert uniform_parameter_count(arch.widths[0], arch.depth, family) == parameter_count(arch, family)


def test_missing_and_malformed_inputs(tmp_path, capsys):
    with pytest.raises(PSAError, match="absent.txt"):
        design_space_figure(tmp_path / "absent.txt", tmp_path / "x.png")
    bad = tmp_path / "c.md"
    bad.write_text("| Architecture | Mode | Meta-Loop 1 | Final Test |\n|---|---|---|---|\n| 4x4 | full | 9..1 | N/A |\n")
    for source, targets in ((bad, "4*4"), (published.results("trials_convergence"), "3*5")):
        with pytest.raises(SystemExit) as exit_info:
            main(["make-convergence-plots", "--convergence-file", str(source), "--output-dir", str(tmp_path),
                  "--zeror", "11.02", "--targets", targets])
        assert exit_info.value.code == 2
    errors = capsys.readouterr().err
    assert "c.md:3:" in errors and "no rows for 3*5" in errors
    assert not list(tmp_path.glob("*.png"))
