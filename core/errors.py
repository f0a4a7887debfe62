"""The one exception type the CLI turns into a one-line message (no stack trace)."""


class AigqError(Exception):
    """A user-facing error; the message names the file, row, flag or service at fault."""
