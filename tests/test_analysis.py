from psa.cli import main
from psa.study.dataset import analyze_mnist


def test_zeror_baselines_match_the_study():
    analysis = analyze_mnist()
    assert [round(s.zeror, 2) for s in analysis.splits] == [11.24, 11.35, 11.28, 11.02]
    assert [s.size for s in analysis.splits] == [60000, 10000, 50000, 10000]
    assert all(s.zeror_class == 1 for s in analysis.splits)
    assert analysis.validation.counts[1] == 1102


def test_cli_prints_the_summary(capsys):
    main(["analyze-dataset"])
    out = capsys.readouterr().out
    for value in ("11.24%", "11.35%", "11.28%", "11.02%", "Split Validation"):
        assert value in out
