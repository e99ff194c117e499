"""What training an architecture costs, before it runs: seconds per meta-loop of its trials on one
H100 in float32, fitted to that GPU's measured full-grid estimate (3,044 s in 2026-11; this model
gives 3,053 s): a floor per loop (graph replays, validation, host work), dense matmul work per
parameter (slower for narrow layers), and per-layer work of the fused narrow chains. Other GPUs
scale it by their float32 throughput relative to the H100 (INSTANCE_SPEED, an assumption). A CPU
has a model of its own (cpu_loop_seconds). A `psa bench --estimate-sweep --json` file measured
on the target device replaces the model."""

import json
from pathlib import Path

from psa.errors import PSAError
from psa.files import read_text
from psa.trial.architecture import Architecture
from psa.trial.data import TRAIN_SIZE, VAL_SIZE
from psa.trial.topology import parameter_count

FLOOR, DENSE, CHAIN = 0.08, 1.37e-8, 3e-6  # s per loop; s per parameter-trial-loop; s per layer-trial-loop
# One GPU of the instance type, relative to an H100 in float32 (its FP32 FLOP/s and memory bandwidth).
INSTANCE_SPEED = {
    "ml.g4dn.xlarge": 0.1,
    "ml.g4dn.2xlarge": 0.1,
    "ml.g5.xlarge": 0.25,
    "ml.g5.2xlarge": 0.25,
    "ml.p3.2xlarge": 0.25,
    "ml.p4d.24xlarge": 0.35,
    "ml.p5.48xlarge": 1.0,
}
STARTUP = 300.0  # billable seconds a job spends before training: container start, pip install, data


# Speed of a device relative to the H100 the model was fitted on: a CUDA GPU is taken for one (an
# assumption), an Apple GPU for a twentieth of one.
DEVICE_SPEED = {"cuda": 1.0, "mps": 0.05}

# A CPU: seconds per meta-loop from the loop's arithmetic, per-trial costs and a floor, fitted to
# `psa bench --estimate-sweep --device cpu --threads 2` over the grid's 98 architectures
# (2026-12-05, 2 cores of an AVX-512 Xeon, engine version 3: each architecture within 0.71-1.26x
# of its measured time, the grid 0.98x; the H100's model scaled down was 1.0-27x too long there).
# The fused kernels (psa.engine.batched.native) pay per layer of a trial and per trial (its
# shuffle, its evaluation's fixed costs); the eager path per hidden unit of a trial (passes over
# its activations in memory) and a floor per loop. Only the arithmetic is taken to scale with the
# thread count.
CPU_THREADS = 2
CPU_FUSED = (4.45e-3, 6.9e-6, 3.3e-3, 0.0)  # s per GFLOP; s per layer and trial; s per trial; s per loop
CPU_EAGER = (4.0e-3, 1.29e-4, 0.0, 0.1)  # s per GFLOP; s per hidden unit and trial; s per trial; s per loop


def loop_flops(arch: Architecture, trials: int, train: int = TRAIN_SIZE, val: int = VAL_SIZE) -> float:
    """Arithmetic of one meta-loop of `trials` trials: per sample and weight, 2 FLOPs forward and 4
    backward in training, 2 in validation."""
    return trials * parameter_count(arch) * (6 * train + 2 * val)


def cpu_loop_seconds(arch: Architecture, trials: int, threads: int, fused: bool) -> float:
    """Seconds per meta-loop of `trials` trials of `arch` on `threads` CPU threads, `fused` where
    psa.engine.batched.native runs it."""
    per_gflop, per_part, per_trial, floor = CPU_FUSED if fused else CPU_EAGER
    parts = arch.depth if fused else sum(arch.widths)
    arithmetic = per_gflop * loop_flops(arch, trials) / 1e9 * CPU_THREADS / threads
    return arithmetic + (per_part * parts + per_trial) * trials + floor


def model_loop_seconds(arch: Architecture, trials: int) -> float:
    """Seconds per meta-loop of `trials` trials of `arch` on one H100 (float32), by the model."""
    width = max(arch.widths)
    dense = DENSE * parameter_count(arch) * max(1.0, 512 / width) ** 0.5
    chain = CHAIN * arch.depth * (width / 2) ** 0.8 if width <= 32 else 0.0
    return FLOOR + trials * (dense + chain)


def read_measured(path: Path | str) -> dict[str, float]:
    """Seconds per meta-loop of each architecture's 60 trials, from `psa bench --estimate-sweep --json`."""
    try:
        measured = json.loads(read_text(path, "bench file"))["archs"]
        return {arch: float(value["loop"]) for arch, value in measured.items()}
    except (ValueError, KeyError, TypeError) as error:
        raise PSAError(f"bench file {path} is not a `psa bench --estimate-sweep --json` file ({error})") from None


def arch_seconds(arch: Architecture, trials: int, loops: int, speed: float, measured: dict | None = None) -> float:
    """Training seconds of one architecture's `trials` trials on a GPU: measured on the target
    GPU where given (per loop of 60 trials, scaled to `trials`), else the model at `speed`."""
    if measured and str(arch) in measured:
        return loops * measured[str(arch)] * trials / 60
    return loops * model_loop_seconds(arch, trials) / speed
