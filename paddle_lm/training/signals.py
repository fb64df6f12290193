"""Preemption and Ctrl-C: SIGTERM / SIGINT only set a flag; the training loop acts on it at a step boundary.

`paddle.distributed.launch` stops its ranks by sending SIGTERM to each rank's process group (up to three
times, 0.2 s apart) and kills them 30 s later; a terminal's Ctrl-C reaches a single process as SIGINT and
launched ranks as SIGTERM. Repeated signals are therefore idempotent: the first one decides.
"""

from __future__ import annotations

import signal
import threading


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
