"""Encoding a 1-Billion-Word-shaped corpus: tokens/s of one process, and two ranks encoding together.

    python bench/bench_encode.py [--tokens 20000000] [--shards 100] [--repeats 3]

Builds the corpus once from the sample's training shards (`bash download_data.sh --sample`), repeated to
`--tokens` stream tokens and dealt into `--shards` files like `training-tokenized-shuffled/news.en-000NN-of-00100`,
then times `EncodedCorpus` (text -> memmapped ids, the vocabulary map and the ELMo char table) into a fresh cache:
one process, and two processes started together as ranks 0 and 1 of a 2-rank run (they split the shards).
Prints the medians as a table and a JSON last line.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from paddle_lm.config import SAMPLE_LM_DIR

#: The sample's training shards and vocabulary (`bash download_data.sh --sample`), for every bench.
SAMPLE_TRAIN = os.path.join(ROOT, SAMPLE_LM_DIR, "training-tokenized-shuffled", "*")
SAMPLE_VOCAB = os.path.join(ROOT, SAMPLE_LM_DIR, "vocab-15w.txt")


def sample_vocab(size: int, folder: str) -> str:
    """A vocabulary file of exactly `size` entries: the sample's most frequent ones (its first lines, <S> </S>
    <UNK> included), padded with words that never occur where `size` is larger."""
    with open(SAMPLE_VOCAB, encoding="utf-8") as f:
        words = [w for w in f.read().split("\n") if w][:size]
    words += [f"__unseen{i}__" for i in range(size - len(words))]
    path = os.path.join(folder, f"vocab-{size}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    return path

CHILD = """
import sys, time
from paddle_lm.data.shards import EncodedCorpus
from paddle_lm.data.vocab import Vocab
pattern, vocab, cache, rank, world = sys.argv[1:6]
t = time.perf_counter()
c = EncodedCorpus(pattern, Vocab.load(vocab), cache_dir=cache, max_chars=50, progress=False,
                  rank=int(rank), world=int(world))
print(time.perf_counter() - t, c.n_tokens)
"""


def build_corpus(out: str, tokens: int, shards: int) -> tuple[str, int]:
    lines = []
    for path in sorted(glob.glob(SAMPLE_TRAIN)):
        with open(path, encoding="utf-8") as f:
            lines += [ln for ln in f.read().split("\n") if ln.strip()]
    if not lines:
        sys.exit("no sample corpus: run `bash download_data.sh --sample` first")
    per_line = sum(len(ln.split()) + 2 for ln in lines) / len(lines)
    need = int(tokens / per_line) + 1
    folder = os.path.join(out, "training-tokenized-shuffled")
    os.makedirs(folder)
    files = [open(os.path.join(folder, f"news.en-{i + 1:05d}-of-{shards:05d}"), "w", encoding="utf-8")  # noqa: SIM115
             for i in range(shards)]
    for i in range(need):
        files[i % shards].write(lines[i % len(lines)] + "\n")
    for f in files:
        f.close()
    return os.path.join(folder, "*"), need


def run(pattern: str, vocab: str, cache: str, world: int) -> tuple[float, int]:
    """Wall seconds until every rank is done, and the stream tokens."""
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": ROOT}
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, pattern, vocab, cache, str(r), str(world)], env=env,
                              stdout=subprocess.PIPE, text=True) for r in range(world)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t
    if any(p.returncode for p in procs):
        sys.exit("encoding failed")
    return wall, int(outs[0].split()[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=20_000_000)
    p.add_argument("--shards", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    vocab = SAMPLE_VOCAB
    with tempfile.TemporaryDirectory() as tmp:
        pattern, n_lines = build_corpus(tmp, args.tokens, args.shards)
        size = sum(os.path.getsize(f) for f in glob.glob(pattern))
        walls = {1: [], 2: []}
        for _ in range(args.repeats):
            for world in (1, 2):  # alternating
                wall, n_tokens = run(pattern, vocab, os.path.join(tmp, "cache"), world)
                walls[world].append(wall)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    rows = [("corpus", f"{args.shards} shards, {n_lines:,} sentences, {n_tokens:,} stream tokens, {size / 2**20:.0f} MiB"),
            ("1 process", f"{one:.2f} s = {n_tokens / one / 1e6:.2f}M tokens/s"),
            ("2 ranks together", f"{two:.2f} s = {n_tokens / two / 1e6:.2f}M tokens/s ({one / two:.2f}x one process)"),
            ("800M tokens (the 1B-word training set), 2 ranks", f"~{800e6 / (n_tokens / two) / 60:.1f} min")]
    for k, v in rows:
        print(f"{k:<50} {v}")
    print(json.dumps({"n_tokens": n_tokens, "one_process_s": round(one, 3), "two_ranks_s": round(two, 3),
                      "tokens_per_s_one": round(n_tokens / one), "tokens_per_s_two": round(n_tokens / two),
                      "ratio": round(one / two, 3), "runs": walls}))


if __name__ == "__main__":
    main()
