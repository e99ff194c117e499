"""What a run is, in one place: the grid (architectures x modes x trials), its length, the model
family, the seeds and the hyperparameters. From RunSettings come the command-line arguments of
every command that runs a grid (sweep, reproduce, bench, cloud launch, cloud job), the arguments a
launcher hands to a job, and the settings that make trials comparable: the store columns an export
filters on and names in its `Settings:` line (docs/DESIGN.md section 8)."""

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from psa import PSAError, options
from psa.architecture import FAMILIES, Architecture, parse_list, read_configurations
from psa.modes import MODES, parse_modes
from psa.published import CONFIGURATIONS
from psa.trial import SEEDINGS, Grid, Hyper, TrialSpec, trial_seed

SEED = 2025  # the base seed of every command that draws trial seeds

# Store column -> flag, of what trials must share to sit in one table (the export's filters).
COMPARABLE = {
    "seeding": "--seeding",
    "base_seed": "--seed",
    "meta_loops": "--meta-loops",
    **{f.name: f"--{f.name.replace('_', '-')}" for f in fields(Hyper)},
}


@dataclass(frozen=True)
class RunSettings:
    archs: tuple[Architecture, ...]
    modes: tuple[str, ...] = MODES
    trials: int = 10
    meta_loops: int = 100
    family: str = FAMILIES[0]
    seed: int = SEED
    seeding: str = SEEDINGS[0]
    hyper: Hyper = Hyper()

    def __post_init__(self):
        if self.seeding not in SEEDINGS:
            raise PSAError(f"unknown seeding {self.seeding!r}: choose {' or '.join(SEEDINGS)}")

    def grid(self) -> Grid:
        """Every trial of the run, with its seed: per (architecture, mode, trial) when seeding is
        independent, per (architecture, trial) when paired (docs/DESIGN.md section 5)."""
        independent = self.seeding == "independent"
        return Grid(
            {
                arch: [
                    TrialSpec(
                        arch,
                        self.family,
                        mode,
                        t,
                        trial_seed(self.seed, arch, t, mode if independent else None),
                        self.hyper,
                    )
                    for mode in self.modes
                    for t in range(self.trials)
                ]
                for arch in dict.fromkeys(self.archs)
            },
            self.seeding,
            self.seed,
        )

    def comparable(self) -> dict:
        """The store columns that trials of this run share (COMPARABLE's keys)."""
        values = {"seeding": self.seeding, "base_seed": self.seed, "meta_loops": self.meta_loops}
        return {**values, **{f.name: getattr(self.hyper, f.name) for f in fields(Hyper)}}

    def job_arguments(self) -> dict[str, str]:
        """What a launcher hands to every job of this run as `--name value` (a job's own
        architectures and modes come on top)."""
        values = {"trials": self.trials, "meta-loops": self.meta_loops, "model": self.family, "seed": self.seed}
        values["seeding"] = self.seeding
        values |= {f.name.replace("_", "-"): getattr(self.hyper, f.name) for f in fields(Hyper)}
        return {name: str(value) for name, value in values.items()}


def add_arguments(parser, trials: int, meta_loops: int, archs_required: bool = False) -> None:
    """The arguments of a run, with these defaults for its length."""
    archs = parser.add_mutually_exclusive_group(required=archs_required)
    archs.add_argument("--arch", default=None, help='architectures, e.g. "1*16,2*8" (or "[4*4, 2*8];[1*8]")')
    archs.add_argument(
        "--configs",
        type=Path,
        default=None,
        help="configurations file, one L*W per line (default: the published study's 98)",
    )
    parser.add_argument("--modes", default="all", help="comma-separated modes (default: all six)")
    # The cloud job's former spelling.
    parser.add_argument("--mode", dest="modes", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=options.whole(1), default=trials, help=f"trials per cell (default: {trials})")
    parser.add_argument(
        "--meta-loops", type=options.whole(1), default=meta_loops, help=f"meta-loops per trial (default: {meta_loops})"
    )
    options.add_family(parser)
    parser.add_argument(
        "--seed", type=options.whole(0), default=SEED, help=f"base seed; trial seeds derive from it (default: {SEED})"
    )
    parser.add_argument(
        "--seeding",
        choices=SEEDINGS,
        default=SEEDINGS[0],
        help="independent: every architecture, mode and trial its own seed, as in the study; "
        "paired: trial k of every mode shares its seed (docs/DESIGN.md section 5)",
    )
    options.add_hyper(parser)


def from_args(args: argparse.Namespace) -> RunSettings:
    archs = parse_list(args.arch) if args.arch else read_configurations(args.configs or CONFIGURATIONS)
    if not archs:
        raise PSAError("no architectures given")
    return RunSettings(
        tuple(archs),
        parse_modes(args.modes),
        args.trials,
        args.meta_loops,
        args.family,
        args.seed,
        args.seeding,
        options.hyper(args),
    )


def add_filters(group) -> None:
    """COMPARABLE's flags with no default: which trials, where a store holds several settings."""
    group.add_argument("--seeding", choices=SEEDINGS, default=None)
    group.add_argument("--seed", type=options.whole(0), default=None, help="base seed of the sweep")
    group.add_argument("--meta-loops", type=options.whole(1), default=None)
    options.add_hyper(group, defaults=False)


def filters(args: argparse.Namespace) -> dict:
    """The store columns the filters of add_filters ask for (None: any)."""
    return {column: getattr(args, flag.removeprefix("--").replace("-", "_")) for column, flag in COMPARABLE.items()}
