"""Persistent Stochastic Ablation (PSA): train, sweep, analyse and publish the PSA study."""

__version__ = "0.1.0"


class PSAError(Exception):
    """A user-facing error: the CLI prints its message and exits non-zero, without a traceback."""
