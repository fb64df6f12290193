"""Files that survive crashes: the one atomic writer, directory fsync, and one-line OS errors (locks:
`paddle_lm.locks`).

Every file paddle-lm writes goes through `atomic_write` (or its text / bytes / npy shorthands): the bytes go
to a temporary name in the same folder, are fsynced, renamed over the destination, and the folder is fsynced,
so a reader (or a crash at any moment) sees the old file or the new one, never a part. A failure (a full
disk, a read-only file system) removes the temporary file and raises a `UserError` naming the path.

Temporary names start with `TMP_MARK` so that `remove_leftovers` can delete what a killed writer left.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import errno
import hashlib
import json
import math
import os
import shutil

from paddle_lm.errors import UserError

TMP_MARK = ".tmp-"


def tmp_name(path: str) -> str:
    """A temporary name for `path` in the same folder (unique per process)."""
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}{TMP_MARK}{os.getpid()}")


def fsync_dir(folder: str) -> None:
    """Make renames and deletions inside `folder` durable (a no-op where the platform cannot)."""
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def os_error(e: OSError, what: str) -> UserError:
    """One line for an OSError while writing `what` (a path or a description)."""
    hint = {errno.ENOSPC: "; free some space (the previous files are intact)",
            errno.EDQUOT: "; free some space (the previous files are intact)",
            errno.EROFS: "; pick a writable folder", errno.EACCES: "; pick a folder you can write to"}
    return UserError(f"cannot write {what}: {e.strerror or e}{hint.get(e.errno, '')}")


@contextlib.contextmanager
def open_input(path: str):
    """The one way an input file is opened (binary): an OSError on opening or reading it (a directory, no
    permission, an I/O error) is one line, ``cannot read PATH: REASON`` (exit 2), and a UTF-8 byte-order mark at
    its start is skipped, as Python's ``utf-8-sig`` does (else it would glue itself to the first token)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below, with the read errors turned into one line)
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        try:
            if f.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
                f.seek(0)
            yield f
        except OSError as e:
            raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def read_input(path: str) -> bytes:
    """The bytes of input file `path` through `open_input` (no byte-order mark; OS errors as one line)."""
    with open_input(path) as f:
        return f.read()


def read_json(path: str, what: str | None = None, hint: str = ""):
    """The JSON value in input file `path`, read through `open_input`: a file that cannot be read is
    ``cannot read PATH: REASON``, one that is not UTF-8 JSON is ``WHAT is not JSON (DETAIL)HINT`` (`what`
    defaults to the path)."""
    data = read_input(path)
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as e:  # (UnicodeDecodeError is a ValueError)
        raise UserError(f"{what or path} is not JSON ({str(e)[:160]}){hint}") from None


@contextlib.contextmanager
def atomic_path(path: str):
    """``with atomic_path(path) as tmp: writer(tmp)``: for writers that take a file name (gensim, h5py,
    zipfile). What `tmp` holds when the block ends is fsynced and renamed to `path`; on any failure `tmp` is
    removed and `path` is left as it was."""
    tmp = tmp_name(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        raise os_error(e, path) from None
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb", encoding: str | None = None):
    """``with atomic_write(path) as f: f.write(...)``: `path` appears whole, or not at all."""
    with atomic_path(path) as tmp:
        try:
            with open(tmp, mode, encoding=encoding if "b" not in mode else None) as f:
                yield f
        except OSError as e:
            raise os_error(e, path) from None


def atomic_write_text(path: str, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)


def json_line(obj, indent: int | None = None) -> str:
    """`obj` as strict JSON: NaN and infinities become null (bare ``NaN`` is not JSON), numpy scalars plain."""
    return json.dumps(_json_safe(obj), indent=indent, allow_nan=False)


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) or type(obj).__module__ == "numpy":
        if hasattr(obj, "item"):
            obj = obj.item()
        if isinstance(obj, float) and not math.isfinite(obj):
            return None
    return obj


def atomic_write_json(path: str, obj, indent: int | None = 1) -> None:
    atomic_write_text(path, json_line(obj, indent) + "\n")


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_save_npy(path: str, arr) -> None:
    import numpy as np

    with atomic_write(path) as f:
        np.save(f, arr, allow_pickle=False)


def atomic_copy(src: str, dst: str) -> None:
    with open(src, "rb") as fin, atomic_write(dst) as fout:
        shutil.copyfileobj(fin, fout)


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_dir(src: str, dst: str) -> None:
    """Put folder `src` at `dst`, replacing an existing `dst` in one atomic exchange where the file system
    supports it (else: old aside, new in, old deleted); `src` is consumed."""
    try:
        if not os.path.lexists(dst):
            os.replace(src, dst)
        elif _exchange(src, dst):
            shutil.rmtree(src)
        else:
            aside = tmp_name(dst)
            os.replace(dst, aside)
            os.replace(src, dst)
            shutil.rmtree(aside)
    except OSError as e:
        raise os_error(e, dst) from None
    fsync_dir(os.path.dirname(os.path.abspath(dst)))


@contextlib.contextmanager
def built_dir(output: str):
    """Fill a folder under a temporary name beside `output` (yielded); when the block ends without an error
    it is fsynced and put at `output` (`replace_dir`), otherwise removed: `output` is the old folder or the
    complete new one, never a part. An OSError becomes a one-line UserError naming `output`."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = tmp_name(output)
    try:
        os.makedirs(tmp)
        yield tmp
        fsync_dir(tmp)
        replace_dir(tmp, output)
    except OSError as e:
        raise os_error(e, output) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move_files(src_dir: str, folder: str, names: list[str]) -> list[str]:
    """Rename the files `names` of `src_dir` into `folder` in that order, each fsynced first, then fsync
    `folder` (the last name is the one whose presence says the set is complete); returns the new paths."""
    out = []
    try:
        for name in names:
            src = os.path.join(src_dir, name)
            fd = os.open(src, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(src, os.path.join(folder, name))
            out.append(os.path.join(folder, name))
    except OSError as e:
        raise os_error(e, folder) from None
    fsync_dir(folder)
    return out


def remove_leftovers(folder: str) -> list[str]:
    """Delete the temporary files and folders that killed writers left in `folder`; returns their names."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in os.listdir(folder):
        if name.startswith(".") and TMP_MARK in name:
            pid = name.rsplit(TMP_MARK, 1)[1]
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue  # a live writer's file (another process on this machine)
            path = os.path.join(folder, name)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
            removed.append(name)
    if removed:
        fsync_dir(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_dirs(path: str) -> list[str]:
    """Create folder `path` and its missing parents; returns the folders this call created, outermost first
    (what `remove_made` takes away again when the work is refused)."""
    missing, p = [], os.path.abspath(path)
    while not os.path.lexists(p):
        missing.append(p)
        p = os.path.dirname(p)
    os.makedirs(path, exist_ok=True)
    return missing[::-1]


def remove_made(made: list[str]) -> None:
    """Remove the folders `make_dirs` created, innermost first, as long as they are empty."""
    for folder in reversed(made):
        try:
            os.rmdir(folder)
        except OSError:
            return


def writable_dir(path: str, flag: str) -> list[str]:
    """Create folder `path` if needed (returns the folders created, as `make_dirs`); one line when that is
    impossible (a file there, a read-only or virtual file system, no permission)."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise UserError(f"{flag} {path!r} exists and is not a folder; pick another path")
    try:
        made = make_dirs(path)
    except OSError as e:
        raise UserError(f"{flag} {path!r} cannot be created: {e.strerror or e}; pick a writable folder") from None
    if not os.access(path, os.W_OK):
        remove_made(made)
        raise UserError(f"{flag} {path!r} is not writable; pick a writable folder")
    return made


def refuse_existing(paths, flag: str, overwrite: bool, shown: str | None = None) -> None:
    """The one check every command that writes an output makes before any work: without `overwrite`, a
    UserError naming `flag` when something it would replace already exists.

    `paths` is one path or a list (the files and folders the command writes); a file counts when present, a
    folder when it is not empty. `shown` is the flag's value as the user gave it (default: the only path).
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if overwrite:
        return
    found = [p for p in paths if os.path.lexists(p) and not (os.path.isdir(p) and not os.listdir(p))]
    if not found:
        return
    if shown is None and len(paths) == 1:
        folder = os.path.isdir(found[0])
        what = "already exists and is not empty" if folder else "already exists"
        raise UserError(f"{flag} {os.fspath(found[0])!r} {what}; pick another {'folder' if folder else 'file'} "
                        f"or pass --overwrite to replace it")
    names = ", ".join(os.path.basename(os.fspath(p).rstrip(os.sep)) for p in found)
    raise UserError(f"{flag} {shown if shown is not None else os.fspath(paths[0])!r} already holds {names}; pick "
                    f"another {flag} or pass --overwrite to replace {'it' if len(found) == 1 else 'them'}")
