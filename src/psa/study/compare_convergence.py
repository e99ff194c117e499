"""Two studies' convergence compared at chosen meta-loops: each side's study rows (per architecture and
mode, each loop's maximum over its trials), so that a per-trial table compares with a study table
like for like, and the cells that differ most at each loop."""

from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from psa.study.series import SeriesRow, study_rows

DEFAULT_LOOPS = (1, 10, 25, 50, 100)  # and the last loop both sides ran

Curves = dict[tuple[str, str], list[float | None]]  # (arch, mode) -> value per meta-loop


def study_curves(rows: list[SeriesRow]) -> Curves:
    """The study row of every architecture and mode (psa.study.series.study_rows), so that a per-trial
    table compares with a study table like for like."""
    return {(row.arch, row.mode): row.values for row in study_rows(rows)}


def loops_run(curves: Curves) -> int:
    """The last meta-loop with a value in any row (shorter rows are padded with N/A)."""
    return max((k + 1 for values in curves.values() for k, v in enumerate(values) if v is not None), default=0)


@dataclass
class LoopComparison:
    loop: int
    cells: dict[tuple[str, str], tuple[float, float]]  # (arch, mode) -> (ours, reference)

    def differences(self) -> np.ndarray:
        return np.array([ours - reference for ours, reference in self.cells.values()])

    def largest(self, count: int = 3) -> list[tuple[tuple[str, str], tuple[float, float]]]:
        """The `count` cells that differ most (cells that agree are never listed)."""
        differing = [item for item in self.cells.items() if item[1][0] != item[1][1]]
        return sorted(differing, key=lambda item: -abs(item[1][0] - item[1][1]))[:count]


@dataclass
class ConvergenceComparison:
    ours_loops: int
    reference_loops: int
    loops: list[LoopComparison]
    beyond: list[int]  # loops asked for that one side never ran

    @property
    def length_note(self) -> str | None:
        if self.ours_loops == self.reference_loops:
            return None
        return (
            f"different run lengths: ours ran {self.ours_loops} meta-loops, the reference "
            f"{self.reference_loops}; convergence is compared at loops up to "
            f"{min(self.ours_loops, self.reference_loops)} "
            "only, and bounties come from runs of different length"
        )


def compare_convergence(
    ours: list[SeriesRow], reference: list[SeriesRow], loops: list[int] | None = None
) -> ConvergenceComparison:
    """The two sides' study rows at each chosen loop (default DEFAULT_LOOPS and the last common
    one), over the architecture/mode cells both have a value for; loops one side lacks are dropped."""
    mine, theirs = study_curves(ours), study_curves(reference)
    ours_loops, reference_loops = loops_run(mine), loops_run(theirs)
    common = min(ours_loops, reference_loops)
    wanted = sorted(set(loops or [loop for loop in DEFAULT_LOOPS if loop <= common] + [common]))
    compared = []
    for loop in [loop for loop in wanted if 1 <= loop <= common]:
        cells = {}
        for cell, values in theirs.items():
            ours_values = mine.get(cell, [])
            if loop <= min(len(values), len(ours_values)) and None not in (values[loop - 1], ours_values[loop - 1]):
                cells[cell] = (ours_values[loop - 1], values[loop - 1])
        compared.append(LoopComparison(loop, cells))
    return ConvergenceComparison(ours_loops, reference_loops, compared, [loop for loop in wanted if loop > common])


def report_convergence(comparison: ConvergenceComparison, console: Console) -> None:
    table = Table(
        title="Convergence: d = ours - reference, validation accuracy of the study rows "
        "(each loop's maximum over the trials)"
    )
    for column in ("Loop", "Cells", "Mean d", "Mean |d|", "Max |d|", "Largest |d|: ours vs reference"):
        table.add_column(column, justify="left" if column.startswith("Largest") else "right")
    for loop in comparison.loops:
        if not loop.cells:
            table.add_row(str(loop.loop), "0", "", "", "", "no cell on both sides")
            continue
        differences = loop.differences()
        largest = (
            "\n".join(
                f"{arch}/{mode} {ours:.2f} vs {reference:.2f}" for (arch, mode), (ours, reference) in loop.largest()
            )
            or "none differ"
        )
        table.add_row(
            str(loop.loop),
            str(len(loop.cells)),
            f"{differences.mean():+.2f}",
            f"{np.abs(differences).mean():.2f}",
            f"{np.abs(differences).max():.2f}",
            largest,
        )
    console.print(table)
    if comparison.beyond:
        console.print(
            f"[yellow]not compared:[/] loop {', '.join(map(str, comparison.beyond))}, beyond what both sides ran"
        )
