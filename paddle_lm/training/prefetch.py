"""The next micro-batch is built in a thread while the current step runs.

A batch is a pure function of its global micro-step (data position and random draws alike), so building it
ahead changes nothing the model sees: exact resume holds. The thread does numpy work only (memmap gathers,
char-id lookups, negative sampling); tensors are made on the training thread.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor


class Prefetcher:
    """``get(micro)`` returns ``make(micro)`` and starts building ``make(micro + 1)``."""

    def __init__(self, make):
        self.make = make
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._ahead: tuple[int, Future] | None = None

    def get(self, micro: int) -> dict:
        ahead, self._ahead = self._ahead, None
        batch = ahead[1].result() if ahead is not None and ahead[0] == micro else self.make(micro)
        self._ahead = (micro + 1, self._pool.submit(self.make, micro + 1))
        return batch

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._ahead = None
