"""Persistent Stochastic Ablation (PSA): train, sweep, analyse and publish the PSA study."""

import os

__version__ = "0.1.0"

# Huge pages for torch's large CPU tensors (read at its first allocation, so set on import): a
# training step's fresh activations and gradients of a wide stack otherwise cost more in page
# faults than the arithmetic on them (a ReLU backward over 25 MB: 15 ms instead of 7).
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


class PSAError(Exception):
    """A user-facing error: the CLI prints its message and exits non-zero, without a traceback."""
