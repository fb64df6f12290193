"""Linear probe of each ELMo layer on the polarity data: which layer carries sentiment, and does pretraining help?

    python bench/probe_elmo_layers.py --ckpt untrained=./checkpoints-untrained/final --ckpt 300=./checkpoints/final \
        [--vectors w2v=FILE ...] [--data_dir data/sample/sentence-polarity-dataset-v1] [--folds 10] [--seed 1234]

For every checkpoint, each sentence's vectors are averaged over its tokens per layer (layer 0 = char-CNN token
encoding, 1-2 = the biLSTM layers), and a scikit-learn logistic regression (standardized features, C = 1) is
scored with the same stratified folds ``run_finetune.py --folds K`` uses — per layer, and on the three layers
concatenated. ``--vectors`` adds word-vector files (word2vec / GloVe, as ``run_finetune.py`` reads them: mean of
the known tokens) under the same probe, in the last column. No early stopping or MLP, so differences come from
the features, not from classifier training.
An analysis, not a test: it prints accuracies (mean ± std over folds) only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")  # before Paddle loads: faster MKL on AMD CPUs
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from paddle_lm.downstream.baselines import load_vectors
from paddle_lm.downstream.embedder import ELMoEmbedder
from paddle_lm.downstream.finetune import load_polarity, make_splits
from paddle_lm.evaluation import mean_std


def probe(x: np.ndarray, labels: np.ndarray, splits: list) -> tuple[float, float]:
    """Mean and std over `splits` of the test accuracy of a logistic regression on features ``x [N, D]``."""
    accs = []
    for train, test in splits:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        clf.fit(x[train], labels[train])
        accs.append(float((clf.predict(x[test]) == labels[test]).mean()))
    return mean_std(accs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", action="append", default=[], metavar="NAME=PREFIX",
                   help="an ELMo checkpoint to probe, named (repeat the flag)")
    p.add_argument("--vectors", action="append", default=[], metavar="NAME=FILE",
                   help="a word-vector file to probe the same way, named (repeat the flag)")
    p.add_argument("--data_dir", default="data/sample/sentence-polarity-dataset-v1")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args()
    logging.getLogger("gensim").setLevel(logging.WARNING)
    if not args.ckpt and not args.vectors:
        p.error("give at least one --ckpt or --vectors")
    sentences, labels, _ = load_polarity(args.data_dir)
    splits = make_splits(labels, args.folds, 0.1, args.seed)
    print(f"{len(sentences):,} sentences, {args.folds}-fold stratified CV (seed {args.seed}); logistic regression "
          f"on token-averaged layers")
    print(f"{'checkpoint':<14} {'layer 0 (char-CNN)':>20} {'layer 1':>16} {'layer 2':>16} {'all layers':>16}  time")
    for spec in args.ckpt:
        name, _, ckpt = spec.partition("=")
        t0 = time.perf_counter()
        feats = ELMoEmbedder(ckpt, progress=False).mean_layers(sentences)  # [N, L, 2P]
        cells = [probe(feats[:, k], labels, splits) for k in range(feats.shape[1])]
        cells.append(probe(feats.reshape(len(sentences), -1), labels, splits))
        row = " ".join(f"{m:.4f} ± {s:.4f}".rjust(16 if k else 20) for k, (m, s) in enumerate(cells))
        print(f"{name:<14} {row}  {time.perf_counter() - t0:.0f}s", flush=True)
    for spec in args.vectors:
        name, _, path = spec.partition("=")
        t0 = time.perf_counter()
        means, _ = load_vectors(path, flag="--vectors").sentence_means(sentences)  # [N, D]
        m, s = probe(means, labels, splits)
        print(f"{name:<14} {'-':>20} {'-':>16} {'-':>16} {f'{m:.4f} ± {s:.4f}':>16}  {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
