"""What psa raises for a user's mistake or a problem with their files, and for a signal that asks a
long run to stop."""

import signal


class PSAError(Exception):
    """A user-facing error: the CLI prints its message and exits with status 2, without a traceback."""


class Stopped(BaseException):
    """A run stopped by a signal (SIGTERM from Slurm, a spot reclaim or `docker stop`; Ctrl-C) after
    committing what it had trained. A BaseException, as KeyboardInterrupt is: no `except Exception`
    may swallow it. The CLI exits with the shell's convention, 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
