"""The study's markdown result files (docs/DESIGN.md section 5), read and written. The published files
and the project's own exports go through these same functions, so every analysis tool accepts
either. Architecture keys are always the configuration spelling "L*W", mode keys lowercase."""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psa import PSAError
from psa.architecture import FAMILY_TITLES, Architecture, check_family
from psa.files import read_text, write_text
from psa.modes import MODES
from psa.topology import parameter_count

Trials = dict[str, dict[str, list[float | None]]]  # arch -> mode -> bounty per trial (None = N/A)

MODE_TITLES = {mode: mode.capitalize() for mode in MODES}  # "None", "Decay", ... as in the tables
NO_TRIALS = "No successful trials found for this architecture."
FAILED = "FAILED_OR_INCOMPLETE"
SERIES_INTROS = {
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
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SHAPE = re.compile(r"Results Shape \{(.+?)\} Parameters \{(\d+)\}")
_STATS = re.compile(
    rf"\* (\w+): (?:{FAILED}|Mean={_NUMBER}% \| Std={_NUMBER}% \| Min={_NUMBER}% \| Max={_NUMBER}% \(n=(\d+)\))"
)


def default_path(kind: str, family: str, results_dir: Path | str = "results") -> Path:
    """results/psa_<family>_<kind>.md, kind one of trials, summary, trials_convergence, trials_lkg_growth."""
    return Path(results_dir) / f"psa_{family}_{kind}.md"


def arch_key(text: str) -> str:
    """Any spelling ('1024x1', '1*1024', job token '4x4_2x8') as the configuration key '1024*1'."""
    return str(Architecture.parse(text.replace("_", ",")))


# ---------------------------------------------------------------------------------------------
# Reading helpers: every complaint names the file and the line.


def _lines(path: Path) -> list[str]:
    return read_text(path, "results file").splitlines()


def _error(path: Path, number: int, message: str) -> PSAError:
    return PSAError(f"{path}:{number}: {message}")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _is_separator(line: str) -> bool:
    # Any mix of '|', ':', '-' counts, so the published "|:-----::----:|..." row is accepted.
    return set(line.strip()) <= set("|:- ") and "-" in line


def _value(cell: str, path: Path, number: int) -> float | None:
    if cell == "N/A":
        return None
    try:
        return float(cell.removesuffix("%"))
    except ValueError:
        raise _error(path, number, f"expected a number like 98.22% or N/A, found {cell!r}") from None


def _arch(text: str, path: Path, number: int) -> str:
    try:
        return arch_key(text)
    except PSAError as error:
        raise _error(path, number, str(error)) from None


def _mode(title: str, path: Path, number: int) -> str:
    mode = title.lower()
    if mode not in MODES:
        raise _error(path, number, f"unknown mode {title!r}: expected one of {', '.join(MODE_TITLES.values())}")
    return mode


# ---------------------------------------------------------------------------------------------
# Writing helpers.


def _percent(value: float | None, suffix: str = "%") -> str:
    return "N/A" if value is None else f"{value:.2f}{suffix}"


def _title(family: str) -> str:
    return FAMILY_TITLES[check_family(family)]


# ---------------------------------------------------------------------------------------------
# psa_<family>_trials.md


def read_trials(path: Path | str) -> Trials:
    path = Path(path)
    trials: Trials = {}
    arch, columns = None, None
    for number, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if text.startswith("### Architecture:"):
            arch, columns = _arch(text.split(":", 1)[1], path, number), None
            if arch in trials:
                raise _error(path, number, f"architecture {arch} appears twice")
            trials[arch] = {}
        elif not text.startswith("|"):
            continue  # titles, blank lines and the "no successful trials" note
        elif arch is None:
            raise _error(path, number, "table row before any '### Architecture:' heading")
        elif columns is None:
            header = _cells(text)
            if header[0] != "Trial":
                raise _error(path, number, f"expected a header row '| Trial | None | ... |', found {text!r}")
            columns = [_mode(title, path, number) for title in header[1:]]
            trials[arch] = {mode: [] for mode in columns}
        elif not _is_separator(text):
            cells = _cells(text)
            if len(cells) != len(columns) + 1 or not cells[0].isdigit():
                raise _error(path, number, f"expected '| <trial> |' and {len(columns)} values, found {text!r}")
            for mode, cell in zip(columns, cells[1:]):
                trials[arch][mode].append(_value(cell, path, number))
    if not trials:
        raise PSAError(f"{path}: no '### Architecture:' blocks: not a trials table")
    return trials


def write_trials(path: Path | str, trials: Trials, family: str) -> None:
    lines = [f"# Persistent Stochastic Ablation - {_title(family)} Raw Trial Data", "", "## Raw Trial Data", ""]
    for arch, by_mode in trials.items():
        lines += [f"### Architecture: {arch_key(arch)}", ""]
        count = max((len(values) for values in by_mode.values()), default=0)
        if count == 0:
            lines += [NO_TRIALS, ""]
            continue
        lines.append("| Trial | " + " | ".join(MODE_TITLES[m] for m in MODES) + " |")
        lines.append("|:-----:|" + ":----:|" * len(MODES))
        for index in range(count):
            row = [by_mode.get(mode, [])[index] if index < len(by_mode.get(mode, [])) else None for mode in MODES]
            lines.append(f"| {index + 1} | " + " | ".join(_percent(v) for v in row) + " |")
        lines.append("")
    write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# psa_<family>_summary.md


@dataclass
class ModeStats:
    mean: float
    std: float  # population standard deviation
    min: float
    max: float
    n: int


def mode_stats(values: list[float | None]) -> ModeStats | None:
    """Statistics over the trials that produced a number; None when none did."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    # numpy's summation order reproduces every rounded mean of the published summaries; exact
    # summation (math.fsum, statistics.mean) differs at a dozen half-cent boundaries.
    array = np.asarray(present, dtype=np.float64)
    return ModeStats(float(array.mean()), float(array.std()), float(array.min()), float(array.max()), len(present))


@dataclass
class SummaryEntry:
    arch: str
    parameters: int
    modes: dict[str, ModeStats]  # modes without a result are absent


def read_summary(path: Path | str) -> dict[str, SummaryEntry]:
    path = Path(path)
    entries: dict[str, SummaryEntry] = {}
    current = None
    for number, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if text.startswith("Results Shape"):
            match = _SHAPE.fullmatch(text)
            if not match:
                raise _error(path, number, f"expected 'Results Shape {{L*W}} Parameters {{N}}', found {text!r}")
            current = SummaryEntry(_arch(match[1], path, number), int(match[2]), {})
            entries[current.arch] = current
        elif text.startswith("* "):
            match = _STATS.fullmatch(text)
            if not match:
                raise _error(path, number, f"expected '* Mode: Mean=..% | Std=..% | Min=..% | Max=..% (n=..)', found {text!r}")
            if current is None:
                raise _error(path, number, "mode line before any 'Results Shape' line")
            if match[2] is not None:
                mean, std, low, high = (float(match[i]) for i in range(2, 6))
                current.modes[_mode(match[1], path, number)] = ModeStats(mean, std, low, high, int(match[6]))
    if not entries:
        raise PSAError(f"{path}: no 'Results Shape' lines: not a summary file")
    return entries


def write_summary(path: Path | str, trials: Trials, family: str) -> None:
    lines = [f"# Persistent Stochastic Ablation - {_title(family)} Results Summary", "", "## Statistical Summary", ""]
    for arch, by_mode in trials.items():
        parameters = parameter_count(Architecture.parse(arch_key(arch)), family)
        lines.append(f"Results Shape {{{arch_key(arch)}}} Parameters {{{parameters}}}")
        for mode in MODES:
            stats = mode_stats(by_mode.get(mode, []))
            body = FAILED if stats is None else (
                f"Mean={stats.mean:.2f}% | Std={stats.std:.2f}% | Min={stats.min:.2f}% | Max={stats.max:.2f}% (n={stats.n})"
            )
            lines.append(f"* {MODE_TITLES[mode]}: {body}")
        lines.append("")
    write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# psa_<family>_trials_convergence.md and psa_<family>_trials_lkg_growth.md


@dataclass
class SeriesRow:
    arch: str
    mode: str
    trial: int | None  # 1-based; None in the published files, which hold one trial per row
    values: list[float | None]  # one per meta-loop
    final_test: float | None


def read_series(path: Path | str) -> list[SeriesRow]:
    path = Path(path)
    rows: list[SeriesRow] = []
    width, has_trial = None, False
    for number, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if not text.startswith("|"):
            continue  # title and intro prose
        cells = _cells(text)
        if width is None:
            has_trial = cells[2:3] == ["Trial"]
            loops = cells[2 + has_trial : -1]
            if cells[:2] != ["Architecture", "Mode"] or cells[-1] != "Final Test" or not all(
                c.startswith("Meta-Loop") for c in loops
            ):
                raise _error(path, number, "expected a header '| Architecture | Mode | [Trial |] Meta-Loop 1 | ... | Final Test |'")
            width = len(cells)
        elif not _is_separator(text):
            if len(cells) != width:
                raise _error(path, number, f"expected {width} cells like the header, found {len(cells)}")
            trial = None
            if has_trial and cells[2] != "N/A":
                if not cells[2].isdigit():
                    raise _error(path, number, f"expected a trial number or N/A, found {cells[2]!r}")
                trial = int(cells[2])
            values = [_value(cell, path, number) for cell in cells[2 + has_trial : -1]]
            rows.append(SeriesRow(_arch(cells[0], path, number), _mode(cells[1], path, number), trial, values,
                                  _value(cells[-1], path, number)))
    if width is None:
        raise PSAError(f"{path}: no '| Architecture | Mode | ...' table: not a convergence or LKG growth table")
    return rows


def write_series(path: Path | str, rows: list[SeriesRow], kind: str, family: str) -> None:
    if kind not in SERIES_INTROS:
        raise PSAError(f"unknown series kind {kind!r}: choose convergence or lkg_growth")
    heading, intro = SERIES_INTROS[kind]
    loops = max((len(row.values) for row in rows), default=0)
    has_trial = any(row.trial is not None for row in rows)
    header = ["Architecture", "Mode"] + ["Trial"] * has_trial + [f"Meta-Loop {i}" for i in range(1, loops + 1)] + ["Final Test"]
    separator = ["-------------", "------"] + ["-------"] * has_trial + ["---"] * loops + ["------------"]
    lines = [f"# PSA {_title(family)} Trials - {heading}", "", *intro, "",
             "| " + " | ".join(header) + " |", "|" + "|".join(separator) + "|"]
    for row in rows:
        # The published tables spell architectures as in job names ('18x18').
        cells = [Architecture.parse(arch_key(row.arch)).job_token, row.mode]
        if has_trial:
            cells.append("N/A" if row.trial is None else str(row.trial))
        values = row.values + [None] * (loops - len(row.values))
        cells += [_percent(v, "") for v in values] + [_percent(row.final_test, "")]
        lines.append("| " + " | ".join(cells) + " |")
    write_text(path, "\n".join(lines) + "\n")
