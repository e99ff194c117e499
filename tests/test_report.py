import re

import pytest

from psa import published
from psa.cli import main
from psa.errors import PSAError
from psa.study.latex import accuracy_table, architecture_table, winners
from psa.study.results import ModeStats, SummaryEntry, read_summary
from psa.trial.architecture import read_configurations


def test_architecture_table():
    table = architecture_table(published.CONFIGURATIONS, published.ASYMMETRIC)
    assert "1*2048 & 1,628,170 & Matched \\\\" in table
    # TOOLS.md shows 939*2 with 1,629,175: that is 2*939; 939 layers of width 2 hold 7,228.
    assert "939*2 & 7,228 & Asymmetric \\\\" in table and "2*939 & 1,629,175 & Matched \\\\" in table
    assert table.count("Asymmetric \\\\") == 30 and table.count("Matched \\\\") == 68
    assert table.startswith("% needs \\usepackage{booktabs} and \\usepackage{longtable}\n\\begin{longtable}{lrl}")
    assert "\\endhead" in table and "\\bottomrule" in table  # the header repeats on every page


def stats(mean: float) -> ModeStats:
    return ModeStats(mean, 0.05, mean - 0.1, mean + 0.1, 10)


def test_ties_within_a_hundredth_share_the_win():
    entry = SummaryEntry("1*4", 3190, {"none": stats(10.44), "decay": stats(10.43), "full": stats(10.42)})
    assert winners(entry) == ["none", "decay"]
    table = accuracy_table({"1*4": entry}, ["1*4"], "Caption", "tab:x")
    assert "Tie: \\texttt{none}/\\texttt{decay}" in table
    assert "{\\boldmath$10.43 \\pm 0.05$}" in table and "& $10.42 \\pm 0.05$" in table
    assert "\\bfseries" not in table and "`" not in table
    # Every mode keeps its column, as in the paper; the summary lacks three.
    head = " & ".join(f"\\texttt{{{mode}}}" for mode in ("none", "decay", "dropout", "full", "hidden", "output"))
    assert f"\\textbf{{Architecture}} & {head} & \\textbf{{Winner}}" in table
    assert "& N/A & $10.42 \\pm 0.05$ & N/A & N/A &" in table and "\\begin{tabular}{l l l l l l l l}" in table


def test_a_tie_lost_to_rounding_is_the_originals_unless_tolerant():
    """98.12 - 98.11 is 0.010000000000005 in floating point: the original (and the paper) crown
    decay alone; psa's own rule allows for the rounding."""
    entry = SummaryEntry("1*1024", 814090, {"decay": stats(98.12), "dropout": stats(98.11)})
    assert winners(entry) == ["decay"] and winners(entry, tolerant=True) == ["decay", "dropout"]


def cells_of(row: str) -> tuple[str, list[tuple[str, bool]], list[str]]:
    """(architecture, (mean +- std, bold) per mode, winners) of a table row, psa's or the paper's."""
    cells = [cell.strip() for cell in row.removesuffix("\\\\").split(" & ")]
    numbers = [
        (" +- ".join(re.findall(r"[\d.]+", cell)) or "N/A", "\\bfseries" in cell or "\\boldmath" in cell)
        for cell in cells[1:-1]
    ]
    return cells[0].strip("$"), numbers, re.findall(r"\\texttt\{(\w+)\}", cells[-1])


def rows_of(table: str, first: str) -> list[str]:
    return [line.strip() for line in table.splitlines() if re.match(first, line.strip())]


def test_the_trial_accuracy_table_is_the_papers_row_for_row(fixtures):
    paper = rows_of((fixtures / "paper" / "table_trial_accuracy.tex").read_text(), r"\$\d+\*\d+\$ &")
    summary = read_summary(published.results("summary"))
    order = [str(arch) for arch in read_configurations(published.CONFIGURATIONS)]
    ours = rows_of(accuracy_table(summary, order, "C", "tab:x"), r"\d+\*\d+ &")
    assert len(paper) == len(ours) == 98
    assert [cells_of(row) for row in ours] == [cells_of(row) for row in paper]
    ties = [row for row in paper if "Tie:" in row]
    assert [cells_of(row)[0] for row in ties] == [cells_of(row)[0] for row in ours if "Tie:" in row]


def test_the_architecture_table_is_the_papers_row_for_row(fixtures):
    def rows(table: str) -> list[list[str]]:
        found = rows_of(table, r"\d+\*\d+ +&")
        return [[cell.strip() for cell in row.removesuffix("\\\\").split("&")] for row in found]

    paper = rows((fixtures / "paper" / "table_architectures.tex").read_text())
    ours = rows(architecture_table(published.CONFIGURATIONS, published.ASYMMETRIC))
    assert len(paper) == 98 and ours == paper
    assert [kind for *_, kind in ours].count("Asymmetric") == 30


def test_accuracy_table_on_the_published_summary():
    summary = read_summary(published.results("summary"))
    table = accuracy_table(summary, list(summary), "C", "tab:results_summary_stats")
    assert "1*2048 & {\\boldmath$98.25 \\pm 0.06$} & $98.21 \\pm 0.04$" in table
    assert "1*1024 & $98.09 \\pm 0.05$ & {\\boldmath$98.12 \\pm 0.03$} & $98.11 \\pm 0.07$" in table
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
    assert "Tie:" not in text.split("1*1024")[1].split("\n")[0]  # the original's strict rule
    main(["make-trial-accuracy-table", "--tolerant-ties", "--datafile", str(published.results("summary"))])
    assert "1*1024 &" in (out := capsys.readouterr().out)
    assert "Tie: \\texttt{decay}/\\texttt{dropout}" in out.split("1*1024")[1].split("\n")[0]
    main(["make-architecture-table"])
    assert "1*2048 & 1,628,170 & Matched" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["make-trial-accuracy-table", "--datafile", str(tmp_path / "absent.md")])
    assert exit_info.value.code == 2 and "absent.md" in capsys.readouterr().err
    with pytest.raises(PSAError):
        architecture_table(tmp_path / "none.txt", published.ASYMMETRIC)
