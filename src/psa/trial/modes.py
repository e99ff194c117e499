"""The six training modes of the study and how they group."""

MODES = ("none", "decay", "dropout", "full", "hidden", "output")
BASELINE_MODES = ("none", "decay", "dropout")
ABLATIVE_MODES = ("full", "hidden", "output")


def check_mode(mode: str) -> str:
    from psa.errors import PSAError

    if mode not in MODES:
        raise PSAError(f"unknown ablation mode {mode!r}: choose one of {', '.join(MODES)}")
    return mode


def parse_modes(text: str) -> tuple[str, ...]:
    """'none,hidden' -> ('none', 'hidden'), in the study's order; 'all' means all six."""
    from psa.errors import PSAError

    if text.strip() == "all":
        return MODES
    wanted = {check_mode(m.strip()) for m in text.split(",") if m.strip()}
    if not wanted:
        raise PSAError(f"--modes {text!r}: no modes given (name some, e.g. none,hidden, or all)")
    return tuple(m for m in MODES if m in wanted)
