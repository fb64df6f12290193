"""Hugging Face parity, both ways, against transformers itself: logits of paddle-lm and of transformers on the same
weights, for BERT and GPT-2 and the config variants paddle-lm honours.

    bash ../shared/tools/allennlp-venv.sh /tmp/allennlp-venv    # torch + transformers 4.57 (2-3 min)
    python bench/bench_hf_parity.py [--venv /tmp/allennlp-venv] [--limit 1e-5]

In: transformers builds a random ``BertForMaskedLM`` / ``GPT2LMHeadModel`` of each variant's config and saves it
(``save_pretrained``, safetensors); paddle-lm loads that folder as ``--init_from_pretrained`` does
(`paddle_lm.pretrained.load_lm`). Out: paddle-lm builds a random model of the same variant and writes it as an HF
folder (`paddle_lm.formats.hf`, what ``export-hf`` writes); transformers loads it (``from_pretrained``, which must
report nothing missing, unexpected or mis-shaped). Each folder's logits on the same two id sequences are computed
by both libraries (transformers in its own venv, bench/transformers_side.py) and compared: the largest absolute
difference must be within `--limit` (the bench exits 1 otherwise). Tiny sizes (hidden 32, 2 layers, 4 heads,
vocabulary 120): this checks the conversion, not speed. Tokenizers: a WordPiece and a byte-level BPE trained on a
small generated corpus, written as ``export-hf`` writes them; transformers' ``AutoTokenizer`` loads each and must
give paddle-lm's ids for a few texts (capitals, accents, punctuation, unseen words).

Prints a table (variant, direction, max |difference|, what transformers reported), and a JSON last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_generate import write_folder
from bench_vs_allennlp import BUILD_VENV, DEFAULT_VENV, fail

SIZE = dict(vocab_size=120, hidden_size=32, num_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64, dropout=0.1)
HF_BERT = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               max_position_embeddings=64)
HF_GPT2 = dict(vocab_size=120, n_embd=32, n_layer=2, n_head=4, n_inner=64, n_positions=64)
#: name -> (kind, transformers config changes, paddle-lm ModelConfig changes): the same model both ways
VARIANTS = {
    "bert default (gelu, eps 1e-12)": ("bert", {}, {}),
    "bert hidden_act relu": ("bert", {"hidden_act": "relu"}, {"hidden_act": "relu"}),
    "bert hidden_act gelu_new": ("bert", {"hidden_act": "gelu_new"}, {"hidden_act": "gelu_new"}),
    "bert layer_norm_eps 1e-5": ("bert", {"layer_norm_eps": 1e-5}, {"layer_norm_eps": 1e-5}),
    "bert type_vocab_size 3": ("bert", {"type_vocab_size": 3}, {"type_vocab_size": 3}),
    "gpt2 default (gelu_new, eps 1e-5)": ("gpt2", {}, {}),
    "gpt2 activation gelu (exact)": ("gpt2", {"activation_function": "gelu"}, {"hidden_act": "gelu"}),
    "gpt2 activation relu": ("gpt2", {"activation_function": "relu"}, {"hidden_act": "relu"}),
    "gpt2 layer_norm_epsilon 1e-6": ("gpt2", {"layer_norm_epsilon": 1e-6}, {"layer_norm_eps": 1e-6}),
    "gpt2 n_inner null (4 x n_embd)": ("gpt2", {"n_inner": None}, {"intermediate_size": 128}),
}
IDS = [[5, 17, 3, 99, 42, 7, 63, 11, 2, 80, 31, 19], [101, 4, 56, 23, 9, 77, 14, 8, 115, 60, 33, 1]]
WORDS = ["the", "market", "said", "Monday", "that", "prices", "rose", "sharply", ";", "analysts", "in", "Zürich", "expected", "a", "café-style", "recovery", ",", "but", "the", "Government's", "report", "(", "released", "late", ")", "showed", "3.5", "%", "growth"]
TEXTS = ["The market said on Monday that prices rose 3.5 % in Zürich .",
         "a café-style recovery , the Government's report said", "unseenword and ÀCCENTS ( with brackets ) ..."]


def tokenizer_folders(tmp: str) -> dict:
    """{kind: folder} holding a tokenizer trained on a small generated corpus, written as `export-hf` writes it."""
    import random

    from paddle_lm.config import ModelConfig
    from paddle_lm.data.subword import train_bpe, train_wordpiece
    from paddle_lm.formats.hf import write_tokenizer

    rng = random.Random(0)
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.writelines(" ".join(rng.choice(WORDS) for _ in range(12)) + "\n" for _ in range(400))
    out = {}
    for kind, train, size in (("bert", train_wordpiece, 200), ("gpt2", train_bpe, 400)):
        trained, folder = os.path.join(tmp, f"{kind}-tok"), os.path.join(tmp, f"{kind}-tok-hf")
        train(corpus, trained, vocab_size=size, progress=False)
        os.makedirs(folder)
        write_tokenizer(trained, folder, ModelConfig(model=kind, max_position_embeddings=64))
        out[kind] = folder
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", default=DEFAULT_VENV, help="venv with torch + transformers (" + BUILD_VENV + ")")
    p.add_argument("--limit", type=float, default=1e-5, help="largest allowed |logit difference|")
    args = p.parse_args()
    venv_python = os.path.join(args.venv, "bin", "python")
    if not os.path.isfile(venv_python):
        fail(f"no transformers venv at {args.venv}: {BUILD_VENV}")
    from paddle_lm.cli import quiet_startup

    quiet_startup()
    import numpy as np
    import paddle

    from paddle_lm.config import ModelConfig
    from paddle_lm.pretrained import load_lm

    with tempfile.TemporaryDirectory() as tmp:
        made, read = [], []
        for i, (name, (kind, hf_changes, our_changes)) in enumerate(VARIANTS.items()):
            base = HF_BERT if kind == "bert" else HF_GPT2
            hf_dir, pd_dir = os.path.join(tmp, f"{i}-hf"), os.path.join(tmp, f"{i}-pd")
            made.append({"op": "random", "kind": kind, "config": {**base, **hf_changes}, "output": hf_dir, "seed": i})
            write_folder(ModelConfig(model=kind, **{**SIZE, **our_changes}), i, pd_dir)
            for direction, folder in (("in", hf_dir), ("out", pd_dir)):
                read.append({"op": "logits", "kind": kind, "model": folder, "ids": IDS,
                             "output": folder + ".npy", "name": name, "direction": direction})
        tok_folders = tokenizer_folders(tmp)
        tokenize = [{"op": "tokenize", "model": folder, "texts": TEXTS, "kind": kind}
                    for kind, folder in tok_folders.items()]
        job = os.path.join(tmp, "job.json")
        with open(job, "w", encoding="utf-8") as f:
            json.dump(made + read + tokenize, f)
        result = os.path.join(tmp, "result.json")
        out = subprocess.run([venv_python, os.path.join(ROOT, "bench", "transformers_side.py"), "tasks", "--job", job,
                              "--result", result], cwd=ROOT, capture_output=True, text=True, check=False)
        if out.returncode:
            sys.exit(f"the transformers side failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
        with open(result, encoding="utf-8") as f:
            reports = json.load(f)[len(made):]
        from paddle_lm.data.subword import fast_tokenizer

        tok_rows = []
        for task, report in zip(tokenize, reports[len(read):]):
            fast = fast_tokenizer(task["model"], task["kind"])
            ours = [fast.encode(t, add_special_tokens=False).ids for t in TEXTS]
            tok_rows.append({"kind": task["kind"], "class": report["class"], "same_ids": ours == report["ids"],
                             "tokens": sum(len(i) for i in ours)})
        reports = reports[:len(read)]
        rows = []
        for task, report in zip(read, reports):
            model, _, _ = load_lm(init_from_pretrained=task["model"], device="cpu")
            with paddle.no_grad():
                ours = model.logits(paddle.to_tensor(IDS, dtype="int64")).numpy()  # [B, T, V]
            diff = float(np.abs(ours - np.load(task["output"])).max())
            loading = report["loading"]
            clean = not any(loading.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
            rows.append({"variant": task["name"], "direction": task["direction"], "max_diff": diff,
                         "transformers_loading_clean": clean, "loading": loading})
    print(f"{'variant':<36}{'direction':<26}{'max |diff|':>12}  transformers loaded it")
    for r in rows:
        how = "transformers -> paddle-lm" if r["direction"] == "in" else "paddle-lm -> transformers"
        print(f"{r['variant']:<36}{how:<26}{r['max_diff']:>12.2e}  "
              f"{'nothing missing / unexpected' if r['transformers_loading_clean'] else r['loading']}")
    for t in tok_rows:
        print(f"tokenizer {t['kind']}: AutoTokenizer loaded {t['class']}; ids of {len(TEXTS)} texts ({t['tokens']} "
              f"tokens) {'identical to' if t['same_ids'] else 'DIFFERENT from'} paddle-lm's")
    ok = all(r["max_diff"] <= args.limit and r["transformers_loading_clean"] for r in rows)
    ok = ok and all(t["same_ids"] for t in tok_rows)
    worst = max(r["max_diff"] for r in rows)
    print(f"largest difference {worst:.2e} (limit {args.limit:g}): {'ok' if ok else 'FAILED'}")
    print("command: python bench/bench_hf_parity.py")
    print(json.dumps({"rows": [{k: v for k, v in r.items() if k != "loading"} for r in rows], "max_diff": worst,
                      "limit": args.limit, "tokenizers": tok_rows, "ok": ok}))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
