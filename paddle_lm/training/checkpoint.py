"""Self-describing checkpoints: ``{prefix}.json`` (the sidecar) and the data files it lists.

- ``.pdparams``: model state dict (paddle.save format);
- ``.pdopt``: optimizer + LR-scheduler state (paddle.save format);
- ``.pdstate``: the carried recurrent state of every rank (npz, batch-first, ranks concatenated);
- ``.json``: the sidecar — config, vocabulary identity, step, data position, tokens seen, RNG scheme, world
  size, last metrics, and ``files``: each data file's name, size and SHA-256.

**One atomic commit.** The data files are written first (each atomically, fsynced), then the sidecar is
renamed into place: that rename is the commit. A checkpoint exists iff its sidecar does, and it is exactly the
files its sidecar lists, whatever moment a crash hits. The first save of a name uses ``{name}.pdparams`` etc.;
saving a name again (``final`` after a resume) writes the other slot, ``{name}.1.pdparams`` etc., commits,
then deletes the old slot, so the committed checkpoint is never overwritten in place. Readers verify size and
checksum and refuse a file that does not match with one line. `clean_folder` removes what a killed save left.

Loading never executes code (`paddle_lm.weights`).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import threading

import numpy as np

from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_write, atomic_write_json, fsync_dir, read_json, remove_leftovers
from paddle_lm.weights import loads_state

FORMAT = "paddle-lm-checkpoint/2"
READABLE = ("paddle-lm-checkpoint/1", FORMAT)  # /1: no file list, canonical names, no checksums
DATA_SUFFIXES = (".pdparams", ".pdopt", ".pdstate")
SUFFIXES = (*DATA_SUFFIXES, ".json")
SLOTS = ("", ".1")  # {name}{slot}{suffix}


class _Hashing:
    """A write-only file wrapper that counts and hashes what passes through."""

    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, b) -> int:
        self.sha.update(b)
        self.size += len(b)
        return self.f.write(b)

    def flush(self) -> None:
        self.f.flush()


def _write_data(path: str, write) -> dict:
    """``write(f)`` into `path` atomically through a counting, hashing wrapper; the sidecar's entry for it."""
    with atomic_write(path) as f:
        h = _Hashing(f)
        write(h)
    return {"file": os.path.basename(path), "bytes": h.size, "sha256": h.sha.hexdigest()}


def check_finite(state: dict, what: str) -> None:
    """UserError naming the first float tensor or array in `state` (nested dicts too) holding NaN or inf
    (tensors are reduced where they live: no host copy)."""
    for key, value in state.items():
        if isinstance(value, dict):
            check_finite(value, what)
        elif hasattr(value, "is_floating_point"):  # a paddle Tensor
            import paddle

            if value.is_floating_point() and value.size and not bool(paddle.isfinite(value).all()):
                raise UserError(f"refusing to save {what}: {key} holds non-finite values")
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
            raise UserError(f"refusing to save {what}: {key} holds non-finite values")


NAME_TABLE = "StructuredToParameterName@@"  # what paddle.save adds to a state dict: key -> parameter name


def host_state(state: dict) -> dict:
    """A host snapshot of a model or optimizer state dict: every tensor (nested dicts too) as its own numpy
    copy, other values as they are, plus paddle.save's name table — the layout ``paddle.save`` pickles, so
    ``paddle.load`` reads the file as usual. Training may go on changing the tensors while it is written."""
    out, names = {}, {}
    for key, value in state.items():
        if isinstance(value, dict):
            out[key] = {k: v for k, v in host_state(value).items() if k != NAME_TABLE}
        elif hasattr(value, "numpy") and hasattr(value, "name"):  # a paddle Tensor: .numpy() copies
            out[key], names[key] = value.numpy(), value.name
        else:
            out[key] = value
    out[NAME_TABLE] = names
    return out


def _pickler(obj):
    """A writer pickling `obj` (protocol 4, paddle.save's) straight into a file. No memo ("fast" mode: a state
    dict shares nothing), so each array's bytes are freed once written instead of kept until the end."""
    def write(f) -> None:
        p = pickle.Pickler(f, protocol=4)
        p.fast = True
        p.dump(obj)
    return write


def save_checkpoint(prefix: str, params: dict, opt_state: dict | None, carried: dict[str, np.ndarray] | None,
                    sidecar: dict) -> None:
    """Write a checkpoint and commit it with one rename of its sidecar (see the module doc).

    `params` / `opt_state` are state dicts of tensors or `host_state` snapshots; each is pickled straight into
    its file (no second copy of the whole pickle in memory). `opt_state` and `carried` are None for weights with
    no training state (an imported encoder): those files are then not written, and not listed."""
    params, opt_state = (s if s is None or NAME_TABLE in s else host_state(s) for s in (params, opt_state))
    check_finite(params, prefix)
    if opt_state is not None:
        check_finite(opt_state, prefix)
    folder, name = os.path.split(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    old = _committed_files(prefix)
    slot = SLOTS[1] if old and any(f == name + SLOTS[0] + s for s in DATA_SUFFIXES for f in old) else SLOTS[0]
    base = os.path.join(folder, name + slot)
    files = {}
    carried_npz = io.BytesIO()  # small; np.savez needs a seekable file
    np.savez(carried_npz, **(carried or {}))
    writers = {".pdparams": _pickler(params), ".pdopt": _pickler(opt_state),
               ".pdstate": lambda f: f.write(carried_npz.getvalue())}
    for suf, given in ((".pdopt", opt_state), (".pdstate", carried)):
        if given is None:
            del writers[suf]
    try:
        for suf, write in writers.items():
            files[suf] = _write_data(base + suf, write)
        atomic_write_json(prefix + ".json", {"format": FORMAT, **sidecar, "files": files})  # the commit
    except BaseException:  # a full disk, Ctrl-C: the uncommitted slot goes, the committed checkpoint stays
        for entry in files.values():
            _remove(os.path.join(folder, entry["file"]))
        raise
    for f in set(old) - {v["file"] for v in files.values()}:
        _remove(os.path.join(folder, f))
    fsync_dir(folder)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _committed_files(prefix: str) -> list[str]:
    """File names the committed sidecar of `prefix` lists (canonical names for format /1), or []."""
    try:
        side = read_json(prefix + ".json")
    except UserError:
        return []
    return _listed(os.path.basename(prefix), side)


def _listed(name: str, side: dict) -> list[str]:
    files = side.get("files")
    if isinstance(files, dict):
        return [v["file"] for v in files.values() if isinstance(v, dict) and "file" in v]
    return [name + s for s in DATA_SUFFIXES]


def resolve_prefix(arg: str, flag: str = "--init_from_ckpt", allow_suffix: bool = False) -> str:
    """Validate a checkpoint prefix such as ``checkpoints/1000`` and return it."""
    for suf in SUFFIXES:
        if arg.endswith(suf):
            if allow_suffix:
                arg = arg[: -len(suf)]
                if re.search(r"\.1$", arg) and not os.path.isfile(arg + ".json"):
                    arg = arg[:-2]  # the second slot's file name, e.g. final.1.pdparams
                break
            raise UserError(f"{flag} {arg!r}: pass the prefix without {suf!r}, e.g. {flag}={arg[: -len(suf)]}")
    if os.path.isdir(arg):
        raise UserError(f"{flag} {arg!r} is a folder; pass a checkpoint prefix such as {os.path.join(arg, 'final')}"
                        + _available(arg))
    if not os.path.isfile(arg + ".json"):
        raise UserError(f"{flag} {arg!r}: no checkpoint there (missing {arg}.json)"
                        + _available(os.path.dirname(arg) or "."))
    return arg


RESUME_NEWEST = ("latest", "auto")  # --init_from_ckpt values resolved in --save_dir


def newest(folder: str) -> str:
    """Name of the most recently committed checkpoint in `folder` ("" when none): the largest ``saved_at`` in
    the sidecars (so a run resumed from an earlier step wins over the steps it abandoned), then the step."""
    best, key = "", None
    for name in list_checkpoints(folder):
        try:
            side = read_sidecar(os.path.join(folder, name))
        except UserError:
            continue
        k = (float(side.get("saved_at", 0.0)), int(side.get("step", 0)), name == "final")
        if key is None or k > key:
            best, key = name, k
    return best


def resolve_resume(arg: str, save_dir: str) -> str:
    """The checkpoint prefix that ``--init_from_ckpt ARG`` names: a prefix, ``latest`` (the newest checkpoint in
    `save_dir`, which must exist) or ``auto`` (the newest, or "" to start afresh when there is none) — so a
    preempted job restarts with the same command line."""
    if arg not in RESUME_NEWEST:
        return resolve_prefix(arg) if arg else ""
    name = newest(save_dir)
    if not name:
        if arg == "auto":
            return ""
        raise UserError(f"--init_from_ckpt latest: --save_dir {save_dir!r} holds no checkpoint yet; use "
                        f"--init_from_ckpt auto to start afresh when there is none")
    return os.path.join(save_dir, name)


def _available(folder: str) -> str:
    found = list_checkpoints(folder)
    return f"; checkpoints in {folder}: {', '.join(found)}" if found else ""


def list_checkpoints(folder: str) -> list[str]:
    """Committed checkpoint names in a folder, numeric steps ascending, then 'final'."""
    if not os.path.isdir(folder):
        return []
    names = [f[:-5] for f in os.listdir(folder) if f.endswith(".json") and
             (re.fullmatch(r"\d+", f[:-5]) or f == "final.json")]
    steps = sorted((n for n in names if n != "final"), key=int)
    return steps + (["final"] if "final" in names else [])


def read_sidecar(prefix: str) -> dict:
    side = read_json(prefix + ".json", f"checkpoint sidecar {prefix}.json")
    if not isinstance(side, dict) or side.get("format") not in READABLE:
        raise UserError(f"{prefix}.json is not a paddle-lm checkpoint "
                        f"(format {side.get('format') if isinstance(side, dict) else None!r})")
    return side


def describe_source(side: dict) -> str:
    """Where a checkpoint's weights came from, for messages: an import's source files, or its training step."""
    source = side.get("source")
    if isinstance(source, dict) and "weights" in source:
        return f"imported from {source.get('format', '?')} {os.path.basename(str(source['weights']))}"
    return f"step {side.get('step')}"


def is_checkpoint(prefix: str) -> bool:
    """Is `prefix` a paddle-lm checkpoint (a readable sidecar at ``prefix.json``)? Needs no Paddle."""
    if not os.path.isfile(prefix + ".json"):
        return False
    try:
        read_sidecar(prefix)
    except UserError:
        return False
    return True


def read_verified(prefix: str, side: dict, suffix: str, required: bool = True) -> bytes | None:
    """The bytes of checkpoint `prefix`'s `suffix` file, checked against the size and SHA-256 its sidecar
    records; None when the file is absent and not `required`."""
    folder = os.path.dirname(prefix)
    entry = side.get("files", {}).get(suffix) if isinstance(side.get("files"), dict) else None
    path = os.path.join(folder, entry["file"]) if entry else prefix + suffix
    if side.get("format") == FORMAT and entry is None:
        if required:
            raise UserError(f"checkpoint {prefix} has no {suffix} file (its sidecar lists none)")
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if not required:
            return None
        raise UserError(f"{path} is missing: checkpoint {prefix} is incomplete (it was deleted or not copied); "
                        f"use another checkpoint") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if entry:
        if len(data) != entry["bytes"]:
            raise UserError(f"{path} has {len(data):,} bytes but its sidecar {prefix}.json says {entry['bytes']:,}: "
                            f"the file is truncated or damaged; use another checkpoint")
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise UserError(f"{path} does not match the checksum in {prefix}.json: the file was changed or damaged; "
                            f"use another checkpoint")
    return data


#: what fit_state adds when a checkpoint's weights do not fit its own sidecar's config
DAMAGED = "the weights do not fit the checkpoint's own config: it is damaged"


def load_params(prefix: str, side: dict) -> dict:
    """The model state dict of a checkpoint (verified; no code runs)."""
    return loads_state(read_verified(prefix, side, ".pdparams"), prefix + ".pdparams")


def load_optimizer(prefix: str, side: dict) -> dict:
    """The optimizer + LR-scheduler state of a checkpoint (verified; required to resume)."""
    return loads_state(read_verified(prefix, side, ".pdopt"), prefix + ".pdopt")


def load_carried(prefix: str, side: dict) -> dict[str, np.ndarray]:
    """The carried recurrent state of every rank (verified; required to resume)."""
    data = read_verified(prefix, side, ".pdstate")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise UserError(f"{prefix}.pdstate is not readable ({e}); use another checkpoint") from None


def remove_checkpoint(folder: str, name: str) -> None:
    """Delete one checkpoint, sidecar first (so it is never half there)."""
    prefix = os.path.join(folder, name)
    listed = _committed_files(prefix)
    _remove(prefix + ".json")
    for f in listed:
        _remove(os.path.join(folder, f))


def clean_folder(folder: str) -> list[str]:
    """Remove what killed saves left in `folder`: temporary files, and data files no sidecar lists."""
    removed = remove_leftovers(folder)
    if not os.path.isdir(folder):
        return removed
    listed = set()
    for name in list_checkpoints(folder):
        listed.update(_committed_files(os.path.join(folder, name)))
    pattern = re.compile(r"(\d+|final)(\.1)?(" + "|".join(re.escape(s) for s in DATA_SUFFIXES) + r")")
    for f in os.listdir(folder):
        if pattern.fullmatch(f) and f not in listed:
            _remove(os.path.join(folder, f))
            removed.append(f)
    if removed:
        fsync_dir(folder)
    return removed


def prune(folder: str, keep_last: int, newest: int) -> list[str]:
    """Delete numbered checkpoints older than the newest `keep_last` up to step `newest` (the one just
    saved); checkpoints of later steps (an abandoned future of a run resumed from earlier) and ``final`` are
    never touched, so pruning can never remove the newest good checkpoint. Returns the names removed."""
    if keep_last <= 0:
        return []
    steps = [n for n in list_checkpoints(folder) if n != "final" and int(n) <= newest]
    doomed = steps[:-keep_last]
    for name in doomed:
        remove_checkpoint(folder, name)
    if doomed:
        fsync_dir(folder)
    return doomed


class BackgroundWriter:
    """Writes checkpoints in a thread while training goes on: `submit(fn)` first waits for the write before
    (so one snapshot at most is in flight), `check()` re-raises a failed write's error (a full disk) at the
    next step boundary, `wait()` finishes the write in flight (before exiting or naming a checkpoint)."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _run(self, fn) -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 (handed to the training thread by check() / wait())
            self._error = e

    def submit(self, fn) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(fn,), name="checkpoint-writer")
        self._thread.start()

    def check(self) -> None:
        if self._thread is not None and not self._thread.is_alive():
            self.wait()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

