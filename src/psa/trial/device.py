"""Where training runs: the device (CUDA, Apple MPS or the CPU), how many CPU threads torch may
use, and how much memory one stack of trials may take."""

import os
import statistics
import time
from pathlib import Path

import torch

from psa.errors import PSAError


def pick_device(requested: str | None) -> torch.device:
    """The requested device, checked; by default CUDA, else MPS, else the CPU."""
    if requested is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise PSAError(f"unknown device {requested!r}: use cpu, mps, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise PSAError(f"--device {requested} asked for, but PyTorch sees no CUDA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise PSAError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        # Streams, graphs and kernels are made on the current device: make it the chosen one, so
        # one process per GPU (cuda:0, cuda:1, ...) works.
        torch.cuda.set_device(device)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise PSAError(f"--device {requested} asked for, but PyTorch sees no Apple MPS device")
    return device


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


def busy_cores() -> float:
    """How many threads of other programs run now: on Linux the runnable count of /proc/loadavg
    less this process, the median of a few samples (the one-minute load average would still count
    a job that ended a minute ago); elsewhere the load average."""
    try:
        samples = []
        for _ in range(5):
            samples.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1)
            time.sleep(0.02)
        return statistics.median(samples)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def idle_cores() -> int:
    """The usable cores less those other programs keep busy, at least one. More threads than free
    cores makes every step wait for the slowest thread: beside one CPU-bound job a 2-core machine
    ran 11x slower on two (docs/PERFORMANCE.md, threads)."""
    cores = usable_cores()
    return max(1, min(cores, round(cores - busy_cores())))


def set_threads(requested: int | None) -> int:
    """Give torch `requested` threads, else $PSA_THREADS, else the idle cores; returns the count.
    float32 results depend on it, so the store records it with every trial (docs/DESIGN.md section 8)."""
    given = "--threads"
    if requested is None:
        text = os.environ.get("PSA_THREADS", "").strip()
        if text and (not text.isdigit() or int(text) < 1):
            raise PSAError(f"PSA_THREADS={text!r}: expected a whole number >= 1")
        requested, given = (int(text), "PSA_THREADS") if text else (idle_cores(), "")
    if requested > usable_cores():
        # More threads than cores only make every step wait for the slowest of them (many times slower).
        raise PSAError(f"{given} {requested}: this process may use {usable_cores()} cores; give at most that")
    torch.set_num_threads(requested)
    return requested


def device_memory(device: torch.device) -> int:
    """Bytes of memory the device has: a GPU's own, else the machine's."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_budget(device: torch.device, gib: float | None) -> int:
    """Bytes one stack of trials may use: `gib` if given (at most what the device has), else 60%
    of a GPU's free memory or 2 GiB elsewhere."""
    if gib is not None:
        if gib * 2**30 > device_memory(device):
            raise PSAError(f"--max-memory {gib:g}: the {device} has only {device_memory(device) / 2**30:.1f} GiB")
        return int(gib * 2**30)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    return 2 << 30
