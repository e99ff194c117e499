import pytest

from psa import PSAError, published
from psa.cli import main
from psa.report import accuracy_table, architecture_table, winners
from psa.results import ModeStats, SummaryEntry, read_summary


def test_architecture_table():
    table = architecture_table(published.CONFIGURATIONS, published.ASYMMETRIC)
    assert "1*2048 & 1,628,170 & Matched \\\\" in table
    # TOOLS.md shows 939*2 with 1,629,175: that is 2*939; 939 layers of width 2 hold 7,228.
    assert "939*2 & 7,228 & Asymmetric \\\\" in table and "2*939 & 1,629,175 & Matched \\\\" in table
    assert table.count("Asymmetric \\\\") == 30 and table.count("Matched \\\\") == 68
    assert table.startswith("% needs \\usepackage{booktabs} and \\usepackage{longtable}\n\\begin{longtable}{lrl}")
    assert "\\endhead" in table and "\\bottomrule" in table  # the header repeats on every page


def test_ties_within_a_hundredth_share_the_win():
    stats = lambda mean: ModeStats(mean, 0.05, mean - 0.1, mean + 0.1, 10)  # noqa: E731
    entry = SummaryEntry("1*4", 3190, {"none": stats(98.33), "decay": stats(98.32), "full": stats(98.31)})
    assert winners(entry) == ["none", "decay"]
    table = accuracy_table({"1*4": entry}, ["1*4"], "Caption", "tab:x")
    assert "Tie: \\texttt{none}/\\texttt{decay}" in table
    assert "{\\boldmath$98.32 \\pm 0.05$}" in table and "& $98.31 \\pm 0.05$" in table
    assert "\\bfseries" not in table and "`" not in table
    assert "\\textbf{Architecture} & \\texttt{none} & \\texttt{decay} & \\texttt{full} & \\textbf{Winner}" in table
    assert "\\begin{tabular}{l l l l l}" in table  # only the modes present


def test_accuracy_table_on_the_published_summary():
    summary = read_summary(published.results("summary"))
    table = accuracy_table(summary, list(summary), "C", "tab:results_summary_stats")
    assert "1*2048 & {\\boldmath$98.25 \\pm 0.06$} & $98.21 \\pm 0.04$" in table
    assert "Tie: \\texttt{decay}/\\texttt{dropout}" in table  # 1*1024: 98.12 vs 98.11
    assert table.startswith("% needs \\usepackage{booktabs} and \\usepackage{graphicx}\n")
    assert "\\resizebox{\\textwidth}{!}{%" in table and table.count("\\\\\n") >= 98


def test_cli_options_and_errors(tmp_path, capsys):
    main(
        [
            "make-trial-accuracy-table",
            "--datafile",
            str(published.results("summary")),
            "--caption",
            "My caption",
            "--label",
            "tab:mine",
            "--output",
            str(tmp_path / "t.tex"),
        ]
    )
    text = (tmp_path / "t.tex").read_text()
    assert "\\caption{My caption}" in text and "\\label{tab:mine}" in text
    main(["make-architecture-table"])
    assert "1*2048 & 1,628,170 & Matched" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["make-trial-accuracy-table", "--datafile", str(tmp_path / "absent.md")])
    assert exit_info.value.code == 2 and "absent.md" in capsys.readouterr().err
    with pytest.raises(PSAError):
        architecture_table(tmp_path / "none.txt", published.ASYMMETRIC)
