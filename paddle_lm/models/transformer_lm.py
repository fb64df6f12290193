"""BERT masked LM and GPT-2 causal LM through ``paddlenlp.transformers``, behind the project's model interface.

Both wrap a paddlenlp model built from a ModelConfig (from scratch) or loaded from a **local** directory
written by ``save_pretrained`` (continued pretraining). They compute their own token-weighted loss from the
logits (paddlenlp's BertForMaskedLM divides its loss by every position, not by the masked ones), and, having
no recurrent state, take and return an empty state list.

Batches: ``input_ids`` int64 ``[B, L]``, ``labels`` int64 ``[B, L]`` (the target id, ``-100`` = not scored;
for GPT-2 the label at position i is the token at i+1), optional ``attention_mask`` ``[B, L]`` (1 = real
token). ``outputs`` holds ``fw_loss_sum`` and ``fw_count`` (scalars) so evaluation sums them over a data set.
"""

from __future__ import annotations

import os

import paddle
import paddle.nn.functional as F
from paddle import nn

from paddle_lm import weights
from paddle_lm.config import ModelConfig
from paddle_lm.errors import UserError
from paddle_lm.models.layers import masked_token_losses, mean_loss

IGNORE_INDEX = -100


#: layer-norm epsilon of each family when ModelConfig.layer_norm_eps is 0 (paddlenlp's and transformers' defaults)
FAMILY_EPS = {"bert": 1e-12, "gpt2": 1e-5}


def activation_name(cfg: ModelConfig) -> str:
    """The feed-forward activation `cfg` builds: its hidden_act, else the family's own (BERT's exact gelu;
    paddlenlp's GPT always calls gelu with approximate=True, which is GPT-2's gelu_new)."""
    return cfg.hidden_act or ("gelu" if cfg.model == "bert" else "gelu_new")


def paddlenlp_config(cfg: ModelConfig):
    """The paddlenlp ``BertConfig`` / ``GPTConfig`` equivalent of a ModelConfig (the activation is installed by
    `TransformerLM`, see `_set_activation`)."""
    from paddlenlp.transformers import BertConfig, GPTConfig

    act = activation_name(cfg)
    common = dict(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                  num_attention_heads=cfg.num_attention_heads, intermediate_size=cfg.intermediate_size,
                  max_position_embeddings=cfg.max_position_embeddings, hidden_dropout_prob=cfg.dropout,
                  attention_probs_dropout_prob=cfg.dropout)
    if cfg.layer_norm_eps:
        common["layer_norm_eps"] = cfg.layer_norm_eps
    if cfg.model == "bert":
        return BertConfig(type_vocab_size=cfg.type_vocab_size, hidden_act="gelu" if act == "gelu_new" else act,
                          architectures=["BertForMaskedLM"], **common)
    if cfg.model == "gpt2":
        return GPTConfig(hidden_activation="gelu", architectures=["GPTForCausalLM"], **common)
    raise ValueError(f"{cfg.model!r} is not a transformer model")


def _gelu(x, approximate=False):
    return F.gelu(x)


def _gelu_new(x, approximate=True):
    return F.gelu(x, approximate=True)


def _relu(x, approximate=None):
    return F.relu(x)


def _silu(x, approximate=None):
    return F.silu(x)


def _tanh(x, approximate=None):
    return paddle.tanh(x)


#: hidden_act -> the function installed in every feed-forward block and BERT's head. Each ignores paddlenlp's
#: ``approximate`` argument, so the activation is the one named whatever paddlenlp passes.
ACTIVATION_FNS = {"gelu": _gelu, "gelu_new": _gelu_new, "relu": _relu, "silu": _silu, "tanh": _tanh}


def _set_activation(net: nn.Layer, name: str) -> None:
    """Install ACTIVATION_FNS[name] wherever `net` keeps an activation function."""
    swapped = 0
    for layer in net.sublayers(include_self=True):
        if callable(getattr(layer, "activation", None)) and not isinstance(layer.activation, nn.Layer):
            layer.activation = ACTIVATION_FNS[name]
            swapped += 1
    if not swapped:
        raise ValueError(f"no activation found in {type(net).__name__}")


def paddlenlp_class(model: str):
    from paddlenlp.transformers import BertForMaskedLM, GPTForCausalLM

    return {"bert": BertForMaskedLM, "gpt2": GPTForCausalLM}[model]


#: ModelConfig field <- paddlenlp config.json key
_CONFIG_KEYS = {"vocab_size": "vocab_size", "hidden_size": "hidden_size", "num_layers": "num_hidden_layers",
                "num_attention_heads": "num_attention_heads", "intermediate_size": "intermediate_size",
                "max_position_embeddings": "max_position_embeddings", "dropout": "hidden_dropout_prob"}


def config_from_pretrained(directory: str, model: str | None, flag: str = "--init_from_pretrained") -> ModelConfig:
    """The ModelConfig of a local pretrained folder (paddlenlp save_pretrained or Hugging Face), checked to be a
    `model` model (None: whichever of BERT and GPT-2 it holds); every config.json field is honoured or refused
    (`paddle_lm.formats.hf.check_fields`)."""
    import json

    from paddle_lm.formats import hf

    check_pretrained_dir(directory, flag)
    raw = hf.read_config(directory, flag)
    found = hf.found_model(raw)
    if found is None or (model is not None and found != model):
        described = hf.architecture(raw) or "no architectures"
        wanted = f"but --model is {model}" if model else "neither a BERT nor a GPT-2"
        raise UserError(f"{flag} {directory!r} holds a {found or 'unknown'} model ({described}), {wanted}")
    model = found
    where = f"{flag} {directory!r}"
    if hf.is_hf_folder(directory, flag):
        return _paddle_limits(hf.model_config(raw, model, where), where)
    missing = [k for k in _CONFIG_KEYS.values() if k not in raw]
    if missing:
        raise UserError(f"{where}: config.json lacks {', '.join(missing)}")
    # paddlenlp's GPT reads hidden_activation and always calls it with approximate=True: "gelu" there is gelu_new
    act_key, allowed = ("hidden_act", ("gelu", "relu", "silu", "tanh")) if model == "bert" else (
        "hidden_activation", ("gelu",))
    act = raw.get(act_key, "gelu")
    if act not in allowed:
        raise UserError(f"{where}: config.json {act_key} = {json.dumps(act)} is not supported "
                        f"({' or '.join(allowed)})")
    fields = {ours: raw[theirs] for ours, theirs in _CONFIG_KEYS.items()}
    eps = raw.get("layer_norm_eps", 0.0)
    fields.update(hidden_act=act if act != "gelu" else "",
                  type_vocab_size=raw.get("type_vocab_size", 2) if model == "bert" else 2,  # GPT has no token types
                  layer_norm_eps=0.0 if eps == FAMILY_EPS[model] else eps)  # the defaults as a run leaves them
    cfg = ModelConfig(model=model, **fields)
    rebuilt = paddlenlp_config(cfg).to_dict()
    if model == "gpt2":  # a hidden_act beside hidden_activation must agree with it
        rebuilt["hidden_act"] = "gelu"
    hf.check_fields(raw, rebuilt, where)
    return _paddle_limits(cfg, where)


def _paddle_limits(cfg: ModelConfig, where: str) -> ModelConfig:
    """`cfg` if Paddle can build it; else one line naming the field (a layer-norm epsilon over 1e-3)."""
    if not 0 <= cfg.layer_norm_eps <= 1e-3:
        raise UserError(f"{where}: a layer-norm epsilon of {cfg.layer_norm_eps:g} is not supported (Paddle's "
                        f"LayerNorm takes at most 1e-3)")
    return cfg


def load_pretrained_weights(model: nn.Layer, directory: str, flag: str = "--init_from_pretrained") -> None:
    """Copy the weights of a local pretrained folder into a `TransformerLM` built from its config.

    The weights are read by `paddle_lm.weights` (never by paddlenlp's ``from_pretrained``, whose pickle reader
    runs whatever a crafted ``model_state.pdparams`` names); a Hugging Face folder's are renamed first
    (`paddle_lm.formats.hf.paddle_state`).
    """
    from paddle_lm.formats import hf

    check_pretrained_dir(directory, flag)
    state = weights.load_folder_state(directory, flag)
    where = f"{flag} {directory!r}"
    optional: list = []
    if hf.is_hf_folder(directory, flag):
        state, optional = hf.paddle_state(state, model.cfg, where)
    weights.fit_state(model.net, state, where, "its weights do not fit its config.json",
                      optional=lambda key: key in optional)


class TransformerLM(nn.Layer):
    """``BertForMaskedLM`` (``cfg.model == "bert"``) or ``GPTForCausalLM`` (``"gpt2"``) with the project interface.

    ``forward(batch, state=None) -> (outputs, loss, [])``; ``initial_state(batch_size) -> []``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.kind = cfg.model
        self.cfg = cfg
        self.net = paddlenlp_class(cfg.model)(paddlenlp_config(cfg))
        _set_activation(self.net, activation_name(cfg))
        for layer in self.net.sublayers():  # paddlenlp 2.8.1's GPT builds its LayerNorms at 1e-5 whatever it is told
            if isinstance(layer, nn.LayerNorm):
                layer._epsilon = cfg.layer_norm_eps or FAMILY_EPS[cfg.model]
        self.vocab_size = int(self.net.config.vocab_size)

    def initial_state(self, batch_size: int) -> list:
        return []

    def logits(self, input_ids, attention_mask=None):
        """Token logits ``[B, L, V]``."""
        if self.kind == "bert":
            out = self.net(input_ids, attention_mask=attention_mask)
        else:
            out = self.net(input_ids)  # causal attention; packed blocks have no padding
        return out[0] if isinstance(out, (tuple, list)) else out

    def new_cache(self, rows: int, max_len: int):
        """An empty key/value cache for `rows` sequences of up to `max_len` tokens (`decode`)."""
        if self.kind != "gpt2":
            raise ValueError("a key/value cache needs a causal LM (GPT-2)")
        from paddle_lm.models.kv_cache import KVCache

        return KVCache(self.net, rows, max_len)

    def decode(self, input_ids, cache):
        """GPT-2 next-token logits ``[B, V]`` after ``input_ids [B, t]``, the tokens that follow those the
        `new_cache` cache holds (the whole prompt first, then one token per step); they join the cache."""
        from paddle_lm.models.kv_cache import decode_step

        return decode_step(self.net, input_ids, cache)

    def forward(self, batch: dict, state=None):
        logits = self.logits(batch["input_ids"], batch.get("attention_mask"))  # [B, L, V]
        labels = batch["labels"].reshape([-1]).astype("int64")  # [B*L]
        mask = (labels != IGNORE_INDEX).astype(logits.dtype)  # [B*L]
        losses = masked_token_losses(logits.reshape([-1, self.vocab_size]), labels, mask)  # [B*L]
        loss_sum, count = losses.sum(), mask.sum()
        return {"fw_loss_sum": loss_sum, "fw_count": count}, mean_loss(loss_sum, count), []

    def save_pretrained(self, directory: str) -> None:
        """Write the paddlenlp model (config.json + model_state.pdparams) for `load_pretrained_weights` and
        paddlenlp's ``from_pretrained``."""
        self.net.save_pretrained(directory)


def check_pretrained_dir(directory: str, flag: str = "--init_from_pretrained") -> None:
    """UserError unless `directory` is a local folder with a config.json and a weights file (FOLDER_WEIGHTS)."""
    if not os.path.isdir(directory):
        raise UserError(f"{flag} {directory!r} is not a local folder (models are never downloaded; point it at a "
                        f"directory written by save_pretrained)")
    if not os.path.isfile(os.path.join(directory, "config.json")):
        raise UserError(f"{flag} {directory!r} has no config.json; it is not a save_pretrained directory")
    weights.folder_weights(directory, flag)


def causal_labels(input_ids: paddle.Tensor) -> paddle.Tensor:
    """Next-token labels for a block ``[B, L]``: position i is labelled with token i+1; the last is ignored."""
    shifted = input_ids[:, 1:].clone()  # [B, L-1]
    pad = paddle.full([input_ids.shape[0], 1], IGNORE_INDEX, dtype=input_ids.dtype)  # [B, 1]
    return paddle.concat([shifted, pad], axis=1)  # [B, L]
