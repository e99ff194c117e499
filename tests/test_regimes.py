import json

import numpy as np

from psa import published
from psa.cli import main
from psa.study.regimes import (
    Thresholds,
    apply_rules,
    calculate_summary_metrics,
    classify_grid,
    classify_regime,
    get_all_regime_classifications,
    stability,
)
from psa.study.results import ModeStats, read_trials, write_trials
from psa.trial.architecture import read_configurations
from psa.trial.modes import MODES

Z = 11.02


def metrics(**means):
    """One architecture 'a*1' whose modes have the given means (std 0.1, max mean+0.2)."""
    return {"1*1": {m: ModeStats(v, 0.1, v - 0.2, v + 0.2, 10) for m, v in means.items()}}


def six(none, decay, dropout, full, hidden, output):
    return metrics(none=none, decay=decay, dropout=dropout, full=full, hidden=hidden, output=output)


def test_rules_in_order():
    assert classify_regime("1x1", six(10, 10, 10, 10, 10, 10), Z) == "untrainable"
    assert classify_regime("1*1", six(98.0, 98.1, 98.2, 98.1, 98.15, 97.9), Z) == "beneficial-regularization"
    assert classify_regime("1*1", six(97.0, 97.1, 97.2, 95.0, 95.5, 94.0), Z) == "optimally-sized"
    assert classify_regime("1*1", six(10.5, 10.6, 10.7, 40.0, 30.0, 35.0), Z) == "chaotic-optimization"
    assert classify_regime("1*1", metrics(none=98.0), Z) == "unknown"
    assert classify_regime("9*9", six(*[98.0] * 6), Z) == "unknown"  # not in the metrics


def test_thresholds_are_parameters():
    # Ablative means 0.6 above the baselines: beyond e = 0.5, within a wider min_spread of 1.
    case = six(90.0, 90.0, 90.0, 90.6, 90.6, 90.6)
    assert classify_regime("1*1", case, Z) == "chaotic-optimization"
    assert classify_regime("1*1", case, Z, Thresholds(min_spread=1.0)) == "beneficial-regularization"
    assert classify_regime("1*1", six(*[20.0] * 6), zeror=25.0) == "untrainable"


def test_all_published_architectures_are_classified():
    regimes = get_all_regime_classifications(published.CONFIGURATIONS, published.results("trials"), zeror=Z)
    assert len(regimes) == 98 and "unknown" not in regimes.values()
    assert regimes["1*2048"] == "beneficial-regularization"
    assert regimes["115*115"] == "untrainable" and regimes["18*18"] == "chaotic-optimization"
    assert regimes["1*64"] == "optimally-sized"


def test_cli_json_with_zeror_from_mnist(capsys):
    main(["regimes", "--json", "--trials-file", str(published.results("trials"))])
    regimes = json.loads(capsys.readouterr().out)
    assert len(regimes) == 98 and regimes["4*4"] == "optimally-sized"


def test_cli_table_groups_by_regime(capsys):
    main(["regimes", "--zeror", "11.02", "--trials-file", str(published.results("trials"))])
    out = capsys.readouterr().out
    assert "Untrainable" in out and "Chaotic Optimization" in out and "Unknown" not in out


def test_summary_metrics_cover_all_modes():
    stats = calculate_summary_metrics(read_trials(published.results("trials")))["1*2048"]
    assert round(stats["none"].mean, 2) == 98.25 and round(stats["output"].std, 2) == 0.12


# ---------------------------------------------------------------------------------------------
# Bootstrap stability, and trials files that hold only part of the grid.


def published_trials():
    return read_trials(published.results("trials"))


def test_the_rules_on_a_stack_match_them_one_by_one():
    rng = np.random.default_rng(5)
    # Anywhere, near one another, and near ZeroR.
    mean = np.concatenate(
        [rng.uniform(5, 99, (300, 6)), 95 + rng.normal(0, 0.6, (300, 6)), rng.uniform(8, 11, (100, 6))]
    )
    std, top = rng.uniform(0, 20, mean.shape), mean + rng.uniform(-1, 3, mean.shape)
    stacked = apply_rules(mean, std, top, Z)
    for row in range(len(mean)):
        stats = {"1*1": {m: ModeStats(mean[row, i], std[row, i], 0.0, top[row, i], 10) for i, m in enumerate(MODES)}}
        assert stacked[row] == classify_regime("1*1", stats, Z)
    assert len(set(stacked)) == 5  # every rule, and none, was exercised


def test_bootstrap_stability_of_the_published_study():
    trials = published_trials()
    shares = stability(trials, Z, 1000, seed=0)
    assert len(shares) == 98 and all(0 <= share <= 1 for share in shares.values())
    # Far from every threshold: all trials at ZeroR, or the ablations far behind the baselines.
    assert shares["115*115"] == shares["2048*1"] == shares["1*64"] == shares["1*2048"] == 1.0
    assert shares["2*214"] < 0.6  # its ablative and baseline means nearly meet
    assert sum(share >= 0.9 for share in shares.values()) >= 75
    assert stability(trials, Z, 1000, seed=0) == shares
    assert stability(trials, Z, 1000, seed=1) != shares
    # Each architecture keys its own draws: a share doesn't depend on the others present.
    assert stability({"2*214": trials["2*214"]}, Z, 1000, seed=0) == {"2*214": shares["2*214"]}
    assert set(stability(trials, Z, 1, seed=3).values()) == {0.0, 1.0}


def test_a_missing_mode_stays_unknown_in_every_resample():
    trials = {"1*8": {m: v for m, v in published_trials()["1*8"].items() if m != "output"}}
    assert classify_grid(read_configurations(published.CONFIGURATIONS), trials, Z) == {"1*8": "unknown"}
    assert stability(trials, Z, 50) == {"1*8": 1.0}


def test_cli_bootstrap(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # rich wraps a table's text to the terminal's width
    trials = str(published.results("trials"))
    main(["regimes", "--zeror", "11.02", "--trials-file", trials, "--bootstrap", "200", "--seed", "7", "--json"])
    verdicts = json.loads(capsys.readouterr().out)
    assert len(verdicts) == 98 and verdicts["1*2048"] == {"regime": "beneficial-regularization", "stability": 1.0}
    assert verdicts["2*214"]["stability"] == stability(published_trials(), Z, 200, seed=7)["2*214"]
    main(["regimes", "--zeror", "11.02", "--trials-file", trials, "--bootstrap", "100"])
    out = capsys.readouterr().out
    assert "Stable (>= 90%)" in out and "115*115 (100%)" in out and "100 bootstrap resamples" in out


def test_the_trials_architectures_are_classified_in_the_configurations_order(tmp_path, capsys):
    some = {
        arch: by_mode for arch, by_mode in published_trials().items() if arch in ("1*32", "2*16", "4*17", "8*8", "16*2")
    }
    write_trials(tmp_path / "quick.md", some, "simplemlp")
    quick = ["regimes", "--zeror", "11.02", "--trials-file", str(tmp_path / "quick.md")]
    main([*quick, "--json"])  # no configurations file: by depth and width, and nothing to leave out
    captured = capsys.readouterr()
    assert list(json.loads(captured.out)) == ["1*32", "2*16", "4*17", "8*8", "16*2"] and not captured.err
    # The published list only when asked for: it orders them, and the 93 never run are named.
    (tmp_path / "two.txt").write_text("3*3\n8*8\n")
    regimes = get_all_regime_classifications(tmp_path / "two.txt", tmp_path / "quick.md", zeror=Z)
    assert list(regimes) == ["8*8", "1*32", "2*16", "4*17", "16*2"] and "unknown" not in regimes.values()
    assert "1 of the 2 architectures" in capsys.readouterr().err
    main([*quick, "--json", "--config-file", "published"])
    captured = capsys.readouterr()
    assert json.loads(captured.out) == regimes
    assert "93 of the 98 architectures" in captured.err and "left out: 1*2048, 1*1024, 1*512" in captured.err
    assert len(captured.err.strip().splitlines()) == 1  # one line, however many
    main(quick)
    assert "Unknown" not in capsys.readouterr().out
