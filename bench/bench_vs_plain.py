"""ELMo at the `elmo-paddlenlp` configuration: paddle-lm's network against the same network written the plain
way (bench/plain_elmo.py), same trainer, data, optimizer and threads, alternating, in one run; with the FLOPs per
token and the share of a Paddle GEMM peak measured in the same run.

    python bench/bench_vs_plain.py [--steps 10] [--repeats 2] [--threads 2] [--batch_size 32]

Both train `--preset elmo-paddlenlp` with the full softmax (`--n_negative_samples 0`, the reference's math) on
the sample with Adagrad, 1 process; the plain sides swap the trainer's model for PlainELMo, once as written the
plain way (`paddle.max`) and once with max-pooling (whose CPU backward is fast). Prints tokens/s per
direction-pair token, achieved GFLOP/s, the share of the GEMM peak (of the model's FLOPs, and of the FLOPs
executed: ours runs the char-CNN once per distinct token) and the last logged loss of each side as a table and a
JSON last line. Issue 10's goal: ours >= 4x the plain network.
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
from bench_peak import distinct_share, vocab_size
from bench_rss import short_run
from bench_vs_torch import GEMM, child

from paddle_lm.config import PRESETS, apply_preset
from paddle_lm.models.flops import train_flops_per_token

#: Run before run_pretrain.py (bench_rss.short_run's BENCH_SETUP): the trainer's model becomes the plain network.
PLAIN = """
sys.path.insert(0, "bench")
import plain_elmo
import paddle_lm.training.trainer as trainer
trainer.build_model = lambda cfg, with_softmax=True: plain_elmo.PlainELMo(cfg, pooling={pooling!r})
"""
SIDES = {"ours": {}, "plain": {"BENCH_SETUP": PLAIN.format(pooling="max")},
         "plain, max-pool": {"BENCH_SETUP": PLAIN.format(pooling="pool")}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=32)
    args = p.parse_args()
    pattern = SAMPLE_TRAIN
    vocab = SAMPLE_VOCAB
    flags = ("--preset", "elmo-paddlenlp", "--batch_size", str(args.batch_size))
    runs: dict[str, list] = {"gemm": [], **{side: [] for side in SIDES}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # alternating
            runs["gemm"].append(child(["-c", GEMM, "paddle", str(args.threads)], args.threads)["gflops"])
            for side, env in SIDES.items():
                runs[side].append(short_run(pattern, vocab, args.steps, tmp, negatives=0, threads=args.threads,
                                            extra=flags, env=env))
        share = distinct_share(pattern, vocab, args.batch_size, 20, args.steps + 1, tmp)
    v = vocab_size(vocab)
    cfg = dataclasses.replace(apply_preset(PRESETS["elmo-paddlenlp"]["model"], "elmo-paddlenlp"), vocab_size=v)
    flops, peak = train_flops_per_token(cfg), statistics.median(runs["gemm"])
    executed = {"ours": train_flops_per_token(cfg, encoded_share=share)}  # the plain sides run every position
    out = {}
    for side in SIDES:
        speed = statistics.median(r["tokens_per_s"] for r in runs[side])
        done = executed.get(side, flops)
        out[side] = {"tokens_per_s": speed, "gflops": flops * speed / 1e9, "share_of_peak": flops * speed / 1e9 / peak,
                     "executed_share_of_peak": done * speed / 1e9 / peak,
                     "last_loss": runs[side][0]["rows"][-1]["loss"], "runs": [r["tokens_per_s"] for r in runs[side]]}
    ratio = out["ours"]["tokens_per_s"] / out["plain"]["tokens_per_s"]
    ratio_pool = out["ours"]["tokens_per_s"] / out["plain, max-pool"]["tokens_per_s"]
    print(f"elmo-paddlenlp, vocabulary {v:,}, full softmax, batch {args.batch_size} x 20, {args.threads} threads, "
          f"{args.steps} steps, median of {args.repeats}; {flops / 1e9:.3f} GFLOP per training token; "
          f"GEMM peak {peak:.1f} GFLOP/s; distinct tokens per position {share:.3f} (ours runs its char-CNN on those)")
    for side, r in out.items():
        print(f"{side:>15} {r['tokens_per_s']:>7.1f} tokens/s {r['gflops']:>6.1f} GFLOP/s "
              f"{100 * r['share_of_peak']:>5.1f}% of peak (executed {100 * r['executed_share_of_peak']:.1f}%)  "
              f"last loss {r['last_loss']:.4f}  runs {r['runs']}")
    print(f"ours / plain: {ratio:.2f}x; ours / plain with max-pool: {ratio_pool:.2f}x")
    print(json.dumps({"steps": args.steps, "repeats": args.repeats, "flops_per_token": flops, "gemm_peak": peak,
                      "distinct_share": share,
                      "ratio": ratio, "ratio_max_pool": ratio_pool, **out}))


if __name__ == "__main__":
    main()
