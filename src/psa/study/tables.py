"""Markdown tables as the study writes them: reading their cells with complaints that name the
file and the line, writing percents, and the settings line that psa's own exports carry above a
table (the published files have none)."""

import math
from pathlib import Path

from psa.errors import PSAError
from psa.files import read_text
from psa.trial.architecture import FAMILY_TITLES, arch_key, check_family
from psa.trial.modes import MODES

MODE_TITLES = {mode: mode.capitalize() for mode in MODES}  # "None", "Decay", ... as in the tables
SETTINGS = "Settings:"  # opens the line that names the settings of an export's trials


def lines(path: Path) -> list[str]:
    return read_text(path, "results file").splitlines()


def error(path: Path, number: int, message: str) -> PSAError:
    return PSAError(f"{path}:{number}: {message}")


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def is_separator(line: str) -> bool:
    # Any mix of '|', ':', '-' counts, so the published "|:-----::----:|..." row is accepted.
    return set(line.strip()) <= set("|:- ") and "-" in line


def value(cell: str, path: Path, number: int) -> float | None:
    """A percentage cell: a finite number in [0, 100], or N/A."""
    if cell == "N/A":
        return None
    try:
        found = float(cell.removesuffix("%"))
    except ValueError:
        found = math.nan
    if not 0 <= found <= 100:  # NaN included
        raise error(path, number, f"expected a percentage in [0, 100] like 98.22% or N/A, found {cell!r}")
    return found


def arch(text: str, path: Path, number: int) -> str:
    try:
        return arch_key(text)
    except PSAError as problem:
        raise error(path, number, str(problem)) from None


def mode(title: str, path: Path, number: int) -> str:
    name = title.lower()
    if name not in MODES:
        raise error(path, number, f"unknown mode {title!r}: expected one of {', '.join(MODE_TITLES.values())}")
    return name


def percent(number: float | None, suffix: str = "%") -> str:
    return "N/A" if number is None else f"{number:.2f}{suffix}"


def title(family: str) -> str:
    return FAMILY_TITLES[check_family(family)]


def settings_lines(settings: dict | None) -> list[str]:
    """The settings line of an export (and a blank line after it), or nothing."""
    if not settings:
        return []
    return [f"{SETTINGS} " + " | ".join(f"{name} {setting}" for name, setting in settings.items()), ""]


def read_settings(path: Path | str) -> dict[str, str]:
    """The settings line of a results file as {name: value}; {} for files without one."""
    for line in lines(Path(path)):
        if line.startswith(SETTINGS):
            return dict(part.strip().rsplit(" ", 1) for part in line.removeprefix(SETTINGS).split("|") if part.strip())
    return {}
