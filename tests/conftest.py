"""Shared fixtures: a tiny corpus written by the tests themselves, and a helper to run the real scripts."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")

_SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the company", "our team", "Anna", "the bank"]
_VERBS = ["sees", "likes", "buys", "sells", "finds", "wants", "makes", "reports"]
_OBJECTS = ["a ball", "the house", "new shares", "the report", "some bread", "a car", "profits", "the game"]
_TAILS = ["", "today", "in London", "again", "for the first time", "on Monday"]


def make_sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}".split()
        if rng.random() < 0.1:
            words.append(f"w{rng.randrange(1000)}")  # rare tokens -> <UNK> under min_count 2
        out.append(" ".join(words + ["."]))
    return out


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> dict:
    """1-Billion-Word layout: two training shards, one held-out shard, and a vocab (min count 2)."""
    from paddle_lm.data.vocab import build_vocab

    root = tmp_path_factory.mktemp("tiny-1bw")
    train, heldout = root / "training-tokenized-shuffled", root / "heldout-tokenized-shuffled"
    train.mkdir()
    heldout.mkdir()
    for i in range(2):
        (train / f"news.en-0000{i}-of-00002").write_text("\n".join(make_sentences(300, i)) + "\n")
    (heldout / "news.en.heldout-00000-of-00001").write_text("\n".join(make_sentences(60, 99)) + "\n")
    vocab = build_vocab(sorted(str(p) for p in train.iterdir()), min_count=2, progress=False)
    vocab.save(str(root / "vocab.txt"))
    return {
        "root": str(root),
        "train": str(train / "*"),
        "dev": str(heldout / "*"),
        "vocab": str(root / "vocab.txt"),
    }


def run_script(args: list[str], cwd: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python <args>` from the repo root with the test environment; never raises on failure."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, "MKL_DEBUG_CPU_TYPE": "5", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, check=False)
