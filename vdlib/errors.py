"""The one exception type users see: a single line naming the file, the field and what was expected."""


class VdlibError(Exception):
    """A user-facing error; the CLI prints its message as one line and exits with status 2."""
