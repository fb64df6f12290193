"""Locks: one process at a time on a thing (a shard being encoded, a run's --save_dir, a command's --output).

`file_lock` blocks (ranks that encode or train one thing together wait for the first one). `HeldLock` refuses
at once with one line naming the holder, and leaves nothing behind when released: its file is removed (while
still locked, so a process that opened the old file notices and retries on the new one). `claim_output` is the
check-and-write of every command that writes an output: the lock beside the output is held from the existence
check to the end of the write, so two commands writing one output cannot both succeed.

A process killed with -9 loses its locks (the kernel drops them); the lock file it leaves is taken over by the
next run and removed when that one ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time

from paddle_lm.errors import UserError
from paddle_lm.fsio import make_dirs, os_error, refuse_existing, remove_made

#: Suffix of the hidden lock file beside an output being written (``.NAME.paddle-lm-lock``).
OUTPUT_LOCK_SUFFIX = ".paddle-lm-lock"


@contextlib.contextmanager
def file_lock(path: str):
    """Block until this process holds the exclusive lock file `path`; the file is removed on release."""
    while True:
        f = open(path, "a")  # noqa: SIM115 (closed below)
        fcntl.flock(f, fcntl.LOCK_EX)
        if _same_file(f, path):
            break
        f.close()  # the holder removed it while we waited: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


class HeldLock:
    """An exclusive lock on file `path` held until `release()` (or the process dies: the kernel drops it, also
    on kill -9). The file holds a JSON line describing the holder, so a refused second run can say who it is.

    `made` are folders created for this lock (`fsio.make_dirs`): `release()` removes the lock file and then
    those folders when they are empty, so work refused after the lock was taken leaves nothing on disk.
    """

    def __init__(self, path: str, what: str, made: list[str] | None = None,
                 advice: str = "wait for it to finish, stop it, or pick another folder"):
        self.path, self.made, self._f = path, list(made or []), None
        while self._f is None:
            try:
                f = open(path, "a+")  # noqa: SIM115 (held for the run's life)
            except OSError as e:
                remove_made(self.made)
                raise os_error(e, path) from None
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                f.close()
                raise UserError(f"{what} is in use by another run ({holder}); {advice}") from None
            if _same_file(f, path):
                self._f = f
            else:  # the holder released (and removed) it between our open and our lock: take the new file
                f.close()
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"), "cwd": os.getcwd()}
        try:
            self._f.seek(0)
            self._f.truncate()
            self._f.write(json.dumps(info))
            self._f.flush()
        except OSError as e:
            self.release()
            raise os_error(e, path) from None

    def release(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                os.remove(self.path)  # still locked: whoever opened this file retries on a new one
            fcntl.flock(self._f, fcntl.LOCK_UN)
            self._f.close()
            self._f = None
            remove_made(self.made)


def _same_file(f, path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    mine = os.fstat(f.fileno())
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def claim_output(paths, flag: str, overwrite: bool, shown: str | None = None):
    """``with claim_output(paths, "--output", overwrite): write...``: hold the lock of the output (a hidden
    ``.NAME.paddle-lm-lock`` beside the first path), refuse what `fsio.refuse_existing` refuses, and keep the
    lock until the block ends. A second command on the same output is refused at once with one line; the
    folders created for the output are removed again when the block fails and leaves them empty."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    first = os.path.abspath(os.fspath(paths[0])).rstrip(os.sep)
    folder, name = os.path.split(first)
    try:
        made = make_dirs(folder)
    except OSError as e:
        raise os_error(e, folder) from None
    label = shown if shown is not None else os.fspath(paths[0])
    lock = HeldLock(os.path.join(folder, f".{name}{OUTPUT_LOCK_SUFFIX}"), f"{flag} {label!r}", made,
                    advice=f"wait for it to finish, or pick another {flag}")
    try:
        refuse_existing(paths, flag, overwrite, shown)
        yield
    finally:
        lock.release()
