"""The convergence and LKG-growth tables (docs/DESIGN.md section 6), read, written and made.

The study's tables hold one row per architecture and mode, made from all the trials of the cell
together: the convergence value of meta-loop k is the maximum over the trials of their loop-k
validation accuracy, and the LKG growth of loop k is M(k) - M(k-1), M(k) being the maximum over
the trials of their loop-k LKG (0 for loop 1). So a study row is not one trial; psa writes each
trial's own series into separate `..._per_trial` tables, whose rows carry a trial number; from those,
the paper's convergence figure draws each cell's best trial (`best_trials`)."""

from dataclasses import dataclass
from pathlib import Path

from psa.errors import PSAError
from psa.files import write_text
from psa.study import tables
from psa.trial.architecture import Architecture

INTROS = {
    "convergence": (
        "Convergence Analysis",
        ["This table shows the validation accuracy per meta-loop for each architecture and ablation mode."],
    ),
    "lkg_growth": (
        "LKG Growth Analysis",
        [
            "This table shows the Last Known Good (LKG) growth per meta-loop for each architecture and ablation mode.",
            "Values represent the improvement in validation accuracy from the previous LKG (0.0 if no improvement).",
        ],
    ),
}
PER_TRIAL = (
    "One row per trial (the study's tables hold one row per architecture and mode, the maximum over its trials)."
)
STUDY_ROWS = (
    "Each value is the maximum over the trials of the architecture and mode at that meta-loop "
    "(docs/DESIGN.md section 6)."
)


@dataclass
class SeriesRow:
    arch: str
    mode: str
    trial: int | None  # 1-based; None for a study row (all the trials of the cell)
    values: list[float | None]  # one per meta-loop
    final_test: float | None


@dataclass
class Curve:
    """One trial's meta-loops: what both kinds of table are made from."""

    arch: str
    mode: str
    trial: int  # 1-based
    scores: list[float]  # validation accuracy of each loop's candidate
    lkgs: list[float]  # the LKG's score after each loop
    final_test: float | None


def per_trial(curves: list[Curve]) -> tuple[list[SeriesRow], list[SeriesRow]]:
    """Convergence and LKG-growth rows of every trial on its own."""
    convergence = [SeriesRow(c.arch, c.mode, c.trial, list(c.scores), c.final_test) for c in curves]
    growth = [SeriesRow(c.arch, c.mode, c.trial, _growth(c.lkgs), c.final_test) for c in curves]
    return convergence, growth


def study(curves: list[Curve]) -> tuple[list[SeriesRow], list[SeriesRow]]:
    """The study's rows: per architecture and mode (in order of first appearance), the maximum
    over its trials of each loop's score, and the growth of the maximum LKG. A loop counts the
    trials that reached it; Final Test is the best of the trials' test accuracies."""
    cells: dict[tuple[str, str], list[Curve]] = {}
    for curve in curves:
        cells.setdefault((curve.arch, curve.mode), []).append(curve)
    convergence, growth = [], []
    for (arch, mode), members in cells.items():
        tests = [c.final_test for c in members if c.final_test is not None]
        final = max(tests) if tests else None
        convergence.append(SeriesRow(arch, mode, None, _loop_max([c.scores for c in members]), final))
        growth.append(SeriesRow(arch, mode, None, _growth(_loop_max([c.lkgs for c in members])), final))
    return convergence, growth


def study_rows(rows: list[SeriesRow]) -> list[SeriesRow]:
    """The study rows of a table read back: its rows without a trial number as they are, and for
    the cells it gives only per trial, the per-loop maximum over those trials (as `study`)."""
    present = [row for row in rows if row.trial is None]
    known = {(row.arch, row.mode) for row in present}
    cells: dict[tuple[str, str], list[SeriesRow]] = {}
    for row in rows:
        if row.trial is not None and (row.arch, row.mode) not in known:
            cells.setdefault((row.arch, row.mode), []).append(row)
    made = []
    for (arch, mode), members in cells.items():
        tests = [row.final_test for row in members if row.final_test is not None]
        made.append(
            SeriesRow(arch, mode, None, _loop_max([row.values for row in members]), max(tests) if tests else None)
        )
    return present + made


def best_trials(rows: list[SeriesRow]) -> list[SeriesRow]:
    """Per architecture and mode (in order of first appearance), the one trial whose validation
    accuracy peaked highest, the first of them on a tie: what the paper's convergence figure draws."""
    best: dict[tuple[str, str], SeriesRow] = {}
    for row in rows:
        cell = (row.arch, row.mode)
        if row.trial is not None and (cell not in best or _peak(row) > _peak(best[cell])):
            best[cell] = row
    return list(best.values())


def _peak(row: SeriesRow) -> float:
    return max((v for v in row.values if v is not None), default=float("-inf"))


def _loop_max(series: list[list[float | None]]) -> list[float | None]:
    """Each loop's maximum over the series that have a value there (None where none has)."""
    return [
        max((s[k] for s in series if k < len(s) and s[k] is not None), default=None)
        for k in range(max(map(len, series)))
    ]


def _growth(lkgs: list[float]) -> list[float]:
    """Rise of the LKG over the previous loop's; the first loop has no previous LKG: 0."""
    return [0.0] + [max(now - before, 0.0) for before, now in zip(lkgs, lkgs[1:])]


def read_series(path: Path | str) -> list[SeriesRow]:
    path = Path(path)
    rows: list[SeriesRow] = []
    width, has_trial = None, False
    for number, line in enumerate(tables.lines(path), start=1):
        text = line.strip()
        if not text.startswith("|"):
            continue  # title and intro prose
        cells = tables.cells(text)
        if width is None:
            has_trial = cells[2:3] == ["Trial"]
            loops = cells[2 + has_trial : -1]
            if (
                cells[:2] != ["Architecture", "Mode"]
                or cells[-1] != "Final Test"
                or not all(c.startswith("Meta-Loop") for c in loops)
            ):
                raise tables.error(
                    path,
                    number,
                    "expected a header '| Architecture | Mode | [Trial |] Meta-Loop 1 | ... | Final Test |'",
                )
            width = len(cells)
        elif not tables.is_separator(text):
            if len(cells) != width:
                raise tables.error(path, number, f"expected {width} cells like the header, found {len(cells)}")
            trial = None
            if has_trial and cells[2] != "N/A":
                if not cells[2].isdigit():
                    raise tables.error(path, number, f"expected a trial number or N/A, found {cells[2]!r}")
                trial = int(cells[2])
            values = [tables.value(cell, path, number) for cell in cells[2 + has_trial : -1]]
            rows.append(
                SeriesRow(
                    tables.arch(cells[0], path, number),
                    tables.mode(cells[1], path, number),
                    trial,
                    values,
                    tables.value(cells[-1], path, number),
                )
            )
    if width is None:
        raise PSAError(f"{path}: no '| Architecture | Mode | ...' table: not a convergence or LKG growth table")
    return rows


def write_series(path: Path | str, rows: list[SeriesRow], kind: str, family: str, settings: dict | None = None) -> None:
    if kind not in INTROS:
        raise PSAError(f"unknown series kind {kind!r}: choose convergence or lkg_growth")
    heading, intro = INTROS[kind]
    loops = max((len(row.values) for row in rows), default=0)
    has_trial = any(row.trial is not None for row in rows)
    header = (
        ["Architecture", "Mode"]
        + ["Trial"] * has_trial
        + [f"Meta-Loop {i}" for i in range(1, loops + 1)]
        + ["Final Test"]
    )
    separator = ["-------------", "------"] + ["-------"] * has_trial + ["---"] * loops + ["------------"]
    lines = [
        f"# PSA {tables.title(family)} Trials - {heading}",
        "",
        *intro,
        # psa's exports (with settings) say how a row was made; the study's own tables stay as published.
        *([PER_TRIAL] if has_trial else [STUDY_ROWS] if settings else []),
        "",
        *tables.settings_lines(settings),
        "| " + " | ".join(header) + " |",
        "|" + "|".join(separator) + "|",
    ]
    for row in rows:
        # The published tables spell architectures as in job names ('18x18').
        cells = [Architecture.parse(row.arch).job_token, row.mode]
        if has_trial:
            cells.append("N/A" if row.trial is None else str(row.trial))
        values = row.values + [None] * (loops - len(row.values))
        cells += [tables.percent(v, "") for v in values] + [tables.percent(row.final_test, "")]
        lines.append("| " + " | ".join(cells) + " |")
    write_text(path, "\n".join(lines) + "\n")
