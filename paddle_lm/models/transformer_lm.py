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
from paddle import nn

from paddle_lm import weights
from paddle_lm.config import ModelConfig
from paddle_lm.errors import UserError
from paddle_lm.models.layers import masked_token_losses, mean_loss

IGNORE_INDEX = -100


def paddlenlp_config(cfg: ModelConfig):
    """The paddlenlp ``BertConfig`` / ``GPTConfig`` equivalent of a ModelConfig."""
    from paddlenlp.transformers import BertConfig, GPTConfig

    common = dict(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                  num_attention_heads=cfg.num_attention_heads, intermediate_size=cfg.intermediate_size,
                  max_position_embeddings=cfg.max_position_embeddings, hidden_dropout_prob=cfg.dropout,
                  attention_probs_dropout_prob=cfg.dropout)
    if cfg.model == "bert":
        return BertConfig(type_vocab_size=2, **common)
    if cfg.model == "gpt2":
        return GPTConfig(**common)
    raise ValueError(f"{cfg.model!r} is not a transformer model")


def paddlenlp_class(model: str):
    from paddlenlp.transformers import BertForMaskedLM, GPTForCausalLM

    return {"bert": BertForMaskedLM, "gpt2": GPTForCausalLM}[model]


#: ModelConfig field <- paddlenlp config.json key
_CONFIG_KEYS = {"vocab_size": "vocab_size", "hidden_size": "hidden_size", "num_layers": "num_hidden_layers",
                "num_attention_heads": "num_attention_heads", "intermediate_size": "intermediate_size",
                "max_position_embeddings": "max_position_embeddings", "dropout": "hidden_dropout_prob"}


def config_from_pretrained(directory: str, model: str, flag: str = "--init_from_pretrained") -> ModelConfig:
    """The ModelConfig of a local save_pretrained folder (its config.json), checked to be a `model` model."""
    import json

    check_pretrained_dir(directory, flag)
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        raw = json.load(f)
    arch = " ".join(raw.get("architectures") or []) + " " + str(raw.get("model_type", ""))
    found = "bert" if "bert" in arch.lower() else "gpt2" if "gpt" in arch.lower() else None
    if found != model:
        described = arch.strip() or "no architectures"
        raise UserError(f"{flag} {directory!r} holds a {found or 'unknown'} model ({described}), but --model is "
                        f"{model}")
    missing = [k for k in _CONFIG_KEYS.values() if k not in raw]
    if missing:
        raise UserError(f"{flag} {directory!r}: config.json lacks {', '.join(missing)}")
    return ModelConfig(model=model, **{ours: raw[theirs] for ours, theirs in _CONFIG_KEYS.items()})


def load_pretrained_weights(model: nn.Layer, directory: str, flag: str = "--init_from_pretrained") -> None:
    """Copy the weights of a local save_pretrained folder into a `TransformerLM` built from its config.

    The weights file is read by `paddle_lm.weights` (never by paddlenlp's ``from_pretrained``, whose pickle
    reader runs whatever a crafted ``model_state.pdparams`` names).
    """
    check_pretrained_dir(directory, flag)
    state = weights.load_folder_state(directory, flag)
    weights.fit_state(model.net, state, f"{flag} {directory!r}", "its weights do not fit its config.json")


class TransformerLM(nn.Layer):
    """``BertForMaskedLM`` (``cfg.model == "bert"``) or ``GPTForCausalLM`` (``"gpt2"``) with the project interface.

    ``forward(batch, state=None) -> (outputs, loss, [])``; ``initial_state(batch_size) -> []``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.kind = cfg.model
        self.net = paddlenlp_class(cfg.model)(paddlenlp_config(cfg))
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
