"""Which LSTM state should the ELMo embedder start a sentence from? Pretraining carries the state from window to
window, so the biLM rarely runs from zeros — yet the embedder starts every sentence there. This probe scores
three starts on the polarity sentences, with identical folds and a paired test against zeros:

- ``zeros``: what ``ELMoEmbedder`` does;
- ``mean``: the mean over rows of the carried state saved in the checkpoint (``.pdstate``);
- ``warmup``: the state after a fixed warm-up text, ``<S> </S>`` repeated (``--warmup_sentences``) and read
  from zeros — what the biLM sees at a sentence boundary in training (forward: after ``</S>``; backward, which
  reads right to left: after ``<S>``);
- ``text``: the same after real text instead — the first ``--warmup_sentences`` lines of ``--warmup_text``
  (default: the sample's held-out LM shard, news the biLM never trained on), each in ``<S> … </S>``.

    python bench/probe_start_state.py --ckpt 300steps=./checkpoints/final --ckpt 1epoch=PREFIX [--folds 10]

Each start's features are the token-averaged layers; the head is the linear one of ``--classifier linear``
(standardized, L2 logistic regression, C chosen on each training fold's dev split). Printed per checkpoint and
start: accuracy on all layers side by side (and with ``--per_layer`` on each LSTM layer alone), and against zeros the mean difference, McNemar's
exact p (pooled test predictions) and the paired t-test p over folds, as a table and a JSON last line. An
analysis, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")  # before Paddle loads: faster MKL on AMD CPUs
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import paddle

from paddle_lm.config import SAMPLE_LM_DIR, FinetuneConfig
from paddle_lm.data.chars import sentences_char_ids
from paddle_lm.data.vocab import BOS, EOS
from paddle_lm.downstream.embedder import ELMoEmbedder
from paddle_lm.downstream.finetune import dev_split, load_polarity, make_splits
from paddle_lm.downstream.linear import fit_linear
from paddle_lm.evaluation import mcnemar_exact, mean_std, paired_ttest
from paddle_lm.training import checkpoint as ckpt

STARTS = ("zeros", "mean", "warmup", "text")
DEV_FRACTION = FinetuneConfig().dev_fraction  # the dev split run_finetune.py carves from each training fold
WARMUP_TEXT = os.path.join(SAMPLE_LM_DIR, "heldout-tokenized-shuffled", "news.en.heldout-00000-of-00002")


class StartedEmbedder(ELMoEmbedder):
    """An ELMoEmbedder whose every sentence starts from one fixed state (a flat list of ``[1, d]`` arrays)."""

    def __init__(self, prefix: str, start: list | None, batch_size: int = 64):
        super().__init__(prefix, batch_size=batch_size, progress=False)
        self.start = start

    def _encode(self, char_ids, mask, state=None, cache=None):
        b = char_ids.shape[0]
        state = None if self.start is None else [paddle.to_tensor(np.repeat(s, b, axis=0)) for s in self.start]
        return super()._encode(char_ids, mask, state, cache)


def start_state(emb: ELMoEmbedder, how: str, warmup_sentences: int, warmup_text: str = WARMUP_TEXT) -> list | None:
    """The flat start state ``[1, d]`` per tensor for `how` (None = zeros)."""
    if how == "zeros":
        return None
    if how == "mean":
        carried = ckpt.load_carried(emb.prefix, emb.sidecar)  # s0..s{n-1}: [rows, d] each
        return [carried[f"s{i}"].mean(axis=0, keepdims=True).astype(np.float32) for i in range(len(carried))]
    if how == "text":
        with open(warmup_text, encoding="utf-8") as f:
            lines = [line.split() for line, _ in zip(f, range(warmup_sentences))]
        tokens = [tok for line in lines for tok in [BOS, *line, EOS]]
    else:
        tokens = [BOS, EOS] * warmup_sentences
    chars, _ = sentences_char_ids([tokens], emb.max_chars)  # [1, n, C]
    emb.model.eval()
    with paddle.no_grad():
        _, state = emb.model.encode(paddle.to_tensor(chars))  # fw after the last </S>, bw after the first <S>
    return [s.numpy() for s in state]


def score(x: np.ndarray, labels: np.ndarray, splits: list, seed: int) -> tuple[list, np.ndarray]:
    """(fold accuracies, test predictions [N]) of the linear head on features ``x [N, D]``."""
    accs, pred = [], np.full(len(labels), -1)
    for k, (train, test) in enumerate(splits):
        fit_idx, dev_idx = dev_split(train, labels, DEV_FRACTION, seed + 1000 * k)
        pred[test] = fit_linear(x, labels, fit_idx, dev_idx)["model"].predict(x[test])
        accs.append(float((pred[test] == labels[test]).mean()))
    return accs, pred


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", action="append", required=True, metavar="NAME=PREFIX", help="repeat the flag")
    p.add_argument("--data_dir", default="data/sample/sentence-polarity-dataset-v1")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--warmup_sentences", type=int, default=8)
    p.add_argument("--warmup_text", default=WARMUP_TEXT)
    p.add_argument("--starts", default=",".join(STARTS), help="comma-separated, from " + ",".join(STARTS))
    p.add_argument("--batch_size", type=int, default=64, help="sentences per ELMo forward pass")
    p.add_argument("--per_layer", action="store_true", help="also score LSTM layers 1 and 2 on their own")
    args = p.parse_args()
    sentences, labels, _ = load_polarity(args.data_dir)
    splits = make_splits(labels, args.folds, 0.1, args.seed)
    print(f"{len(sentences):,} sentences, {args.folds}-fold stratified CV (seed {args.seed}); linear head, C on "
          f"each fold's dev split; differences against the zero start of the same checkpoint")
    print(f"{'checkpoint':<12} {'start':<7} {'layer 1':>8} {'layer 2':>8} {'all layers':>11}  "
          f"{'Δ all (mean ± std)':<19} {'McNemar p':>9} {'t-test p':>9}  time")
    out = []
    for spec in args.ckpt:
        name, _, prefix = spec.partition("=")
        base = None
        for how in ["zeros", *(h for h in args.starts.split(",") if h != "zeros")]:  # zeros first: the base
            t0 = time.perf_counter()
            emb = StartedEmbedder(prefix, None, args.batch_size)
            emb.start = start_state(emb, how, args.warmup_sentences, args.warmup_text)
            feats = emb.mean_layers(sentences)  # [N, L, 2P]
            layers = [mean_std(score(feats[:, k], labels, splits, args.seed)[0])[0] if args.per_layer else None
                      for k in (1, 2)]
            accs, pred = score(feats.reshape(len(sentences), -1), labels, splits, args.seed)
            row = {"checkpoint": name, "start": how, "layer_1": layers[0], "layer_2": layers[1],
                   "all": mean_std(accs)[0], "accuracies": accs}
            if base is None:
                base, cmp = (accs, pred), ""
            else:
                d = mean_std(np.subtract(accs, base[0]))
                m = mcnemar_exact(pred == labels, base[1] == labels)
                t = paired_ttest(accs, base[0])
                row.update(diff_mean=d[0], diff_std=d[1], mcnemar_p=m["p"], ttest_p=t["p"])
                cmp = f"{d[0]:+.4f} ± {d[1]:.4f}     {m['p']:>9.3g} {t['p']:>9.3g}"
            out.append(row)
            cells = " ".join(f"{v:>8.4f}" if v is not None else f"{'-':>8}" for v in layers)
            print(f"{name:<12} {how:<7} {cells} {row['all']:>11.4f}  "
                  f"{cmp:<40} {time.perf_counter() - t0:.0f}s", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
