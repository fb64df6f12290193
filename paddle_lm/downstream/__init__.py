"""Downstream use of pretrained models: ELMo vectors (``embedder``), their export (``export``), classifiers.

Importing this package loads nothing heavy; ``ELMoEmbedder`` and ``ScalarMix`` load Paddle on first use.
"""

from __future__ import annotations

_LAZY = {"ELMoEmbedder": "paddle_lm.downstream.embedder", "ScalarMix": "paddle_lm.downstream.embedder"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
