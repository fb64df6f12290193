"""BERT / GPT-2 checkpoints as paddlenlp users know them: ``save_pretrained`` folders, and text generation.

    python -m paddle_lm save_pretrained --init_from_ckpt checkpoints-bert/final --output bert-sample
    python -m paddle_lm generate --init_from_ckpt checkpoints-gpt2/final --prompt "the government said"

A save_pretrained folder holds the paddlenlp model (``config.json`` + weights) and its tokenizer
(``vocab.txt`` or ``vocab.json``/``merges.txt`` + ``tokenizer_config.json``), so
``BertForMaskedLM.from_pretrained(folder)`` / ``GPTForCausalLM.from_pretrained(folder)`` and the matching
``BertTokenizer`` / ``GPTTokenizer`` load it offline, and ``run_pretrain.py --init_from_pretrained folder``
continues pretraining from it.
"""

from __future__ import annotations

import os

from paddle_lm.errors import UserError


def export_pretrained(prefix: str, output: str, overwrite: bool = False) -> list[str]:
    """Write checkpoint `prefix` (BERT or GPT-2) as a save_pretrained folder `output`; returns the file names."""
    from paddle_lm.evaluation import load_subword_model
    from paddle_lm.training.sources import copy_tokenizer

    model, _, tok_dir = load_subword_model(prefix)
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise UserError(f"--output {output!r} already exists and is not empty; pick another folder or pass "
                        f"--overwrite")
    os.makedirs(output, exist_ok=True)
    model.save_pretrained(output)
    copy_tokenizer(tok_dir, output)
    return sorted(os.listdir(output))


def generate_text(prefix: str, prompt: str, *, device: str = "auto", **settings) -> list[str]:
    """Continuations of `prompt` by GPT-2 checkpoint `prefix` (prompt included), decoded to text.

    `settings` are `paddle_lm.generation.generate`'s keyword arguments (max_length, temperature, top_k, top_p,
    repetition_penalty, num_return_sequences, greedy, seed). Generation stops at ``<|endoftext|>`` (the
    sentence separator the model was trained with), which is not printed.
    """
    from paddle_lm.data.subword import GPT2_EOS, fast_tokenizer
    from paddle_lm.device import set_device
    from paddle_lm.evaluation import load_subword_model
    from paddle_lm.generation import generate

    set_device(device)
    model, side, tok_dir = load_subword_model(prefix)
    if side["model_config"]["model"] != "gpt2":
        raise UserError(f"{prefix} is a {side['model_config']['model']!r} checkpoint; generation needs a GPT-2 "
                        f"(causal LM) checkpoint")
    fast = fast_tokenizer(tok_dir, "gpt2")
    eos = fast.token_to_id(GPT2_EOS)
    ids = fast.encode(prompt, add_special_tokens=False).ids
    out = generate(model, ids, eos_id=eos, **settings)
    return [fast.decode([i for i in seq if i != eos]) for seq in out]
