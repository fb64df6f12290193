"""Self-describing checkpoints: ``{prefix}.pdparams`` / ``.pdopt`` / ``.pdstate`` / ``.json``.

- ``.pdparams``: model state dict (paddle.save format);
- ``.pdopt``: optimizer + LR-scheduler state (paddle.save format);
- ``.pdstate``: the carried recurrent state of every rank (npz, batch-first, ranks concatenated);
- ``.json``: the sidecar — config, vocabulary identity, step, data position, tokens seen, RNG scheme,
  world size, last metrics. Written last: a checkpoint exists iff its sidecar does.

Every file is written under a temporary name and renamed, so a crash mid-save never leaves a broken
checkpoint. Loading never executes code: the pickle reader only admits numpy arrays and plain containers.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re

import numpy as np

from paddle_lm.errors import UserError

FORMAT = "paddle-lm-checkpoint/1"
SUFFIXES = (".pdparams", ".pdopt", ".pdstate", ".json")

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def safe_load(path: str) -> dict:
    """Read a paddle.save'd state dict as numpy arrays without running any code from the file."""
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(io.BytesIO(f.read())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise UserError(f"{path} is not a readable paddle-lm checkpoint file ({e})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} does not hold a state dict")
    obj.pop("StructuredToParameterName@@", None)
    return obj


def _atomic(path: str, write) -> None:
    """Call write(buffer), then put the bytes at `path` via a temporary file and a rename."""
    buf = io.BytesIO()
    write(buf)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(prefix: str, params: dict, opt_state: dict, carried: dict[str, np.ndarray], sidecar: dict) -> None:
    """Write all four files of a checkpoint atomically, the sidecar last."""
    import paddle

    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    _atomic(prefix + ".pdparams", lambda f: paddle.save(params, f))
    _atomic(prefix + ".pdopt", lambda f: paddle.save(opt_state, f))
    _atomic(prefix + ".pdstate", lambda f: np.savez(f, **carried))
    body = json.dumps({"format": FORMAT, **sidecar}, indent=1, default=float).encode()
    _atomic(prefix + ".json", lambda f: f.write(body))


def resolve_prefix(arg: str, flag: str = "--init_from_ckpt", allow_suffix: bool = False) -> str:
    """Validate a checkpoint prefix such as ``checkpoints/1000`` and return it."""
    for suf in SUFFIXES:
        if arg.endswith(suf):
            if allow_suffix:
                arg = arg[: -len(suf)]
                break
            raise UserError(f"{flag} {arg!r}: pass the prefix without {suf!r}, e.g. {flag}={arg[: -len(suf)]}")
    if os.path.isdir(arg):
        raise UserError(f"{flag} {arg!r} is a folder; pass a checkpoint prefix such as {os.path.join(arg, 'final')}"
                        + _available(arg))
    missing = [s for s in (".json", ".pdparams") if not os.path.isfile(arg + s)]
    if missing:
        raise UserError(f"{flag} {arg!r}: no checkpoint there (missing {', '.join(arg + s for s in missing)})"
                        + _available(os.path.dirname(arg) or "."))
    return arg


def _available(folder: str) -> str:
    found = list_checkpoints(folder)
    return f"; checkpoints in {folder}: {', '.join(found)}" if found else ""


def list_checkpoints(folder: str) -> list[str]:
    """Complete checkpoint names in a folder, numeric steps ascending, then 'final'."""
    if not os.path.isdir(folder):
        return []
    names = [f[:-5] for f in os.listdir(folder) if f.endswith(".json") and os.path.isfile(os.path.join(folder, f[:-5] + ".pdparams"))]
    steps = sorted((n for n in names if re.fullmatch(r"\d+", n)), key=int)
    return steps + (["final"] if "final" in names else [])


def read_sidecar(prefix: str) -> dict:
    try:
        with open(prefix + ".json", encoding="utf-8") as f:
            side = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{prefix}.json is not a readable checkpoint sidecar ({e})") from None
    if side.get("format") != FORMAT:
        raise UserError(f"{prefix}.json is not a paddle-lm checkpoint (format {side.get('format')!r})")
    return side


def load_carried(prefix: str) -> dict[str, np.ndarray]:
    path = prefix + ".pdstate"
    if not os.path.isfile(path):
        return {}
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def prune(folder: str, keep_last: int) -> None:
    """Delete all but the newest `keep_last` numbered checkpoints (sidecar first, so none is half-deleted)."""
    if keep_last <= 0:
        return
    steps = [n for n in list_checkpoints(folder) if n != "final"]
    for name in steps[:-keep_last]:
        for suf in SUFFIXES:
            p = os.path.join(folder, name + suf)
            if os.path.exists(p):
                os.remove(p)
