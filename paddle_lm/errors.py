"""The one exception type for bad user input: scripts print its message on one line and exit 2."""


class UserError(Exception):
    """Bad input (a missing file, a mismatched vocab, a nonsensical flag): message says what to do."""
