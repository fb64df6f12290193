"""BERT / GPT-2 checkpoints as paddlenlp users know them (``save_pretrained`` folders), text generation and
masked-token prediction, from a paddle-lm checkpoint or a paddlenlp / Hugging Face folder.

    python -m paddle_lm save_pretrained --init_from_ckpt checkpoints-bert/final --output bert-sample
    python -m paddle_lm generate --init_from_ckpt checkpoints-gpt2/final --prompt "the government said"
    python -m paddle_lm fill-mask --init_from_pretrained bert-hf --text "the [MASK] said" --top_k 5

A save_pretrained folder holds the paddlenlp model (``config.json`` + weights) and its tokenizer
(``vocab.txt`` or ``vocab.json``/``merges.txt`` + ``tokenizer_config.json``), so
``BertForMaskedLM.from_pretrained(folder)`` / ``GPTForCausalLM.from_pretrained(folder)`` and the matching
``BertTokenizer`` / ``GPTTokenizer`` load it offline, and ``run_pretrain.py --init_from_pretrained folder``
continues pretraining from it.
"""

from __future__ import annotations

import os

from paddle_lm.errors import UserError
from paddle_lm.fsio import built_dir, refuse_existing


def export_pretrained(prefix: str, output: str, overwrite: bool = False) -> list[str]:
    """Write checkpoint `prefix` (BERT or GPT-2) as a save_pretrained folder `output`; returns the file names."""
    from paddle_lm.evaluation import load_subword_model
    from paddle_lm.training.sources import copy_tokenizer

    refuse_existing(output, "--output", overwrite)
    model, _, tok_dir = load_subword_model(prefix)
    with built_dir(output) as tmp:  # the complete folder, or the old one
        model.save_pretrained(tmp)
        copy_tokenizer(tok_dir, tmp)
    return sorted(os.listdir(output))


def load_lm(init_from_ckpt: str = "", init_from_pretrained: str = "", device: str = "auto"):
    """(TransformerLM in eval mode, kind, tokenizer folder) from a paddle-lm BERT / GPT-2 checkpoint or from a
    pretrained folder (paddlenlp or Hugging Face: `models.transformer_lm.config_from_pretrained`); exactly one."""
    from paddle_lm.device import set_device

    check_source(init_from_ckpt, init_from_pretrained)
    set_device(device)
    if init_from_ckpt:
        from paddle_lm.evaluation import load_subword_model

        model, side, tok_dir = load_subword_model(init_from_ckpt)
        return model, side["model_config"]["model"], tok_dir
    from paddle_lm.models.transformer_lm import TransformerLM, config_from_pretrained, load_pretrained_weights

    model = TransformerLM(config_from_pretrained(init_from_pretrained, None))
    load_pretrained_weights(model, init_from_pretrained)
    model.eval()
    return model, model.kind, init_from_pretrained


def check_source(init_from_ckpt: str, init_from_pretrained: str) -> None:
    """Exactly one of the two model flags of generate / fill-mask (checked by the CLI before Paddle loads)."""
    if bool(init_from_ckpt) == bool(init_from_pretrained):
        raise UserError("give one of --init_from_ckpt (a paddle-lm checkpoint) and --init_from_pretrained (a "
                        "paddlenlp or Hugging Face folder)")


def generate_text(prompt: str, *, init_from_ckpt: str = "", init_from_pretrained: str = "", device: str = "auto",
                  **settings) -> dict:
    """Continuations of `prompt` by a GPT-2 (prompt included), decoded to text, with the decoding speed.

    `settings` are `paddle_lm.generation.generate`'s keyword arguments (max_length, temperature, top_k, top_p,
    repetition_penalty, num_return_sequences, greedy, seed). Generation stops at ``<|endoftext|>`` (the
    sentence separator the model was trained with), which is not printed. Returns ``{"texts", "new_tokens",
    "seconds", "new_tokens_per_s"}`` (new tokens summed over the sequences; time of the decoding loop alone).
    """
    import time

    from paddle_lm.data.subword import GPT2_EOS, fast_tokenizer
    from paddle_lm.generation import generate

    model, kind, tok_dir = load_lm(init_from_ckpt, init_from_pretrained, device)
    if kind != "gpt2":
        raise UserError(f"{init_from_ckpt or init_from_pretrained} is a {kind!r} model; generation needs a GPT-2 "
                        f"(causal LM); for BERT use fill-mask")
    fast = fast_tokenizer(tok_dir, "gpt2")
    eos = fast.token_to_id(GPT2_EOS)
    ids = fast.encode(prompt, add_special_tokens=False).ids
    start = time.perf_counter()
    out = generate(model, ids, eos_id=eos, **settings)
    seconds = time.perf_counter() - start
    new = sum(len(seq) - len(ids) for seq in out)
    return {"texts": [fast.decode([i for i in seq if i != eos]) for seq in out], "new_tokens": new,
            "seconds": round(seconds, 4), "new_tokens_per_s": round(new / seconds, 2) if seconds > 0 else None}


def fill_mask(text: str, top_k: int = 5, *, init_from_ckpt: str = "", init_from_pretrained: str = "",
              device: str = "auto") -> list[list[dict]]:
    """The `top_k` likeliest tokens, with their probabilities, at each ``[MASK]`` of `text` (a BERT model):
    one list per mask, best first, each ``{"token", "id", "probability"}``."""
    import numpy as np
    import paddle

    from paddle_lm.data.subword import BERT_SPECIALS, fast_tokenizer
    from paddle_lm.generation import probabilities

    _, _, cls, sep, mask = BERT_SPECIALS
    if mask not in text:
        raise UserError(f"--text has no {mask}: mark the word(s) to predict with {mask}")
    model, kind, tok_dir = load_lm(init_from_ckpt, init_from_pretrained, device)
    if kind != "bert":
        raise UserError(f"{init_from_ckpt or init_from_pretrained} is a {kind!r} model; fill-mask needs a BERT "
                        f"(masked LM); for GPT-2 use generate")
    fast = fast_tokenizer(tok_dir, "bert")
    ids = [fast.token_to_id(cls), *fast.encode(text, add_special_tokens=False).ids, fast.token_to_id(sep)]
    limit = model.cfg.max_position_embeddings
    if len(ids) > limit:
        raise UserError(f"--text is {len(ids)} tokens with [CLS] and [SEP], more than the model's {limit} positions")
    where = [i for i, t in enumerate(ids) if t == fast.token_to_id(mask)]
    with paddle.no_grad():
        logits = model.logits(paddle.to_tensor([ids], dtype="int64"))[0]  # [T, V]
    probs = probabilities(logits.numpy()[where])  # [M, V]
    k = min(top_k, probs.shape[1])
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # [M, k]
    return [[{"token": fast.id_to_token(int(t)), "id": int(t), "probability": float(row[t])} for t in order]
            for row, order in zip(probs, best)]
