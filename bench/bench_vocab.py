"""Cost of the vocabulary size with the sampled softmax: step time and peak RSS at 16k, 150k and 793k words,
8,192 negatives, one process with 2 threads, the row-wise and the dense softmax update, alternating, in one run.

    python bench/bench_vocab.py [--preset elmo-small] [--vocab 16285 150000 793471] [--steps 20] [--repeats 2]
                                [--modes rows dense] [--batch_size 32] [--device cpu|gpu]

Larger vocabularies are the sample's `vocab-15w.txt` padded with words that never occur (the data, and so the
targets, stay the same; what grows is the softmax). Prints tokens/s, peak RSS and the slowdown against the
smallest vocabulary of the same mode as a table and a JSON last line. Issue 9's goal: the full vocabulary
within 1.3x of 16k.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_encode import SAMPLE_TRAIN, SAMPLE_VOCAB, sample_vocab
from bench_rss import short_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="elmo-small")
    p.add_argument("--vocab", type=int, nargs="+", default=[16285, 150000, 793471])
    p.add_argument("--modes", nargs="+", default=["rows", "dense"], choices=["rows", "dense"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--negatives", type=int, default=8192)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    args = p.parse_args()
    pattern = SAMPLE_TRAIN
    cases = [(m, v) for m in args.modes for v in args.vocab]
    with tempfile.TemporaryDirectory() as tmp:
        vocabs = {v: sample_vocab(v, tmp) if v > 16285 else SAMPLE_VOCAB
                  for v in args.vocab}
        runs: dict[tuple, list] = {c: [] for c in cases}
        for _ in range(args.repeats):
            for mode, v in cases:  # alternating
                flags = ("--preset", args.preset, "--softmax_update", mode, "--batch_size", str(args.batch_size))
                runs[mode, v].append(short_run(pattern, vocabs[v], args.steps, tmp, args.negatives, threads=2,
                                               extra=flags, device=args.device))
    med = {c: (statistics.median(r["tokens_per_s"] for r in rs), statistics.median(r["peak"] for r in rs))
           for c, rs in runs.items()}
    print(f"{args.preset} on {args.device}, {args.negatives:,} negatives, batch {args.batch_size}, median of "
          f"{args.repeats}")
    print(f"{'update':>6} {'vocabulary':>10} {'tokens/s':>9} {'slowdown':>9} {'peak RSS':>10}")
    for mode, v in cases:
        speed, rss = med[mode, v]
        print(f"{mode:>6} {v:>10,} {speed:>9.1f} {med[mode, args.vocab[0]][0] / speed:>8.2f}x {rss:>7.0f} MiB")
    print(json.dumps({"device": args.device, "preset": args.preset, "negatives": args.negatives, "steps": args.steps,
                      "repeats": args.repeats, "batch_size": args.batch_size,
                      **{mode: {str(v): {"tokens_per_s": med[mode, v][0], "peak_rss_mib": med[mode, v][1],
                                         "slowdown": med[mode, args.vocab[0]][0] / med[mode, v][0]}
                                for v in args.vocab} for mode in args.modes}}))


if __name__ == "__main__":
    main()
