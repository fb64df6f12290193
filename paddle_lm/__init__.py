"""paddle-lm: pretrain ELMo-style biLMs, LSTM LMs, BERT and GPT-2 with PaddlePaddle, and use them downstream.

The package imports nothing heavy at import time; the names below load on first use.
"""

from paddle_lm.config import DataConfig, EvalConfig, ModelConfig, TrainConfig  # noqa: F401
from paddle_lm.errors import UserError  # noqa: F401

__version__ = "0.1.0"

# Public names that need Paddle: imported from their module on first access (PEP 562), not at import time.
_LAZY = {"ELMoEmbedder": "paddle_lm.downstream.embedder", "ScalarMix": "paddle_lm.downstream.embedder"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


def build_model(cfg):
    """Build a model from a ModelConfig (see paddle_lm.models.build_model)."""
    from paddle_lm.models import build_model as _build

    return _build(cfg)


def load_checkpoint(prefix: str, vocab_file: str | None = None):
    """(model in eval mode, sidecar dict, Vocab) of a checkpoint prefix such as ``checkpoints/final``."""
    from paddle_lm.evaluation import load_model

    return load_model(prefix, vocab_file, allow_suffix=True)
