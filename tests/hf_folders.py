"""Hugging Face BERT / GPT-2 folders written by the tests from numpy, in transformers' parameter names and layouts
(torch ``Linear`` weights ``[out, in]``, GPT-2's ``Conv1D`` ``[in, out]`` with q, k, v fused in ``c_attn``), and
numpy forward passes of both models written from the papers' equations, independent of paddle-lm and paddlenlp:
what CI checks the import and export against without torch (bench/bench_hf_parity.py checks transformers itself).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
from safetensors.numpy import save_file

SIZES = dict(hidden=16, layers=2, heads=2, inner=24, positions=32)


def bert_weights(vocab: int, rng: np.random.Generator, s: dict = SIZES, types: int = 2) -> dict:
    h, i = s["hidden"], s["inner"]

    def w(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    out = {"bert.embeddings.word_embeddings.weight": w(vocab, h),
           "bert.embeddings.position_embeddings.weight": w(s["positions"], h),
           "bert.embeddings.token_type_embeddings.weight": w(types, h),
           "bert.embeddings.LayerNorm.weight": 1 + w(h), "bert.embeddings.LayerNorm.bias": w(h)}
    for n in range(s["layers"]):
        p = f"bert.encoder.layer.{n}."
        for part in ("query", "key", "value"):
            out[p + f"attention.self.{part}.weight"], out[p + f"attention.self.{part}.bias"] = w(h, h), w(h)
        out[p + "attention.output.dense.weight"], out[p + "attention.output.dense.bias"] = w(h, h), w(h)
        out[p + "attention.output.LayerNorm.weight"], out[p + "attention.output.LayerNorm.bias"] = 1 + w(h), w(h)
        out[p + "intermediate.dense.weight"], out[p + "intermediate.dense.bias"] = w(i, h), w(i)
        out[p + "output.dense.weight"], out[p + "output.dense.bias"] = w(h, i), w(h)
        out[p + "output.LayerNorm.weight"], out[p + "output.LayerNorm.bias"] = 1 + w(h), w(h)
    out.update({"cls.predictions.bias": w(vocab), "cls.predictions.transform.dense.weight": w(h, h),
                "cls.predictions.transform.dense.bias": w(h),
                "cls.predictions.transform.LayerNorm.weight": 1 + w(h),
                "cls.predictions.transform.LayerNorm.bias": w(h)})
    return out


def gpt2_weights(vocab: int, rng: np.random.Generator, s: dict = SIZES) -> dict:
    h, i = s["hidden"], s["inner"]

    def w(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    out = {"transformer.wte.weight": w(vocab, h), "transformer.wpe.weight": w(s["positions"], h),
           "transformer.ln_f.weight": 1 + w(h), "transformer.ln_f.bias": w(h)}
    for n in range(s["layers"]):
        p = f"transformer.h.{n}."
        out[p + "ln_1.weight"], out[p + "ln_1.bias"] = 1 + w(h), w(h)
        out[p + "attn.c_attn.weight"], out[p + "attn.c_attn.bias"] = w(h, 3 * h), w(3 * h)
        out[p + "attn.c_proj.weight"], out[p + "attn.c_proj.bias"] = w(h, h), w(h)
        out[p + "ln_2.weight"], out[p + "ln_2.bias"] = 1 + w(h), w(h)
        out[p + "mlp.c_fc.weight"], out[p + "mlp.c_fc.bias"] = w(h, i), w(i)
        out[p + "mlp.c_proj.weight"], out[p + "mlp.c_proj.bias"] = w(i, h), w(h)
    return out


def bert_config(vocab: int, s: dict = SIZES, **extra) -> dict:
    return {"architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": vocab,
            "hidden_size": s["hidden"], "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
            "intermediate_size": s["inner"], "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "max_position_embeddings": s["positions"], "type_vocab_size": 2,
            "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "position_embedding_type": "absolute", "use_cache": True, "classifier_dropout": None,
            "torch_dtype": "float32", "transformers_version": "4.57.6", **extra}


def gpt2_config(vocab: int, s: dict = SIZES, **extra) -> dict:
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": vocab,
            "n_embd": s["hidden"], "n_layer": s["layers"], "n_head": s["heads"], "n_inner": s["inner"],
            "n_positions": s["positions"], "n_ctx": s["positions"], "activation_function": "gelu_new",
            "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "layer_norm_epsilon": 1e-5,
            "initializer_range": 0.02, "bos_token_id": 0, "eos_token_id": 0, "scale_attn_weights": True,
            "summary_type": "cls_index", "summary_use_proj": True, "summary_activation": None,
            "summary_proj_to_labels": True, "summary_first_dropout": 0.1, "use_cache": True,
            "torch_dtype": "float32", "transformers_version": "4.57.6", **extra}


def write_folder(folder: str, config: dict, weights: dict, tokenizer_dir: str) -> str:
    """An HF folder: config.json, model.safetensors ({"format": "pt"}) and the tokenizer's vocab files."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    save_file(weights, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    for name in ("vocab.txt", "vocab.json", "merges.txt"):
        if os.path.isfile(os.path.join(tokenizer_dir, name)):
            with open(os.path.join(tokenizer_dir, name), "rb") as src, open(os.path.join(folder, name), "wb") as dst:
                dst.write(src.read())
    return folder


# ------------------------------------------------------------------------------------- numpy reference passes
def _layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _gelu_new(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _attention(q, k, v, heads, causal):
    t, h = q.shape
    d = h // heads
    q, k, v = (a.reshape(t, heads, d).transpose(1, 0, 2) for a in (q, k, v))  # [heads, T, d]
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)  # [heads, T, T]
    if causal:
        scores = np.where(np.tril(np.ones((t, t), bool)), scores, -1e9)
    return (_softmax(scores) @ v).transpose(1, 0, 2).reshape(t, h)  # [T, H]


def bert_logits(w: dict, ids: list[int], s: dict = SIZES, eps: float = 1e-12) -> np.ndarray:
    """Masked-LM logits [T, V] of one sequence (token type 0, no padding), from HF-named weights."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    t = len(ids)
    x = (w["bert.embeddings.word_embeddings.weight"][ids] + w["bert.embeddings.position_embeddings.weight"][:t]
         + w["bert.embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, w["bert.embeddings.LayerNorm.weight"], w["bert.embeddings.LayerNorm.bias"], eps)
    for n in range(s["layers"]):
        p = f"bert.encoder.layer.{n}."

        def lin(name, a, p=p):
            return a @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        att = _attention(lin("attention.self.query", x), lin("attention.self.key", x),
                         lin("attention.self.value", x), s["heads"], causal=False)
        x = _layer_norm(x + lin("attention.output.dense", att), w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"], eps)
        x = _layer_norm(x + lin("output.dense", _gelu(lin("intermediate.dense", x))),
                        w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    x = _gelu(x @ w["cls.predictions.transform.dense.weight"].T + w["cls.predictions.transform.dense.bias"])
    x = _layer_norm(x, w["cls.predictions.transform.LayerNorm.weight"], w["cls.predictions.transform.LayerNorm.bias"],
                    eps)
    return x @ w["bert.embeddings.word_embeddings.weight"].T + w["cls.predictions.bias"]


def gpt2_logits(w: dict, ids: list[int], s: dict = SIZES, eps: float = 1e-5) -> np.ndarray:
    """Causal-LM logits [T, V] of one sequence, from HF-named weights (pre-LN blocks, gelu_new, tied head)."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    t = len(ids)
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:t]
    for n in range(s["layers"]):
        p = f"transformer.h.{n}."
        a = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = np.split(a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"], 3, axis=-1)
        x = x + _attention(q, k, v, s["heads"], causal=True) @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = _layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        x = x + _gelu_new(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]) @ w[p + "mlp.c_proj.weight"] \
            + w[p + "mlp.c_proj.bias"]
    x = _layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return x @ w["transformer.wte.weight"].T
