"""bilm-tf's ELMo format: ``options.json`` (the architecture) + ``weights.hdf5`` (the encoder's weights).

The released ELMo models and every model AllenNLP users trained come as this pair; AllenNLP's ``Elmo`` reads it.
Conversion is pure re-layout; the conventions that differ from paddle-lm's (each one breaks bilm-tf's own test
fixture when left out):

- **char ids**: bilm-tf feeds raw id + 1 (0 = missing token): bytes 1-256, ``<S>`` char 257, ``</S>`` char 258,
  begin-of-word 259, end-of-word 260, char padding 261; its hdf5 ``char_embed`` holds rows 1..261 (bilm-tf
  prepends the zero row at load time). paddle-lm: bytes 1-256, then BOW, EOW, PAD, BOS, EOS (data/chars.py);
- **char-CNN**: ``CNN/W_cnn_i`` ``[1, width, E, count]`` (a conv2d kernel) is Paddle's Conv1D ``[count, E,
  width]``; the bias is added before max-pooling there, after it here (the same); highway ``W_carry`` is the gate
  that multiplies ``relu(W_transform x)``; there is no ``CNN_proj`` when the filters add up to projection_dim;
- **LSTM**: ``W_0`` ``[input + output, 4H]`` over ``concat([x, h])``, gate blocks (i, j, f, o); Paddle's cell
  keeps ``weight_ih [4H, input]`` / ``weight_hh [4H, output]`` in gate order (i, f, j, o); TF adds a forget bias of
  1.0 at run time and does not store it; ``W_P_0 [H, P]`` is the projection; clip ``null`` = paddle-lm's 0;
- ``use_skip_connections`` is paddle-lm's ``residual``; ``RNN_0`` is the forward direction, ``RNN_1`` the backward.

Shape letters: E char embedding size, F total char-CNN filters, P projection_dim, H LSTM cell size.
"""

from __future__ import annotations

import json

import numpy as np

from paddle_lm.config import ModelConfig, min_chars_per_token
from paddle_lm.data.chars import BOS_CHAR, BOW_CHAR, CHAR_VOCAB_SIZE, EOS_CHAR, EOW_CHAR, PAD_CHAR
from paddle_lm.errors import UserError
from paddle_lm.fsio import read_json

FORGET_BIAS = 1.0  # what TF's LSTMCell adds to the forget gate at run time
#: Keys of a bilm-tf options file that describe how the model was trained, not the function it computes: kept
#: in the imported checkpoint's sidecar (``source.options``), used by nothing.
TRAINING_KEYS = ("n_epochs", "n_train_tokens", "batch_size", "n_tokens_vocab", "unroll_steps",
                 "n_negative_samples_batch", "all_clip_norm")
LSTM_KEYS = ("dim", "projection_dim", "n_layers", "cell_clip", "proj_clip", "use_skip_connections")
CHAR_CNN_KEYS = ("embedding", "filters", "n_highway", "activation", "n_characters", "max_characters_per_token")
#: n_characters: 261 as bilm-tf trains, 262 as its inference graph (and the released options) say
N_CHARACTERS = (261, 262)
#: bilm-tf's char id (the Batcher's raw id + 1) of paddle-lm's special char ids; bytes are the same ids 1-256
_BILM_SPECIAL = {BOS_CHAR: 257, EOS_CHAR: 258, BOW_CHAR: 259, EOW_CHAR: 260, PAD_CHAR: 261}


def hdf5_char_rows() -> np.ndarray:
    """``[261]``: the hdf5 ``char_embed`` row of each paddle-lm char id 1..261 (row = bilm-tf id - 1)."""
    ids = np.arange(CHAR_VOCAB_SIZE)  # paddle-lm id -> bilm-tf id, bytes unchanged
    for ours, theirs in _BILM_SPECIAL.items():
        ids[ours] = theirs
    return ids[1:] - 1


def gate_order(h: int) -> np.ndarray:
    """``[4H]`` column permutation between TF's gate blocks (i, j, f, o) and Paddle's (i, f, j, o), either way
    (it swaps blocks 1 and 2, so it is its own inverse)."""
    return np.concatenate([np.arange(k * h, (k + 1) * h) for k in (0, 2, 1, 3)])


# ---------------------------------------------------------------------------------------------- options
def _number(value, what: str, path: str, *, minimum: float = 1, integer: bool = True, allow_null: bool = False):
    """`value` checked to be a number (an integer with `integer`) of at least `minimum`; null = 0 if allowed."""
    if value is None and allow_null:
        return 0
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value < minimum:
        kind = f"{'an integer' if integer else 'a number'} >= {minimum}" + (" or null" if allow_null else "")
        raise UserError(f"--options {path}: {what} must be {kind}, not {json.dumps(value)}")
    return value


def read_options(path: str) -> dict:
    """The JSON object of a bilm-tf options file (one line on anything else)."""
    opts = read_json(path, f"--options {path}", "; pass bilm-tf's options.json")
    if not isinstance(opts, dict):
        raise UserError(f"--options {path} is not bilm-tf options (a JSON {type(opts).__name__}, not an object)")
    return opts


def options_to_config(opts: dict, path: str) -> tuple[ModelConfig, int]:
    """(ModelConfig, max_characters_per_token) of bilm-tf options `opts` read from `path`. Every key maps to a
    field or is refused by name; the keys in TRAINING_KEYS are accepted and used by nothing."""
    if "lstm" not in opts:
        raise UserError(f"--options {path} is not bilm-tf ELMo options: it has no 'lstm' section")
    if "char_cnn" not in opts:
        raise UserError(f"--options {path}: a token-embedding biLM (no 'char_cnn' section) is not supported; "
                        f"paddle-lm's ELMo reads characters")
    allowed = {"lstm", "char_cnn", "dropout", "bidirectional", "share_embedding_softmax", *TRAINING_KEYS}
    for key in opts:
        if key not in allowed:
            raise UserError(f"--options {path}: option {key!r} is not one paddle-lm knows; it cannot be honoured")
    if opts.get("bidirectional", True) is not True:
        raise UserError(f"--options {path}: bidirectional {json.dumps(opts['bidirectional'])} is not supported "
                        f"(paddle-lm's ELMo is a biLM)")
    if opts.get("share_embedding_softmax"):
        raise UserError(f"--options {path}: share_embedding_softmax needs a token-embedding input; not supported")
    lstm, cnn = opts["lstm"], opts["char_cnn"]
    for name, section, keys in (("lstm", lstm, LSTM_KEYS), ("char_cnn", cnn, CHAR_CNN_KEYS)):
        if not isinstance(section, dict):
            raise UserError(f"--options {path}: '{name}' must be an object")
        for key in section:
            if key not in keys:
                raise UserError(f"--options {path}: option {name}.{key} is not one paddle-lm knows; it cannot be "
                                f"honoured")
    for key in ("dim", "n_layers"):
        if key not in lstm:
            raise UserError(f"--options {path}: lstm.{key} is missing")
    dim = _number(lstm["dim"], "lstm.dim", path)
    proj = _number(lstm.get("projection_dim", dim), "lstm.projection_dim", path)
    if proj > dim:
        raise UserError(f"--options {path}: lstm.projection_dim {proj} > lstm.dim {dim} is not supported (bilm-tf "
                        f"then runs an unprojected LSTM whose output size is dim, not projection_dim)")
    for key in ("filters", "embedding", "n_characters", "max_characters_per_token"):
        if key not in cnn:
            raise UserError(f"--options {path}: char_cnn.{key} is missing")
    filters = cnn["filters"]
    if not (isinstance(filters, list) and filters and all(
            isinstance(wc, list) and len(wc) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                           for v in wc) for wc in filters)):
        raise UserError(f"--options {path}: char_cnn.filters must be a list of [width, count] pairs of positive "
                        f"integers, not {json.dumps(filters)}")
    if cnn["n_characters"] not in N_CHARACTERS:
        raise UserError(f"--options {path}: char_cnn.n_characters {json.dumps(cnn['n_characters'])} is not "
                        f"supported (bilm-tf's character set has 261, or 262 with the padding row)")
    embedding = cnn["embedding"]
    if not isinstance(embedding, dict) or set(embedding) != {"dim"}:
        raise UserError(f"--options {path}: char_cnn.embedding must be {{\"dim\": N}}, not {json.dumps(embedding)}")
    activation = cnn.get("activation", "relu")
    if activation not in ("relu", "tanh"):
        raise UserError(f"--options {path}: char_cnn.activation {json.dumps(activation)} is not supported "
                        f"(relu or tanh)")
    skip = lstm.get("use_skip_connections", False)
    if not isinstance(skip, bool):
        raise UserError(f"--options {path}: lstm.use_skip_connections must be true or false")
    dropout = _number(opts.get("dropout", 0.0), "dropout", path, minimum=0, integer=False)
    if dropout >= 1:
        raise UserError(f"--options {path}: dropout {dropout} must be below 1")
    cfg = ModelConfig(
        model="elmo", char_embed_dim=_number(embedding["dim"], "char_cnn.embedding.dim", path),
        filters=[list(wc) for wc in filters],
        num_highways=_number(cnn.get("n_highway", 0), "char_cnn.n_highway", path, minimum=0),
        cnn_activation=activation, projection_dim=proj, cell_size=dim,
        num_layers=_number(lstm["n_layers"], "lstm.n_layers", path),
        cell_clip=float(_number(lstm.get("cell_clip"), "lstm.cell_clip", path, minimum=0, integer=False,
                                allow_null=True)),
        proj_clip=float(_number(lstm.get("proj_clip"), "lstm.proj_clip", path, minimum=0, integer=False,
                                allow_null=True)),
        residual=skip, dropout=float(dropout),
    )
    max_chars = _number(cnn["max_characters_per_token"], "char_cnn.max_characters_per_token", path)
    if max_chars < min_chars_per_token(cfg.filters):
        raise UserError(f"--options {path}: char_cnn.max_characters_per_token {max_chars} is narrower than the "
                        f"widest filter ({min_chars_per_token(cfg.filters)})")
    return cfg, max_chars


def config_to_options(cfg: ModelConfig, max_chars: int) -> dict:
    """bilm-tf options for a paddle-lm ELMo config (n_characters 262, as bilm-tf's inference graph wants)."""
    return {
        "lstm": {"dim": cfg.cell_size, "projection_dim": cfg.projection_dim, "n_layers": cfg.num_layers,
                 "cell_clip": cfg.cell_clip or None, "proj_clip": cfg.proj_clip or None,
                 "use_skip_connections": bool(cfg.residual)},
        "char_cnn": {"embedding": {"dim": cfg.char_embed_dim}, "filters": [list(wc) for wc in cfg.filters],
                     "n_highway": cfg.num_highways, "activation": cfg.cnn_activation, "n_characters": 262,
                     "max_characters_per_token": max_chars},
    }


# ---------------------------------------------------------------------------------------------- weights
def _projected(cfg: ModelConfig) -> bool:
    return cfg.projection_dim < cfg.cell_size


def _has_cnn_projection(cfg: ModelConfig) -> bool:
    return sum(count for _, count in cfg.filters) != cfg.projection_dim


def cell_name(direction: int, layer: int) -> str:
    return f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell/"


def dataset_shapes(cfg: ModelConfig) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(the datasets a bilm-tf weights file of `cfg` holds, with their shapes; the identity datasets it may hold
    besides: where bilm-tf has no projection, AllenNLP still reads ``CNN_proj`` and ``W_P_0``, which an export
    then writes as the identity and zeros)."""
    e, p, h = cfg.char_embed_dim, cfg.projection_dim, cfg.cell_size
    nf = sum(count for _, count in cfg.filters)
    shapes = {"char_embed": (CHAR_VOCAB_SIZE - 1, e)}
    for i, (width, count) in enumerate(cfg.filters):
        shapes[f"CNN/W_cnn_{i}"], shapes[f"CNN/b_cnn_{i}"] = (1, width, e, count), (count,)
    for i in range(cfg.num_highways):
        for part in ("carry", "transform"):
            shapes[f"CNN_high_{i}/W_{part}"], shapes[f"CNN_high_{i}/b_{part}"] = (nf, nf), (nf,)
    identity = {}
    cnn_proj = shapes if _has_cnn_projection(cfg) else identity
    cnn_proj["CNN_proj/W_proj"], cnn_proj["CNN_proj/b_proj"] = (nf, p), (p,)
    out = p if _projected(cfg) else h
    for d in (0, 1):
        for layer in range(cfg.num_layers):
            name = cell_name(d, layer)
            shapes[name + "W_0"], shapes[name + "B"] = (p + out, 4 * h), (4 * h,)
            (shapes if _projected(cfg) else identity)[name + "W_P_0"] = (h, p)
    return shapes, identity


def _is_identity(value: np.ndarray) -> bool:
    """An identity matrix, or a zero vector."""
    return not value.any() if value.ndim == 1 else np.array_equal(value, np.eye(*value.shape, dtype=value.dtype))


def read_weights(path: str, cfg: ModelConfig, options_path: str) -> dict[str, np.ndarray]:
    """Every dataset of bilm-tf weights file `path` that `cfg` needs, checked for presence, shape and finite
    values; a dataset `cfg` does not describe is refused too (the options do not fit the weights)."""
    import h5py

    needed, identity = dataset_shapes(cfg)
    expected = {**needed, **identity}
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise UserError(f"--weights {path!r} does not exist") from None
    except OSError as e:
        raise UserError(f"--weights {path} is not a readable HDF5 file ({str(e).splitlines()[0]})") from None
    with f:
        found: list[str] = []
        f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
        extra = sorted(set(found) - set(expected))
        if extra:
            raise UserError(f"--weights {path} holds {extra[0]!r}, which --options {options_path} does not describe "
                            f"(the options do not fit these weights)")
        out = {}
        for name, shape in expected.items():
            if name in identity and name not in found:
                continue
            if name not in found:
                raise UserError(f"--weights {path} lacks dataset {name!r}, which --options {options_path} implies "
                                f"(the options do not fit these weights, or the file is incomplete)")
            ds = f[name]
            if tuple(ds.shape) != shape:
                raise UserError(f"--weights {path}: {name} has shape {list(ds.shape)}, --options {options_path} "
                                f"implies {list(shape)} (the options do not fit these weights)")
            try:
                value = np.asarray(ds[...], dtype=np.float32)
            except (OSError, ValueError, TypeError) as e:
                raise UserError(f"--weights {path}: dataset {name} cannot be read ({str(e).splitlines()[0]}); the "
                                f"file is damaged or truncated") from None
            if not np.isfinite(value).all():
                raise UserError(f"--weights {path}: dataset {name} holds non-finite values")
            if name in identity and not _is_identity(value):
                raise UserError(f"--weights {path}: {name} is not the identity, but --options {options_path} say "
                                f"bilm-tf uses no projection there (the options do not fit these weights)")
            out[name] = value
    return out


def set_weights(model, cfg: ModelConfig, w: dict[str, np.ndarray]) -> None:
    """Put bilm-tf datasets `w` (as `read_weights` returns them) into ELMo `model` built from `cfg`."""
    enc = model.token_encoder
    char = np.zeros((CHAR_VOCAB_SIZE, cfg.char_embed_dim), np.float32)  # id 0 (missing token) stays zero
    char[1:] = w["char_embed"][hdf5_char_rows()]
    enc.char_embedding.weight.set_value(char)
    for i, conv in enumerate(enc.convs):
        conv.weight.set_value(w[f"CNN/W_cnn_{i}"][0].transpose(2, 1, 0))  # [count, E, width]
    enc.conv_bias.set_value(np.concatenate([w[f"CNN/b_cnn_{i}"] for i in range(len(cfg.filters))]))
    for i, layer in enumerate(enc.highway.layers):
        g = f"CNN_high_{i}/"
        layer.weight.set_value(np.concatenate([w[g + "W_transform"], w[g + "W_carry"]], axis=1))  # [F, 2F]
        layer.bias.set_value(np.concatenate([w[g + "b_transform"], w[g + "b_carry"]]))  # [2F]
    if _has_cnn_projection(cfg):
        enc.projection.weight.set_value(w["CNN_proj/W_proj"])
        enc.projection.bias.set_value(w["CNN_proj/b_proj"])
    else:  # bilm-tf has no projection here: the identity
        enc.projection.weight.set_value(np.eye(cfg.projection_dim, dtype=np.float32))
        enc.projection.bias.set_value(np.zeros(cfg.projection_dim, np.float32))
    h, p = cfg.cell_size, cfg.projection_dim
    perm = gate_order(h)
    for d, stack in enumerate((model.forward_lstm, model.backward_lstm)):
        for layer, lstm in enumerate(stack.layers):
            cell, name = lstm.lstm[0].cell, cell_name(d, layer)
            kernel = w[name + "W_0"][:, perm]  # [P + out, 4H], Paddle's gate order
            bias = w[name + "B"][perm].copy()  # [4H]
            bias[h:2 * h] += FORGET_BIAS
            cell.weight_ih.set_value(np.ascontiguousarray(kernel[:p].T))  # [4H, P]
            cell.weight_hh.set_value(np.ascontiguousarray(kernel[p:].T))  # [4H, out]
            cell.bias_ih.set_value(bias)
            cell.bias_hh.set_value(np.zeros(4 * h, np.float32))
            if _projected(cfg):
                cell.weight_ho.set_value(w[name + "W_P_0"])  # [H, P]


def get_weights(model, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """The bilm-tf datasets of ELMo `model` (the inverse of `set_weights`). Without a projection (projection_dim
    == cell_size) each cell also gets an identity ``W_P_0``: AllenNLP always reads one, bilm-tf ignores it."""
    enc = model.token_encoder
    out: dict[str, np.ndarray] = {}
    char = enc.char_embedding.weight.numpy()  # [262, E]
    embed = np.zeros((CHAR_VOCAB_SIZE - 1, cfg.char_embed_dim), np.float32)  # [261, E]
    embed[hdf5_char_rows()] = char[1:]
    out["char_embed"] = embed
    bias, start = enc.conv_bias.numpy(), 0
    for i, conv in enumerate(enc.convs):
        weight = conv.weight.numpy()  # [count, E, width]
        out[f"CNN/W_cnn_{i}"] = weight.transpose(2, 1, 0)[None]  # [1, width, E, count]
        out[f"CNN/b_cnn_{i}"] = bias[start:start + weight.shape[0]]
        start += weight.shape[0]
    nf = enc.num_filters
    for i, layer in enumerate(enc.highway.layers):
        weight, b = layer.weight.numpy(), layer.bias.numpy()  # [F, 2F], [2F]
        g = f"CNN_high_{i}/"
        out[g + "W_transform"], out[g + "W_carry"] = weight[:, :nf], weight[:, nf:]
        out[g + "b_transform"], out[g + "b_carry"] = b[:nf], b[nf:]
    weight, b = enc.projection.weight.numpy(), enc.projection.bias.numpy()
    if _has_cnn_projection(cfg) or _is_identity(weight) and _is_identity(b):
        out["CNN_proj/W_proj"], out["CNN_proj/b_proj"] = weight, b
    else:
        raise UserError(f"the char-CNN filters add up to projection_dim ({nf}), where bilm-tf has no projection, "
                        f"but this model's projection is not the identity: bilm-tf's format cannot hold it")
    h = cfg.cell_size
    perm = gate_order(h)
    for d, stack in enumerate((model.forward_lstm, model.backward_lstm)):
        for layer, lstm in enumerate(stack.layers):
            cell, name = lstm.lstm[0].cell, cell_name(d, layer)
            kernel = np.concatenate([cell.weight_ih.numpy().T, cell.weight_hh.numpy().T], axis=0)  # [P + out, 4H]
            bias = cell.bias_ih.numpy() + cell.bias_hh.numpy()  # [4H]
            bias[h:2 * h] -= FORGET_BIAS
            out[name + "W_0"], out[name + "B"] = kernel[:, perm], bias[perm]
            out[name + "W_P_0"] = cell.weight_ho.numpy() if _projected(cfg) else np.eye(h, dtype=np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
