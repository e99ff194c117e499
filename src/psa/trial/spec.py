"""What a trial is (its spec and seed, and the grid of a run), what one meta-loop records, and
what a finished trial reports. Shared by both engines, the sweep, the store and the cloud job."""

import hashlib
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from psa.trial.architecture import Architecture

SEEDINGS = ("independent", "paired")
SEED = 2025  # the base seed of every command that draws trial seeds


def trial_seed(base_seed: int, arch: Architecture | str, trial: int, mode: str | None = None) -> int:
    """The seed of trial `trial` (0-based) of `arch` in a sweep with `base_seed`. With a mode, every
    (architecture, mode, trial) has its own seed, as in the study ("independent" seeding); without
    one, trial k of every mode shares its seed, hence its initial weights and data order
    ("paired" seeding, which compares modes on paired trials)."""
    key = f"{base_seed}/{arch}/{trial}" if mode is None else f"{base_seed}/{arch}/{mode}/{trial}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") & 0x7FFFFFFF


BETAS, EPS = (0.9, 0.999), 1e-8  # AdamW's, torch's defaults as the study used them


@dataclass(frozen=True)
class Hyper:
    lr: float = 1e-4
    batch_size: int = 256
    weight_decay: float = 1e-4  # used in mode `decay` only
    dropout: float = 0.1  # used in mode `dropout` only


@dataclass(frozen=True)
class TrialSpec:
    arch: Architecture
    family: str  # simplemlp | resmlp
    mode: str
    trial: int  # 0-based index within its (arch, mode) cell
    seed: int
    hyper: Hyper = Hyper()


# What identifies a trial in a results store: two trials with the same key are the same trial,
# trained once. The store's unique key, its lookups, claims and merges, and the first columns of
# the exports all come from this one tuple.
KEY = ("family", "arch", "mode", "trial", "seed", "meta_loops", *(f.name for f in fields(Hyper)))


def trial_key(spec: TrialSpec, meta_loops: int) -> dict[str, object]:
    """The values of KEY for `spec` trained for `meta_loops` meta-loops."""
    values = {f.name: getattr(spec, f.name) for f in fields(spec)} | asdict(spec.hyper)
    values |= {"arch": str(spec.arch), "meta_loops": meta_loops}
    return {name: values[name] for name in KEY}


@dataclass
class LoopRecord:
    loop: int  # 1-based, global (continues across resumes)
    score: float  # validation accuracy of the candidate, percent
    lkg_score: float
    bounty: float
    improved: bool
    ablated: str | None  # what was zeroed before this loop's training, e.g. "L2:17"; None if nothing
    loss: float | None = None  # mean training loss of the loop's epoch; None where not recorded


@dataclass
class Progress:
    """Where a trial stands after its committed meta-loops: enough to go on exactly as an
    unbroken run would, since every loop starts from the LKG with a fresh AdamW. The store keeps
    it and the batched engine resumes from it; the single-trial engine keeps its own state
    (engine.TrialState: whole modules, for its safetensors checkpoints)."""

    loops_done: int = 0
    lkg: np.ndarray | None = None  # (P,) the LKG's parameters, flat as in a stack row; None before loop 1
    lkg_score: float = -1.0
    bounty: float = -1.0
    bounty_loop: int = 0


@dataclass
class TrialResult:
    spec: TrialSpec
    bounty: float
    bounty_loop: int
    test_accuracy: float
    history: list[LoopRecord] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"


@dataclass(frozen=True)
class Grid:
    """The trials of a run (psa.sweeps.settings.RunSettings.grid), per architecture, and how their seeds
    were drawn."""

    by_arch: dict[Architecture, list[TrialSpec]]
    seeding: str
    base_seed: int

    @property
    def archs(self) -> list[Architecture]:
        return list(self.by_arch)

    @property
    def specs(self) -> list[TrialSpec]:
        return [spec for specs in self.by_arch.values() for spec in specs]


def log_line(record: LoopRecord, index: int, total: int) -> str:
    """The per-meta-loop line of docs/DESIGN.md section 6 that the logs parser reads: `index` of `total`
    counts the loops of this run, Global the loops of the trial across resumes. The training loss,
    where recorded, follows the study's fields, which the parser reads alone."""
    line = (
        f"Loop {index}/{total} (Global: {record.loop}) | Current: {record.score:.2f}% | "
        f"LKG: {record.lkg_score:.2f}% | Bounty: {record.bounty:.2f}%"
    )
    return line if record.loss is None else f"{line} | Loss: {record.loss:.4f}"
