"""The one way paddle-lm reads weights from a file: nothing in the file can execute code.

``paddle.save`` writes a pickle; a pickle can name any Python callable, and ``paddle.load`` /
paddlenlp's ``from_pretrained`` call it. `safe_load` reads the same files with an unpickler that admits only
numpy arrays and plain containers, so a crafted file is refused instead of run. Every weight reader goes
through here: our checkpoints (`loads_state` on the sidecar-verified bytes), paddlenlp ``save_pretrained`` folders (`load_folder_state`:
``model.safetensors``, plain data by design, or ``model_state.pdparams`` through `safe_load`), and the
pickled ``.pdiparams.info`` beside a ``paddle.jit.save`` export (checked with `safe_load` before
``paddle.jit.load`` may read it).
"""

from __future__ import annotations

import io
import os
import pickle

import numpy as np

from paddle_lm.errors import UserError

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


def loads_state(data: bytes, path: str) -> dict:
    """A paddle.save'd state dict from `data` (read from `path`) as numpy arrays, running no code."""
    try:
        obj = _SafeUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError) as e:
        raise UserError(f"{path} is not a readable paddle-lm checkpoint file ({e})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} does not hold a state dict")
    obj.pop("StructuredToParameterName@@", None)
    return obj


def safe_load(path: str) -> dict:
    """Read a paddle.save'd state dict file as numpy arrays without running any code from it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    return loads_state(data, path)


#: the weight files of a paddlenlp save_pretrained folder, in the order they are looked for
FOLDER_WEIGHTS = ("model.safetensors", "model_state.pdparams")


def folder_weights(directory: str, flag: str = "--init_from_pretrained") -> str:
    """The weights file of save_pretrained folder `directory` (the first of FOLDER_WEIGHTS it holds)."""
    for name in FOLDER_WEIGHTS:
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    sharded = any(os.path.isfile(os.path.join(directory, n + ".index.json")) for n in FOLDER_WEIGHTS)
    raise UserError(f"{flag} {directory!r} has no weights ({' or '.join(FOLDER_WEIGHTS)})"
                    + ("; sharded weights (*.index.json) are not supported" if sharded else ""))


def load_folder_state(directory: str, flag: str = "--init_from_pretrained") -> dict:
    """The state dict (numpy arrays) of a save_pretrained folder, read without running any code from it."""
    path = folder_weights(directory, flag)
    if path.endswith(".pdparams"):
        state = safe_load(path)
        bad = [k for k, v in state.items() if not isinstance(v, np.ndarray)]
        if bad:
            raise UserError(f"{path} is not a weights file ({bad[0]!r} holds a {type(state[bad[0]]).__name__}, "
                            f"not an array)")
        return state
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError:
        raise UserError(f"{flag} {directory!r} only has safetensors weights ({path}); reading them needs the "
                        f"safetensors package (`pip install safetensors`)") from None
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None


def fit_state(layer, state: dict, what: str, hint: str = "", optional=lambda key: False) -> None:
    """The one way weights enter a model: load `state` (arrays or tensors by key) into `layer`, refusing with one
    line naming `what` (the file or folder) a weight of another shape, then keys the model lacks or does not find
    (`optional(key)` keys may be absent from `state`: left as built). `hint` ends the line (what to do)."""
    own = layer.state_dict()
    tail = f"; {hint}" if hint else ""
    shaped = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if shaped:
        k = shaped[0]
        more = f" (and {len(shaped) - 1} more)" if len(shaped) > 1 else ""
        raise UserError(f"{what}: weight {k} has shape {list(state[k].shape)} but the model's is "
                        f"{list(own[k].shape)}{more}{tail}")
    missing = [k for k in own if k not in state and not optional(k)]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise UserError(f"{what}: its weights do not fit the model (missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]}){tail}")
    import paddle

    fitted = {}
    for k, param in own.items():
        if k not in state:
            continue
        value = state[k]
        if str(value.dtype).split(".")[-1] != str(param.dtype).split(".")[-1]:  # e.g. float16 weights
            value = paddle.to_tensor(value).astype(param.dtype)
        fitted[k] = value
    layer.set_state_dict(fitted)
