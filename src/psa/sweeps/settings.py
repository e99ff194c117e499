"""What a run is, in one place, and how it uses the machine it runs on (Machine). A run: the grid
(architectures x modes x trials), its length, the model family, the seeds and the hyperparameters.
From RunSettings come the grid's trials, the arguments a launcher hands to a job, and the settings
that make trials comparable: the store columns an export filters on and names in its `Settings:`
line (docs/DESIGN.md section 8). The command line builds both from its flags (psa.cli.options)."""

from dataclasses import dataclass, fields
from pathlib import Path

from psa.errors import PSAError
from psa.trial.architecture import FAMILIES, Architecture
from psa.trial.modes import MODES
from psa.trial.spec import SEED, SEEDINGS, Grid, Hyper, TrialSpec, trial_seed

CHECKPOINT_EVERY = 30.0  # seconds between two commits of a group's progress (the last loop always commits)

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

    @classmethod
    def from_manifest(cls, settings: dict) -> "RunSettings":
        """The run a manifest's settings describe (psa.sweeps.manifest.settings_of)."""
        return cls(
            tuple(Architecture.parse(arch) for arch in settings["archs"]),
            tuple(settings["modes"]),
            settings["trials"],
            settings["meta_loops"],
            settings["family"],
            settings["seed"],
            settings["seeding"],
            Hyper(**settings["hyper"]),
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


@dataclass(frozen=True)
class Machine:
    """How a run uses the machine it runs on (the flags of psa.cli.options.add_machine). None means
    the default of psa.trial.device: CUDA, else MPS, else the CPU; $PSA_THREADS, else the idle cores;
    2 GiB a stack on a CPU, 60 % of a GPU's free memory; 8 stacks side by side on a GPU, else 1."""

    device: str | None = None
    threads: int | None = None
    max_memory: float | None = None  # GiB one stack may use
    pack: int | None = None
    data_dir: Path | None = None
    checkpoint_every: float = CHECKPOINT_EVERY
    tensorboard: Path | None = None
