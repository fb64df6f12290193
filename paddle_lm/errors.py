"""The exceptions that end a command with one line instead of a traceback (see `paddle_lm.cli.run_main`)."""


class UserError(Exception):
    """Bad input (a missing file, a mismatched vocab, a nonsensical flag): message says what to do.

    Printed as ``error: MESSAGE``; the process exits with `exit_code`."""

    exit_code = 2
    prefix = "error: "


class Diverged(UserError):
    """Training met a non-finite loss or gradient norm and stopped before saving anything non-finite."""

    exit_code = 3


class Interrupted(UserError):
    """Training stopped on SIGTERM / SIGINT after saving a checkpoint; exits 128 + the signal number."""

    prefix = ""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class StartupInterrupted(BaseException):
    """SIGTERM / SIGINT before the training loop took its signals over (`training.signals.guard_startup`).

    A BaseException, as KeyboardInterrupt: nothing on the way out swallows it; `finally` blocks clean up."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum
