"""The machine's own arithmetic limit, measured in the same run and on the same threads as the
engine: every claim about the engine's speed is then a share of that limit, which a busy or
throttled machine moves together with the engine's own timings."""

import statistics
from dataclasses import dataclass

import torch

from psa.bench.timing import seconds
from psa.engine.costmodel import loop_flops

GEMM_SIZE, GEMM_TRIES = 2048, 5


def gemm_peak(device: torch.device, dtype=torch.float32) -> float:
    """FLOP/s of a square float32 GEMM of GEMM_SIZE: the median of a few. Not the best: on a busy
    machine that catches the one quiet moment, while the engine's timings are means over many."""
    a = torch.randn(GEMM_SIZE, GEMM_SIZE, device=device, dtype=dtype)
    b, out = torch.randn_like(a), torch.empty_like(a)
    torch.mm(a, b, out=out)  # first touch of `out`, the library's own setup
    times = [seconds(device, lambda: torch.mm(a, b, out=out)) for _ in range(GEMM_TRIES)]
    return 2 * GEMM_SIZE**3 / statistics.median(times)


def group_flops(group: list[list], scale: float, train: int, val: int) -> float:
    """Arithmetic of one meta-loop of the trials a group stands for (costmodel.loop_flops)."""
    return scale * sum(loop_flops(stack[0].arch, len(stack), train, val) for stack in group)


@dataclass(frozen=True)
class Repeated:
    """Timings of one quantity repeated: its median, and the spread (max - min) / median."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        return (max(self.values) - min(self.values)) / self.median
