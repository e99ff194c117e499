import json

from psa import published
from psa.cli import main
from psa.regimes import Thresholds, calculate_summary_metrics, classify_regime, get_all_regime_classifications
from psa.results import ModeStats

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
    regimes = get_all_regime_classifications(
        published.CONFIGURATIONS, published.results("trials"), zeror=Z
    )
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
    from psa.results import read_trials

    stats = calculate_summary_metrics(read_trials(published.results("trials")))["1*2048"]
    assert round(stats["none"].mean, 2) == 98.25 and round(stats["output"].std, 2) == 0.12
