"""The one exception psa raises for a user's mistake or a problem with their files."""


class PSAError(Exception):
    """A user-facing error: the CLI prints its message and exits with status 2, without a traceback."""
