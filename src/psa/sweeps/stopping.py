"""A signal that asks a sweep to stop (SIGTERM from Slurm, a spot reclaim or `docker stop`; Ctrl-C)
is honoured at the next training step: the sweep commits what its journal holds, releases its
claims, so that another sweep takes over at once, and ends with psa.errors.Stopped. A second
signal stops it at once (its claims are still released)."""

import signal
import threading
from contextlib import contextmanager

from psa.errors import Stopped

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop:
    """What the signals asked for; `check` raises Stopped once one has come (Reporter calls it at
    every training step and meta-loop)."""

    def __init__(self):
        self.signum: int | None = None

    def check(self) -> None:
        if self.signum is not None:
            raise Stopped(self.signum)


@contextmanager
def stopping():
    """SIGINT and SIGTERM turned into a Stop request while the block runs (handlers can only be
    set in the main thread: elsewhere the block runs with the process's own handling)."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request(signum, frame):
        if stop.signum is not None:
            raise Stopped(signum)
        stop.signum = signum

    previous = {signum: signal.signal(signum, request) for signum in SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
