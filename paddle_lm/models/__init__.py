"""Models. Every model follows one interface:

``forward(batch: dict, state: list[Tensor] | None = None) -> (outputs: dict, loss: Tensor, new_state: list)``
and ``initial_state(batch_size) -> list[Tensor]`` (zeros). ``state`` is a flat list of batch-first tensors;
``None`` means zeros; ``new_state`` is not detached.
"""

from __future__ import annotations

import paddle

from paddle_lm.config import ModelConfig, validate_model
from paddle_lm.models.elmo import ELMo
from paddle_lm.models.lstm_lm import LSTMLM

__all__ = ["LSTMLM", "STAT_KEYS", "ELMo", "build_model", "count_parameters"]

#: The loss statistics every model's `outputs` may hold (sums and counts over scored targets per direction).
STAT_KEYS = ("fw_loss_sum", "fw_count", "bw_loss_sum", "bw_count")


def build_model(cfg: ModelConfig, with_softmax: bool = True):
    """Build the network named by ``cfg.model``; ``cfg.vocab_size`` must be set. ``with_softmax=False`` (ELMo
    only) leaves out the output softmax: an encoder for the embedder and fine-tuning.

    Parameter names (which key an optimizer's saved state) are those of the first model a process builds, however
    many were built before it: a run resumed in the same process (a notebook, the tests) finds its state."""
    if cfg.vocab_size <= 0 and (with_softmax or cfg.model != "elmo"):
        raise ValueError("ModelConfig.vocab_size must be filled in from the vocabulary before build_model")
    validate_model(cfg)
    with paddle.utils.unique_name.guard():
        return _build(cfg, with_softmax)


def _build(cfg: ModelConfig, with_softmax: bool):
    if cfg.model == "elmo":
        return ELMo(cfg, with_softmax)
    if cfg.model == "lstm":
        return LSTMLM(cfg)
    if cfg.model in ("bert", "gpt2"):
        from paddle_lm.models.transformer_lm import TransformerLM

        return TransformerLM(cfg)
    raise ValueError(f"unknown model {cfg.model!r}; expected 'elmo', 'lstm', 'bert' or 'gpt2'")


def count_parameters(layer, trainable_only: bool = True) -> int:
    """Number of distinct parameter values in ``layer`` (shared tensors counted once)."""
    return sum(int(p.size) for p in layer.parameters() if not (trainable_only and p.stop_gradient))
