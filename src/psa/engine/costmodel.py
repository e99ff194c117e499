"""What training an architecture costs, before it runs: seconds per meta-loop of its trials on one
H100 in float32, fitted to that GPU's measured full-grid estimate (3,044 s in 2026-11; this model
gives 3,053 s): a floor per loop (graph replays, validation, host work), dense matmul work per
parameter (slower for narrow layers), and per-layer work of the fused narrow chains. Other GPUs
scale it by their float32 throughput relative to the H100 (INSTANCE_SPEED, an assumption). A
`psa bench --estimate-sweep --json` file measured on the target GPU replaces the model."""

import json
from pathlib import Path

from psa.errors import PSAError
from psa.files import read_text
from psa.trial.architecture import Architecture
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


# Speed of a device relative to the H100 the model was fitted on: a CUDA GPU is taken for one
# (an assumption), a CPU thread ran the batched engine at about 0.9 % of it (psa bench, 2026-12).
DEVICE_SPEED = {"cuda": 1.0, "mps": 0.05, "cpu": 0.009}


def on_device(device) -> tuple[float, float]:
    """The device's speed relative to the H100, and its per-loop floor (a CPU has no graphs to replay)."""
    return DEVICE_SPEED.get(device.type, DEVICE_SPEED["cpu"]), FLOOR if device.type == "cuda" else 0.0


def model_loop_seconds(arch: Architecture, trials: int, floor: float = FLOOR) -> float:
    """Seconds per meta-loop of `trials` trials of `arch` on one H100 (float32), by the model;
    `floor` is the GPU's per-loop cost (graph replays, launches), which a CPU does not pay."""
    width = max(arch.widths)
    dense = DENSE * parameter_count(arch) * max(1.0, 512 / width) ** 0.5
    chain = CHAIN * arch.depth * (width / 2) ** 0.8 if width <= 32 else 0.0
    return floor + trials * (dense + chain)


def read_measured(path: Path | str) -> dict[str, float]:
    """Seconds per meta-loop of each architecture's 60 trials, from `psa bench --estimate-sweep --json`."""
    try:
        measured = json.loads(read_text(path, "bench file"))["archs"]
        return {arch: float(value["loop"]) for arch, value in measured.items()}
    except (ValueError, KeyError, TypeError) as error:
        raise PSAError(f"bench file {path} is not a `psa bench --estimate-sweep --json` file ({error})") from None


def arch_seconds(
    arch: Architecture, trials: int, loops: int, speed: float, measured: dict | None = None, floor: float = FLOOR
) -> float:
    """Training seconds of one architecture's `trials` trials: measured on the target GPU where
    given (per loop of 60 trials, scaled to `trials`), else the model at `speed` and `floor`."""
    if measured and str(arch) in measured:
        return loops * measured[str(arch)] * trials / 60
    return loops * model_loop_seconds(arch, trials, floor) / speed
