"""The published PSA SimpleMLP study, shipped with psa as data: its configuration lists (the 98
architectures, and the 30 outside the parameter-matching design) and its result tables. They are
the defaults of the tools that take a grid, and the reference of `psa compare`."""

from pathlib import Path

FOLDER = Path(__file__).parent
CONFIGURATIONS = FOLDER / "configurations.txt"
ASYMMETRIC = FOLDER / "asymmetric.txt"
