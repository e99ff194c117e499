"""A run's manifest: how a result was made, beyond its command line. Every sweep (every worker, Slurm
task and SageMaker job) records one in the store (psa.store.Store.start_sweep); a merged store keeps
each source's; `psa info` prints them; exports carry them in manifest.json and parquet metadata."""

import dataclasses
import platform
import socket
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from psa.sweeps.settings import Machine, RunSettings
from psa.version import __version__


def git_state() -> tuple[str | None, bool | None]:
    """The commit of the checkout psa runs from, and whether it has uncommitted changes; (None,
    None) for an installed copy."""
    source = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=source, capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(changes.strip())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def settings_of(run: RunSettings, machine: Machine) -> dict:
    """The run's full settings, as JSON can hold them (RunSettings.from_manifest reads them back)."""
    return {
        "archs": [str(arch) for arch in dict.fromkeys(run.archs)],
        "modes": list(run.modes),
        "trials": run.trials,
        "meta_loops": run.meta_loops,
        "family": run.family,
        "seed": run.seed,
        "seeding": run.seeding,
        "hyper": dataclasses.asdict(run.hyper),
        "machine": {name: None if value is None else str(value) for name, value in dataclasses.asdict(machine).items()},
    }


def manifest(run: RunSettings, machine: Machine, command: str, device: torch.device) -> dict:
    commit, dirty = git_state()
    cuda = device.type == "cuda"
    return {
        "id": uuid.uuid4().hex,
        "psa_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "host": socket.gethostname(),
        "command": command,
        "settings": settings_of(run, machine),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
