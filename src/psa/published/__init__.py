"""The published PSA SimpleMLP study, shipped with psa as data: its configuration lists (the 98
architectures, and the 30 outside the parameter-matching design), its result tables and its cost
report. They are the defaults of the tools that take a grid, and what `--reference published`
compares with."""

from pathlib import Path

PUBLISHED = "published"  # names this study wherever a study or a list of architectures is asked for
FOLDER = Path(__file__).parent
CONFIGURATIONS = FOLDER / "configurations.txt"
ASYMMETRIC = FOLDER / "asymmetric.txt"
COST_REPORT = FOLDER / "sagemaker_cost_report.json"


def results(kind: str) -> Path:
    """psa_simplemlp_<kind>.md of the study: kind summary, trials, trials_convergence or
    trials_lkg_growth."""
    return FOLDER / f"psa_simplemlp_{kind}.md"
