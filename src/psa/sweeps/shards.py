"""The grid split into N shards of whole architectures, balanced by what each architecture costs to
train (psa.engine.costmodel, or a `psa bench --estimate-sweep --json` file): the costliest architecture
first, each to the shard with the least work so far (longest-processing-time first). One split for
every way of running shards: `psa sweep --shard K/N`, the Slurm array and the SageMaker plan."""

from dataclasses import dataclass, replace
from pathlib import Path

from psa.engine import costmodel
from psa.errors import PSAError
from psa.sweeps.settings import RunSettings
from psa.trial.architecture import Architecture


@dataclass(frozen=True)
class Split:
    shards: tuple[tuple[Architecture, ...], ...]  # the architectures of each shard, in the grid's order
    seconds: tuple[float, ...]  # estimated training seconds of each shard


def split(run: RunSettings, shards: int, speed: float = 1.0, measured: dict | None = None) -> Split:
    """`shards` shards of the run's architectures, balanced by estimated cost at `speed` (relative
    to an H100) or by the `measured` seconds per loop."""
    if shards < 1:
        raise PSAError("--shards must be at least 1")
    unique = list(dict.fromkeys(run.archs))
    if shards > len(unique):
        raise PSAError(f"{shards} shards: the grid has only {len(unique)} architectures to share out")
    per_arch = run.trials * len(run.modes)
    cost = {arch: costmodel.arch_seconds(arch, per_arch, run.meta_loops, speed, measured) for arch in unique}
    members: list[list[Architecture]] = [[] for _ in range(shards)]
    loads = [0.0] * shards
    for arch in sorted(unique, key=lambda a: (-cost[a], str(a))):
        k = min(range(shards), key=lambda i: (loads[i], i))
        members[k].append(arch)
        loads[k] += cost[arch]
    return Split(tuple(tuple(sorted(m, key=unique.index)) for m in members), tuple(loads))


def shard_run(run: RunSettings, k: int, n: int, measured: dict | None = None) -> RunSettings:
    """The run of the K-th (1-based) of N balanced shards: the same settings, its architectures."""
    return replace(run, archs=split(run, n, measured=measured).shards[k - 1])


def store_name(k: int, n: int, folder: Path | str = "results") -> Path:
    """Where shard K of N keeps its results store unless told otherwise."""
    return Path(folder) / f"psa-shard-{k}-of-{n}.sqlite"
