"""The study's trials and summary tables (docs/DESIGN.md section 6), read and written; psa.study.series
does the convergence and LKG-growth tables. The published files and psa's own exports go through
the same functions, so every analysis tool accepts either. Architecture keys are always the
configuration spelling "L*W", mode keys lowercase."""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psa.errors import PSAError
from psa.files import write_text
from psa.study import tables
from psa.trial.architecture import Architecture, arch_key
from psa.trial.modes import MODES
from psa.trial.topology import parameter_count

Trials = dict[str, dict[str, list[float | None]]]  # arch -> mode -> bounty per trial (None = N/A)

NO_TRIALS = "No successful trials found for this architecture."
FAILED = "FAILED_OR_INCOMPLETE"
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SHAPE = re.compile(r"Results Shape \{(.+?)\} Parameters \{(\d+)\}")
_STATS = re.compile(
    rf"\* (\w+): (?:{FAILED}|Mean={_NUMBER}% \| Std={_NUMBER}% \| Min={_NUMBER}% \| Max={_NUMBER}% \(n=(\d+)\))"
)


def default_path(kind: str, family: str, results_dir: Path | str = "results") -> Path:
    """results/psa_<family>_<kind>.md, kind e.g. trials, summary, trials_convergence."""
    return Path(results_dir) / f"psa_{family}_{kind}.md"


# ---------------------------------------------------------------------------------------------
# psa_<family>_trials.md


def modes_run(trials: Trials) -> tuple[str, ...]:
    """The modes any architecture has a bounty in, in the study's order: the columns of psa's tables
    (a study of fewer modes than the paper's is not a study with failed ones)."""
    present = {
        mode for by_mode in trials.values() for mode, values in by_mode.items() if any(v is not None for v in values)
    }
    return tuple(mode for mode in MODES if mode in present)


def read_trials(path: Path | str) -> Trials:
    path = Path(path)
    trials: Trials = {}
    arch, columns = None, None
    for number, line in enumerate(tables.lines(path), start=1):
        text = line.strip()
        if text.startswith("### Architecture:"):
            arch, columns = tables.arch(text.split(":", 1)[1], path, number), None
            if arch in trials:
                raise tables.error(path, number, f"architecture {arch} appears twice")
            trials[arch] = {}
        elif not text.startswith("|"):
            continue  # titles, blank lines and the "no successful trials" note
        elif arch is None:
            raise tables.error(path, number, "table row before any '### Architecture:' heading")
        elif columns is None:
            header = tables.cells(text)
            if header[0] != "Trial":
                raise tables.error(path, number, f"expected a header row '| Trial | None | ... |', found {text!r}")
            columns = [tables.mode(title, path, number) for title in header[1:]]
            trials[arch] = {mode: [] for mode in columns}
        elif not tables.is_separator(text):
            cells = tables.cells(text)
            if len(cells) != len(columns) + 1 or not cells[0].isdigit():
                raise tables.error(path, number, f"expected '| <trial> |' and {len(columns)} values, found {text!r}")
            for mode, cell in zip(columns, cells[1:]):
                trials[arch][mode].append(tables.value(cell, path, number))
    if not trials:
        raise PSAError(f"{path}: no '### Architecture:' blocks: not a trials table")
    return trials


def write_trials(
    path: Path | str, trials: Trials, family: str, settings: dict | None = None, modes: tuple[str, ...] | None = None
) -> None:
    """The trials table, a column per mode of `modes` (default: those the trials ran, modes_run)."""
    lines = [
        f"# Persistent Stochastic Ablation - {tables.title(family)} Raw Trial Data",
        "",
        *tables.settings_lines(settings),
        "## Raw Trial Data",
        "",
    ]
    modes = modes or modes_run(trials)
    for arch, by_mode in trials.items():
        lines += [f"### Architecture: {arch_key(arch)}", ""]
        count = max((len(values) for values in by_mode.values()), default=0)
        if count == 0:
            lines += [NO_TRIALS, ""]
            continue
        lines.append("| Trial | " + " | ".join(tables.MODE_TITLES[m] for m in modes) + " |")
        lines.append("|:-----:|" + ":----:|" * len(modes))
        for index in range(count):
            row = [by_mode.get(mode, [])[index] if index < len(by_mode.get(mode, [])) else None for mode in modes]
            lines.append(f"| {index + 1} | " + " | ".join(tables.percent(v) for v in row) + " |")
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
    for number, line in enumerate(tables.lines(path), start=1):
        text = line.strip()
        if text.startswith("Results Shape"):
            match = _SHAPE.fullmatch(text)
            if not match:
                raise tables.error(path, number, f"expected 'Results Shape {{L*W}} Parameters {{N}}', found {text!r}")
            current = SummaryEntry(tables.arch(match[1], path, number), int(match[2]), {})
            entries[current.arch] = current
        elif text.startswith("* "):
            match = _STATS.fullmatch(text)
            if not match:
                raise tables.error(
                    path, number, f"expected '* Mode: Mean=..% | Std=..% | Min=..% | Max=..% (n=..)', found {text!r}"
                )
            if current is None:
                raise tables.error(path, number, "mode line before any 'Results Shape' line")
            if match[2] is not None:
                mean, std, low, high = (float(match[i]) for i in range(2, 6))
                current.modes[tables.mode(match[1], path, number)] = ModeStats(mean, std, low, high, int(match[6]))
    if not entries:
        raise PSAError(f"{path}: no 'Results Shape' lines: not a summary file")
    return entries


def write_summary(
    path: Path | str, trials: Trials, family: str, settings: dict | None = None, modes: tuple[str, ...] | None = None
) -> None:
    """The summary, a line per mode of `modes` (default: those the trials ran, modes_run; a mode of
    `modes` an architecture has no bounty in is FAILED_OR_INCOMPLETE, as in the study's)."""
    lines = [
        f"# Persistent Stochastic Ablation - {tables.title(family)} Results Summary",
        "",
        *tables.settings_lines(settings),
        "## Statistical Summary",
        "",
    ]
    for arch, by_mode in trials.items():
        parameters = parameter_count(Architecture.parse(arch_key(arch)), family)
        lines.append(f"Results Shape {{{arch_key(arch)}}} Parameters {{{parameters}}}")
        for mode in modes or modes_run(trials):
            stats = mode_stats(by_mode.get(mode, []))
            body = (
                FAILED
                if stats is None
                else (
                    f"Mean={stats.mean:.2f}% | Std={stats.std:.2f}% | Min={stats.min:.2f}% | "
                    f"Max={stats.max:.2f}% (n={stats.n})"
                )
            )
            lines.append(f"* {tables.MODE_TITLES[mode]}: {body}")
        lines.append("")
    write_text(path, "\n".join(lines) + "\n")
