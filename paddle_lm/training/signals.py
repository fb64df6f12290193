"""Preemption and Ctrl-C: SIGTERM / SIGINT only set a flag; the training loop acts on it at a step boundary.

`paddle.distributed.launch` stops its ranks by sending SIGTERM to each rank's process group (up to three
times, 0.2 s apart) and kills them 30 s later; a terminal's Ctrl-C reaches a single process as SIGINT and
launched ranks as SIGTERM. Repeated signals are therefore idempotent: the first one decides.

Before the loop (arguments, Paddle's import, shards, the model) there is no step boundary to wait for:
`startup_guard` makes the signals raise `StartupInterrupted` with one line saying what was (not) saved, which
`cli.run_main` prints. Importing Paddle replaces the SIGTERM handler with its own (the process then dies
without a word or with a C++ "FatalError" block): `load_paddle` holds the signals back during the import and
puts the guard back after it, and the trainer puts it back again after Paddle's distributed start-up.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from paddle_lm.errors import StartupInterrupted

_startup = {"message": "interrupted; nothing was saved", "active": 0}


def _raise_startup(signum, frame) -> None:
    raise StartupInterrupted(_startup["message"], signum)


def guard_startup(message: str | None = None) -> None:
    """Inside a `startup_guard`: change its line to `message` and install its handler again (Paddle replaces
    it). Outside one, nothing."""
    if message is not None:
        _startup["message"] = message
    if _startup["active"] and threading.current_thread() is threading.main_thread():
        for s in StopFlag.SIGNALS:
            signal.signal(s, _raise_startup)


@contextlib.contextmanager
def startup_guard(message: str):
    """In the block, SIGTERM and SIGINT raise `StartupInterrupted(message)` (until a `StopFlag` takes over;
    it gives the guard back when it ends). The handlers and the line found before are put back after it."""
    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.getsignal(s) for s in StopFlag.SIGNALS} if main else {}
    before = _startup["message"]
    _startup["active"] += 1
    guard_startup(message)
    try:
        yield
    finally:
        _startup["active"] -= 1
        _startup["message"] = before
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def load_paddle() -> None:
    """Import Paddle with SIGTERM and SIGINT held back, then put the guard back: Paddle's import installs its
    own SIGTERM handler, so a signal during the import (seconds) would end the process without a word. A
    signal that came meanwhile is delivered to the guard as soon as the import is done."""
    if "paddle" in sys.modules or threading.current_thread() is not threading.main_thread():
        import paddle
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, StopFlag.SIGNALS)
    try:
        import paddle  # noqa: F401
    finally:
        guard_startup()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, StopFlag.SIGNALS)


class StopFlag:
    """Install with `with StopFlag() as stop:`; `stop.signum` is 0 until a SIGTERM or SIGINT arrives."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum = 0
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:  # runs between bytecodes, never inside a Paddle op
        if not self.signum:
            self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""
