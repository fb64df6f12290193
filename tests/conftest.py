"""Shared fixtures and helpers: a tiny corpus written by the tests themselves, a tiny checkpoint trained
on it, the real scripts run in a subprocess or in this process, and the one-line-error check."""

from __future__ import annotations

import contextlib
import io
import os
import random
import runpy
import subprocess
import sys

import numpy as np
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


def train_tiny(corpus: dict, save_dir: str, preset: str = "elmo-tiny", save_steps: int = 1) -> str:
    """Train `preset` (its model family) for 2 steps on `corpus` (the tiny_corpus fixture) into save_dir.

    Checkpoints land every `save_steps` steps, plus `final`; returns save_dir.
    """
    from paddle_lm.config import PRESETS, DataConfig, TrainConfig, apply_preset
    from paddle_lm.training.trainer import train

    train(DataConfig(train_data_path=corpus["train"], vocab_file=corpus["vocab"]),
          apply_preset(PRESETS[preset]["model"], preset),
          TrainConfig(save_dir=save_dir, batch_size=4, unroll_steps=5, max_steps=2, save_steps=save_steps),
          progress=False)
    return save_dir


def run_inproc(target: str, argv: list[str], monkeypatch) -> tuple[int, str, str]:
    """`python TARGET ARGV` in this process; returns (exit status, stdout, stderr).

    TARGET is a top-level script relative to the repo root, or "paddle_lm" for `python -m paddle_lm`.
    """
    monkeypatch.setattr(sys, "argv", [target, *argv])
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if target == "paddle_lm":
                runpy.run_module("paddle_lm", run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(os.path.join(ROOT, target), run_name="__main__")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """Exit status 2, exactly one `error:` line in stderr, no traceback, and every needle in that line."""
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]


def launch_pretrain(args: list[str], log_dir: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """run_pretrain.py under `python -m paddle.distributed.launch` with `nproc` CPU ranks (logs in log_dir).

    On failure, the end of every rank's workerlog is appended to the result's stdout for the assertion message.
    """
    r = run_script(["-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir", log_dir,
                    "run_pretrain.py", *args], ROOT)
    if r.returncode != 0:
        for i in range(nproc):
            path = os.path.join(log_dir, f"workerlog.{i}")
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    r.stdout += f"\n--- workerlog.{i} (end) ---\n" + f.read()[-2000:]
    return r


def interrupted_copy(src: str, dst: str, drop: str = "final") -> None:
    """Copy a save_dir as if the run had stopped before checkpoint `drop` was written."""
    import shutil

    from paddle_lm.training.checkpoint import SUFFIXES

    shutil.copytree(src, dst)
    for suf in SUFFIXES:
        os.remove(os.path.join(dst, drop + suf))


# ---------------------------------------------------------------------------------------------- polarity data
POS = ["great", "wonderful", "superb", "delightful", "brilliant"]
NEG = ["awful", "boring", "terrible", "dull", "horrible"]
NEUTRAL = ["the", "movie", "film", "was", "is", "and", "very", "plot", "acting", "."]


def _sentences(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"The {rng.choice(['movie', 'film', 'plot'])} was {rng.choice(['very ', ''])}{rng.choice(words)} and "
            f"{rng.choice(words)} ." for _ in range(n)]


@pytest.fixture(scope="session")
def polarity(tmp_path_factory) -> str:
    """30 positive and 30 negative sentences, separable by their adjectives."""
    d = tmp_path_factory.mktemp("polarity")
    (d / "rt-polarity.pos").write_text("\n".join(_sentences(POS, 30, 1)) + "\n")
    (d / "rt-polarity.neg").write_text("\n".join(_sentences(NEG, 30, 2)) + "\n\n")
    return str(d)


def _toy_vectors(dim: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    vecs = {w: rng.normal(0, 0.3, dim).astype(np.float32) for w in POS + NEG + NEUTRAL}
    for w in POS:
        vecs[w][0] += 2.0
    for w in NEG:
        vecs[w][0] -= 2.0
    return vecs


@pytest.fixture(scope="session")
def vector_files(tmp_path_factory) -> dict[str, str]:
    """The same toy vectors as word2vec text, GloVe text (no header) and word2vec binary."""
    from gensim.models import KeyedVectors

    d = tmp_path_factory.mktemp("vectors")
    vecs = _toy_vectors()
    rows = [f"{w} " + " ".join(f"{x:.6f}" for x in v) for w, v in vecs.items()]
    (d / "w2v.txt").write_text(f"{len(rows)} 8\n" + "\n".join(rows) + "\n")
    (d / "glove.txt").write_text("\n".join(rows) + "\n")
    kv = KeyedVectors(8)
    kv.add_vectors(list(vecs), np.stack(list(vecs.values())))
    kv.save_word2vec_format(str(d / "w2v.bin"), binary=True)
    return {"text": str(d / "w2v.txt"), "glove": str(d / "glove.txt"), "binary": str(d / "w2v.bin")}


@pytest.fixture(scope="session")
def elmo_ckpt(tiny_corpus, tmp_path_factory) -> str:
    """A tiny ELMo trained for 2 steps on the conftest corpus; returns the `final` prefix."""
    return os.path.join(train_tiny(tiny_corpus, str(tmp_path_factory.mktemp("elmo")), save_steps=2), "final")
