"""The LaTeX tables compile: both of them, from the published study, in a document whose preamble
loads exactly the packages each table's opening comment names."""

import re
import shutil
import subprocess

import pytest

from psa import published
from psa.study.latex import accuracy_table, architecture_table
from psa.study.results import read_summary

pytestmark = [
    pytest.mark.latex,
    pytest.mark.skipif(
        shutil.which("pdflatex") is None,
        reason="pdflatex is not installed (Debian: texlive-latex-base, texlive-latex-recommended)",
    ),
]


def packages(table: str) -> list[str]:
    needs = table.splitlines()[0]
    assert needs.startswith("% needs ")
    return re.findall(r"\\usepackage\{(\w+)\}", needs)


def test_both_tables_compile(tmp_path):
    summary = read_summary(published.results("summary"))
    tables = [
        architecture_table(published.CONFIGURATIONS, published.ASYMMETRIC),
        accuracy_table(summary, list(summary), "Mean Peak Accuracy (\\%)", "tab:results_summary_stats"),
    ]
    wanted = sorted({package for table in tables for package in packages(table)})
    assert wanted == ["booktabs", "graphicx", "longtable"]
    document = "\n".join(
        [
            r"\documentclass{article}",
            *(f"\\usepackage{{{p}}}" for p in wanted),
            r"\begin{document}",
            *tables,
            r"\end{document}",
        ]
    )
    (tmp_path / "tables.tex").write_text(document)
    # Twice, as for any document: longtable settles its column widths on the second run.
    for _ in range(2):
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 10_000
    log = (tmp_path / "tables.log").read_text(errors="replace")
    # A float taller than the page, or a font shape substituted (bold typewriter, say), still
    # compiles: only the log tells.
    assert "Float too large" not in log and "Font Warning" not in log
