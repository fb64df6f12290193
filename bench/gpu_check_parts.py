"""Pieces of bench/gpu_check.py: its result records, the synthetic corpus it trains on, and small helpers."""

from __future__ import annotations

import math
import os
import statistics
from typing import NamedTuple

import numpy as np


class Row(NamedTuple):
    name: str
    status: str  # PASS / FAIL / SKIP
    kind: str  # measured / arithmetic
    summary: str  # the figures, or the one-line reason of a FAIL / SKIP
    data: dict


class Run(NamedTuple):
    rc: int
    out: str
    err: str
    wall_s: float
    peak: dict  # from PEAK_RUNNER: gpu_bytes (None off the GPU), rss_kib


class Corpus(NamedTuple):
    train: str  # glob of the training shards
    vocab: str
    words: list[str]  # by rank (frequency)


class CheckFailed(Exception):
    """A check's one-line reason for FAIL."""


def reason(run: Run) -> str:
    """The line that says why a command failed: its `error:` line, else its last line (stderr last)."""
    lines = [ln.strip() for ln in (run.out + "\n" + run.err).splitlines() if ln.strip()]
    return ([ln for ln in lines if ln.startswith("error:")] or lines or [f"exit status {run.rc}"])[-1][:300]


def word(i: int) -> str:
    """The i-th synthetic word: i in bijective base 26, letters only (a, ..., z, aa, ab, ...)."""
    out = ""
    while i >= 0:
        out, i = chr(97 + i % 26) + out, i // 26 - 1
    return out


def draw(rng: np.random.Generator, n_words: int, size: int) -> np.ndarray:
    """Word ranks with log-uniform (Zipf-like) frequencies, rank 0 the most frequent."""
    u = rng.random(size)  # [size]
    return np.minimum(np.exp(u * math.log(n_words + 1)).astype(np.int64) - 1, n_words - 1)  # [size]


def write_corpus(folder: str, vocab_size: int, n_tokens: int, seed: int) -> Corpus:
    """Two shards in the 1B-Word layout drawn from a `vocab_size`-token vocabulary (the package's Vocab writes it)."""
    from paddle_lm.data.vocab import SPECIALS, Vocab

    words = [word(i) for i in range(vocab_size - len(SPECIALS))]
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 31, size=n_tokens // 17 + 1)  # [n_sentences]
    ids = draw(rng, len(words), int(lengths.sum()))  # [n_tokens]
    lines = [" ".join(words[i] for i in chunk) for chunk in np.split(ids, np.cumsum(lengths)[:-1])]
    train = os.path.join(folder, "training-tokenized-shuffled")
    os.makedirs(train)
    for k, part in enumerate((lines[:len(lines) // 2], lines[len(lines) // 2:])):
        with open(os.path.join(train, f"news.en-0000{k}-of-00002"), "w", encoding="utf-8") as f:
            f.write("\n".join(part) + "\n")
    Vocab(list(SPECIALS) + words).save(os.path.join(folder, "vocab.txt"))
    return Corpus(os.path.join(train, "*"), os.path.join(folder, "vocab.txt"), words)


def steady_speed(rows: list[dict]) -> float:
    """Median tokens/s of the logged steps after the first quarter (warm-up: allocator, kernel choice)."""
    speeds = [float(r["tokens_per_s"]) for r in rows]
    return statistics.median(speeds[max(1, len(speeds) // 4):] if len(speeds) > 1 else speeds)


def logged(save_dir: str) -> int:
    """Complete lines in {save_dir}/metrics.jsonl (0 before the file exists)."""
    path = os.path.join(save_dir, "metrics.jsonl")
    with open(path if os.path.exists(path) else os.devnull) as f:
        return sum(1 for line in f if line.endswith("\n"))


def without_speed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]


def tidy(value):
    """JSON-ready: floats to 6 significant digits, non-finite ones to null."""
    if isinstance(value, (dict, list, tuple)):
        return {k: tidy(v) for k, v in value.items()} if isinstance(value, dict) else [tidy(v) for v in value]
    return (float(f"{value:.6g}") if math.isfinite(value) else None) if isinstance(value, float) else value
