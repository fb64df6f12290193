"""Share of the CPU's GEMM peak that training reaches, per preset: tokens/s x FLOPs per token (counted from the
config, paddle_lm/models/flops.py) against a 2048^3 Paddle matmul measured in the same run, alternating.

    python bench/bench_peak.py [--presets elmo-paddlenlp,elmo-original] [--steps 6] [--repeats 2] [--threads 2]
        [--negatives 0] [--batch_size 32]

Each preset trains on the sample (1 process, `--threads` OMP threads, Adagrad, the full softmax unless
`--negatives`). Two shares are printed: of the model's FLOPs (the network as defined: the char-CNN over every
position) and of the FLOPs executed (ELMo's char-CNN runs once per distinct token of a batch; the distinct share
is measured over the run's own batches). Issue 10's goal 3: >= 70% for elmo-paddlenlp and elmo-original.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_encode import SAMPLE_TRAIN, SAMPLE_VOCAB
from bench_rss import short_run
from bench_vs_torch import GEMM, child

from paddle_lm.config import PRESETS, apply_preset
from paddle_lm.models.flops import train_flops_per_token


def distinct_share(pattern: str, vocab_file: str, batch_size: int, unroll: int, steps: int, tmp: str) -> float:
    """Distinct tokens per position over the first `steps` batches of the sample stream (what the char-CNN runs
    on, data.chars.distinct_rows)."""
    from paddle_lm.data.shards import EncodedCorpus
    from paddle_lm.data.stream import BPTTStream
    from paddle_lm.data.vocab import Vocab

    corpus = EncodedCorpus(pattern, Vocab.load(vocab_file), cache_dir=tmp, max_chars=50, progress=False)
    stream = BPTTStream(corpus, batch_size, unroll)
    batches = [stream.batch(s) for s in range(min(steps, stream.steps_per_epoch))]
    return sum(len(b["char_unique"]) for b in batches) / sum(b["char_ids"].shape[0] * unroll for b in batches)


def vocab_size(vocab_file: str) -> int:
    """Classes of the softmax for `vocab_file`: the project's own Vocab (which adds the specials if absent)."""
    from paddle_lm.data.vocab import Vocab

    return len(Vocab.load(vocab_file))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="elmo-paddlenlp,elmo-original")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--negatives", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=32)
    args = p.parse_args()
    presets = args.presets.split(",")
    runs: dict[str, list] = {"gemm": [], **{name: [] for name in presets}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # alternating
            runs["gemm"].append(child(["-c", GEMM, "paddle", str(args.threads)], args.threads)["gflops"])
            for name in presets:
                flags = ("--preset", name, "--batch_size", str(args.batch_size))
                runs[name].append(short_run(SAMPLE_TRAIN, SAMPLE_VOCAB, args.steps, tmp, negatives=args.negatives,
                                            threads=args.threads, extra=flags)["tokens_per_s"])
        share = distinct_share(SAMPLE_TRAIN, SAMPLE_VOCAB, args.batch_size, 20, args.steps + 1, tmp)
    peak = statistics.median(runs["gemm"])
    out = {"gemm_peak": peak, "gemm_runs": runs["gemm"], "distinct_share": share}
    softmax = f"{args.negatives} sampled negatives" if args.negatives else "full softmax"
    print(f"batch {args.batch_size} x 20, {softmax}, {args.threads} threads, {args.steps} steps, median of "
          f"{args.repeats}; Paddle GEMM peak {peak:.1f} GFLOP/s; distinct tokens per position {share:.3f}")
    print(f"{'preset':>15} {'tokens/s':>9} {'GFLOP/token':>12} {'GFLOP/s':>8} {'of peak':>8} "
          f"{'executed':>9} {'of peak':>8}")
    for name in presets:
        cfg = dataclasses.replace(apply_preset(PRESETS[name]["model"], name), vocab_size=vocab_size(SAMPLE_VOCAB))
        model, done = train_flops_per_token(cfg, negatives=args.negatives), train_flops_per_token(
            cfg, negatives=args.negatives, encoded_share=share)
        speed = statistics.median(runs[name])
        out[name] = {"tokens_per_s": speed, "runs": runs[name], "flops_per_token": model,
                     "executed_flops_per_token": done, "share_of_peak": model * speed / 1e9 / peak,
                     "executed_share_of_peak": done * speed / 1e9 / peak}
        r = out[name]
        print(f"{name:>15} {speed:>9.1f} {model / 1e9:>12.3f} {model * speed / 1e9:>8.1f} "
              f"{100 * r['share_of_peak']:>7.1f}% {done * speed / 1e9:>9.1f} {100 * r['executed_share_of_peak']:>7.1f}%")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
