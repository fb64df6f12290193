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

import contextlib
import io
import os
import pickle

import numpy as np

from paddle_lm.errors import UserError
from paddle_lm.fsio import read_input, read_json

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
    return loads_state(read_input(path), path)


#: the weight files of a pretrained folder (paddlenlp save_pretrained or Hugging Face), in the order looked for
FOLDER_WEIGHTS = ("model.safetensors", "model_state.pdparams")
#: sharded safetensors: the index that lists the shard of every weight
SHARD_INDEX = "model.safetensors.index.json"
#: pickled PyTorch weights, never read (unpickling runs whatever the file names)
PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TO_SAFETENSORS = ("convert it once where transformers is installed: AutoModelForMaskedLM (or AutoModelForCausalLM)"
                  ".from_pretrained(DIR).save_pretrained(NEW_DIR, safe_serialization=True), and pass NEW_DIR")


def folder_weights(directory: str, flag: str = "--init_from_pretrained") -> list[str]:
    """The weight files of pretrained folder `directory`: the first of FOLDER_WEIGHTS it holds, else the shards
    its SHARD_INDEX names (each checked to exist). Pickled PyTorch weights are refused with how to convert them."""
    for name in FOLDER_WEIGHTS:
        if os.path.isfile(os.path.join(directory, name)):
            return [os.path.join(directory, name)]
    index = os.path.join(directory, SHARD_INDEX)
    if os.path.isfile(index):
        return _shards(index)
    pickled = [n for n in PICKLED if os.path.isfile(os.path.join(directory, n))]
    if pickled:
        raise UserError(f"{flag} {directory!r} only has pickled PyTorch weights ({pickled[0]}), which paddle-lm "
                        f"never unpickles; {TO_SAFETENSORS}")
    raise UserError(f"{flag} {directory!r} has no weights ({', '.join(FOLDER_WEIGHTS)} or {SHARD_INDEX})")


def _shards(index: str) -> list[str]:
    raw = read_json(index)
    try:
        names = sorted(set(raw["weight_map"].values()))
    except (KeyError, TypeError, AttributeError):
        raise UserError(f"{index} is not a safetensors shard index (a JSON object with a weight_map)") from None
    folder = os.path.dirname(index)
    bad = [n for n in names if not isinstance(n, str) or os.path.basename(n) != n]
    if bad or not names:
        raise UserError(f"{index} names no shards or a shard outside its folder ({bad[:1] or 'none'})")
    missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise UserError(f"{index} lists shard {missing[0]}, which is not in {folder!r}"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return [os.path.join(folder, n) for n in names]


def folder_weight_names(directory: str, flag: str = "--init_from_pretrained") -> list[str]:
    """The weight names of pretrained folder `directory` without reading the weights (safetensors headers, a
    shard index); empty for a ``.pdparams`` file (paddlenlp's format, whose names only a full read gives)."""
    paths = folder_weights(directory, flag)
    if paths[0].endswith(".pdparams"):
        return []
    names = []
    for path in paths:
        with _safetensors_errors(path) as safe_open, safe_open(path, framework="numpy") as f:
            names.extend(f.keys())
    return names


@contextlib.contextmanager
def _safetensors_errors(path: str):
    """Yield safetensors' ``safe_open``; its errors (and a missing package) become one line naming `path`."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise UserError(f"reading {path} needs the safetensors package (`pip install safetensors`)") from None
    try:
        yield safe_open
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None


def load_folder_state(directory: str, flag: str = "--init_from_pretrained") -> dict:
    """The state dict (numpy arrays) of a pretrained folder, read without running any code from it; a weight
    found in two shards is refused."""
    paths = folder_weights(directory, flag)
    if paths[0].endswith(".pdparams"):
        state = safe_load(paths[0])
        bad = [k for k, v in state.items() if not isinstance(v, np.ndarray)]
        if bad:
            raise UserError(f"{paths[0]} is not a weights file ({bad[0]!r} holds a {type(state[bad[0]]).__name__}, "
                            f"not an array)")
        return state
    state: dict = {}
    for path in paths:
        with _safetensors_errors(path) as safe_open, safe_open(path, framework="numpy") as f:
            keys = f.keys()
            for key in keys:
                if key in state:
                    raise UserError(f"{path}: weight {key} is also in another shard")
                state[key] = f.get_tensor(key)
    return state


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
        if k not in state:  # an optional key: keeps the value the model was built with
            fitted[k] = param
            continue
        value = state[k]
        if str(value.dtype).split(".")[-1] != str(param.dtype).split(".")[-1]:  # e.g. float16 weights
            value = paddle.to_tensor(value).astype(param.dtype)
        fitted[k] = value
    layer.set_state_dict(fitted)
