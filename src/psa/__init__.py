"""Persistent Stochastic Ablation (PSA): train, sweep, analyse and publish the PSA study."""

import os

__version__ = "0.1.0"

# OpenMP threads that spin while they wait for work take the cores that other programs (or other
# sweeps) need, and a busy machine then slows every one of them down many times over
# (docs/PERFORMANCE.md, threads). Set before torch is imported, which reads it once.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class PSAError(Exception):
    """A user-facing error: the CLI prints its message and exits non-zero, without a traceback."""
