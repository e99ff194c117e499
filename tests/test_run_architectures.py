"""A run's own architectures in the analyses: every architecture that `psa reproduce`'s quick
profile or a ResMLP run trained appears in its regimes, heat maps and comparison, whether the
published study ran it or not."""

import json

import matplotlib.pyplot as plt
import pytest

from helpers import subset
from psa.cli import main
from psa.cli.reproduce import QUICK_ARCHS
from psa.store import Store
from psa.study.compare import compare_trials
from psa.study.export import export
from psa.study.figures import DPI, heatmaps
from psa.study.results import read_trials
from psa.study.study import open_study
from psa.sweeps.grid import train_grid
from psa.sweeps.settings import RunSettings
from psa.trial.architecture import Architecture
from psa.trial.spec import Hyper

QUICK = QUICK_ARCHS.split(",")  # 4*8 and 8*4 are not among the published 98
RESMLP = ["2*8", "[1*8, 2*8]"]


def exported(folder, mnist, archs: list[str], family: str):
    """The trials table of a tiny sweep of `archs` (every mode, two trials of two meta-loops on a
    slice of MNIST), exported into `folder` as `psa export` leaves it."""
    run = RunSettings(
        tuple(map(Architecture.parse, archs)), trials=2, meta_loops=2, family=family, hyper=Hyper(lr=2e-3)
    )
    store = Store(folder / "psa.sqlite")
    try:
        train_grid(store, run, "cpu", 2 << 30, subset(mnist, train=600, val=300))
        export(open_study(store.path), folder)
    finally:
        store.close()
    return folder / f"psa_{family}_trials.md"


@pytest.fixture(scope="module")
def quick(tmp_path_factory, mnist):
    return exported(tmp_path_factory.mktemp("quick"), mnist, QUICK, "simplemlp")


def test_the_quick_profiles_architectures_all_have_a_regime(quick, capsys):
    main(["regimes", "--zeror", "11.02", "--trials-file", str(quick), "--json"])
    captured = capsys.readouterr()
    assert list(json.loads(captured.out)) == QUICK and not captured.err
    main(["regimes", "--zeror", "11.02", "--trials-file", str(quick), "--json", "--config-file", "published"])
    captured = capsys.readouterr()
    assert sorted(json.loads(captured.out)) == sorted(QUICK)  # the published list orders; it drops nothing
    assert "95 of the 98 architectures" in captured.err and "left out: 1*2048, 1*1024" in captured.err


def test_the_quick_profiles_architectures_are_all_on_the_heat_maps(quick, tmp_path, monkeypatch):
    kept = []

    def keep(fig, path):
        kept.append(fig)
        fig.savefig(path, dpi=DPI, format="png")
        return path

    monkeypatch.setattr(heatmaps, "save", keep)
    heatmaps.heatmap_figures(None, quick, tmp_path, zeror=11.02)
    points = {(a.depth, max(a.widths)) for a in map(Architecture.parse, QUICK)}
    try:
        assert len(kept) == 6
        for fig in kept:
            drawn = {tuple(map(float, xy)) for c in fig.axes[0].collections for xy in c.get_offsets()}
            assert points <= drawn, fig._suptitle.get_text()
        assert {t.get_text() for t in kept[0].axes[0].texts} == set(QUICK)  # every one labelled
    finally:
        for fig in kept:
            plt.close(fig)


def test_the_quick_profiles_architectures_are_all_in_the_comparison(quick, tmp_path, capsys):
    ours = read_trials(quick)
    comparison = compare_trials(ours, ours, 11.02)
    assert list(comparison.regimes) == QUICK and not comparison.ours_only  # with itself
    (tmp_path / "order.txt").write_text("8*4\n3*3\n")
    comparison = compare_trials(ours, ours, 11.02, config_file=tmp_path / "order.txt", ours_file=quick)
    assert list(comparison.regimes) == ["8*4", "1*32", "2*16", "4*8", "16*2"]
    assert "left out: 3*3" in capsys.readouterr().err
    main(["compare", "--ours", str(quick), "--zeror", "11.02"])  # with the published study
    out = " ".join(capsys.readouterr().out.split())
    assert "of 3 architectures' regimes," in out and " agree," in out
    assert "not in the reference, so not compared (our regime): 4*8 (" in out and "), 8*4 (" in out
    assert "never run on our side: 95 of the reference's architectures: 1*2048, 1*1024" in out


def test_a_resmlp_runs_architectures_have_their_regimes(tmp_path, mnist, monkeypatch, capsys):
    (tmp_path / "results").mkdir()
    exported(tmp_path / "results", mnist, RESMLP, "resmlp")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()  # the sweep's progress
    main(["regimes", "--family", "resmlp", "--zeror", "11.02", "--json"])  # results/psa_resmlp_trials.md
    assert list(json.loads(capsys.readouterr().out)) == ["2*8", "1*8,2*8"]
