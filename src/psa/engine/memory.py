"""How the process gives memory and cores to torch while it trains. Memory: tuned where training
starts (the sweep's run path, `psa train`, the bench), before the data is loaded. Cores: libgomp,
torch's OpenMP runtime, reads its settings when torch is first imported, so the command line sets
them first thing (psa.cli.main). `import psa` changes nothing."""

import ctypes
import os
import sys

# How many times an OpenMP thread spins at a barrier before it sleeps. libgomp's default (300,000)
# keeps a thread spinning while the one it waits for is descheduled by another program, burning the
# slice that program needed: psa keeps its thread count when others start after it (float32
# results depend on it), so it must wait politely. Measured with `psa bench --under-load`
# (docs/PERFORMANCE.md, 2026-12-04); a set value (the environment's) wins.
OPENMP = {"GOMP_SPINCOUNT": "10000"}


def openmp_environment() -> None:
    """OPENMP's settings in the environment, unless set there: before torch is imported, they
    govern its OpenMP threads (and those of every process psa starts)."""
    for name, value in OPENMP.items():
        os.environ.setdefault(name, value)


def tune_for_training() -> None:
    """Huge pages for torch's large CPU tensors, and freed memory kept for the next step.

    THP_MEM_ALLOC_ENABLE (unless set) is read by torch at its first large allocation: a training
    step's fresh activations and gradients of a wide stack otherwise cost more in page faults than
    the arithmetic on them (a ReLU backward over 25 MB: 15 ms instead of 7). glibc's mallopt then
    serves a step's buffers of up to 32 MB from the heap, already mapped, where they would be
    mapped and zeroed afresh (a 4 MB copy into fresh memory: 1.7 ms, into reused memory: 0.2 ms;
    a 71*71 step 15-25 % faster). Linux only; elsewhere nothing changes."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    if not sys.platform.startswith("linux"):
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
        mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest
        mallopt(m_trim_threshold, 1 << 30)
