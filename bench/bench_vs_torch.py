"""Word LSTM LM: paddle-lm's `--model lstm` against the same network in PyTorch eager, and each against the GEMM
peak measured in the same run — all alternating, in one run.

    pip install -e '.[bench]'   # torch, for the reference side only
    python bench/bench_vs_torch.py [--steps 30] [--repeats 3] [--threads 2]

The configuration is issue 10's: vocabulary 10,000 (the sample's most frequent words), embedding 256, 2 LSTM
layers of 512, untied full softmax, batch 32 x unroll 35, dropout 0.2, `--threads` threads each. Ours is the real
`run_pretrain.py` on the sample (Adagrad, clipping, the state carried); the reference is bench/torch_lstm_lm.py
(SGD, clipping, the state carried). The GEMM peak is a 2048^3 float32 matmul in each framework (Paddle with
`MKL_DEBUG_CPU_TYPE=5`). Ours runs with and without its glibc malloc setting (paddle_lm/cli.py `tune_malloc`),
PyTorch as installed and with the same setting (GLIBC_TUNABLES). FLOPs per token come from
paddle_lm/models/flops.py (matmuls only, 3 forward passes' worth). Prints medians as a table and a JSON last
line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_encode import SAMPLE_TRAIN, sample_vocab
from bench_rss import short_run

from paddle_lm.config import ModelConfig
from paddle_lm.models.flops import train_flops_per_token

VOCAB, EMBED, HIDDEN, LAYERS, BATCH, UNROLL = 10_000, 256, 512, 2, 32, 35
GEMM = """
import json, sys, time
n = 2048
if sys.argv[1] == "torch":
    import torch
    torch.set_num_threads(int(sys.argv[2]))
    a, b = torch.randn(n, n), torch.randn(n, n)
    run = lambda: torch.matmul(a, b)
else:
    import paddle
    a, b = paddle.randn([n, n]), paddle.randn([n, n])
    run = lambda: float(paddle.matmul(a, b)[0, 0])
run()
times = []
for _ in range(7):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"gflops": 2 * n ** 3 / times[3] / 1e9}))
"""


#: The same glibc malloc setting paddle-lm makes in-process (paddle_lm.cli.tune_malloc), for the PyTorch side.
TUNED_MALLOC = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=2147483647"}


def child(args: list[str], threads: int, env: dict | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_DEBUG_CPU_TYPE": "5", "PYTHONPATH": ROOT,
           **(env or {})}
    out = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"{args[:2]} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    pattern = SAMPLE_TRAIN
    ours_flags = ("--model", "lstm", "--embedding_dim", str(EMBED), "--hidden_size", str(HIDDEN), "--num_layers",
                  str(LAYERS), "--no-tie_weights", "--dropout", "0.2", "--batch_size", str(BATCH),
                  "--unroll_steps", str(UNROLL))
    torch_args = ["bench/torch_lstm_lm.py", "--vocab", str(VOCAB), "--embedding", str(EMBED), "--hidden",
                  str(HIDDEN), "--layers", str(LAYERS), "--batch", str(BATCH), "--unroll", str(UNROLL),
                  "--steps", str(args.steps), "--threads", str(args.threads)]
    sides = ("ours", "ours_stock_malloc", "torch", "torch_tuned_malloc")
    runs: dict[str, list[float]] = {k: [] for k in ("gemm_paddle", "gemm_torch", *sides)}
    with tempfile.TemporaryDirectory() as tmp:
        vocab = sample_vocab(VOCAB, tmp)
        for _ in range(args.repeats):  # alternating
            runs["gemm_paddle"].append(child(["-c", GEMM, "paddle", str(args.threads)], args.threads)["gflops"])
            runs["gemm_torch"].append(child(["-c", GEMM, "torch", str(args.threads)], args.threads)["gflops"])
            for side, env in (("ours", {}), ("ours_stock_malloc", {"PADDLE_LM_MALLOC_TUNING": "0"})):
                runs[side].append(short_run(pattern, vocab, args.steps, tmp, negatives=0, threads=args.threads,
                                            extra=ours_flags, env=env)["tokens_per_s"])
            runs["torch"].append(child(torch_args, args.threads)["tokens_per_s"])
            runs["torch_tuned_malloc"].append(child(torch_args, args.threads, TUNED_MALLOC)["tokens_per_s"])
    med = {k: statistics.median(v) for k, v in runs.items()}
    cfg = ModelConfig(model="lstm", embedding_dim=EMBED, hidden_size=HIDDEN, num_layers=LAYERS, vocab_size=VOCAB)
    flops = train_flops_per_token(dataclasses.replace(cfg, tie_weights=False))
    peak = max(med["gemm_paddle"], med["gemm_torch"])
    rows = {}
    for side in sides:
        gemm = "gemm_torch" if side.startswith("torch") else "gemm_paddle"
        achieved = flops * med[side] / 1e9
        rows[side] = {"tokens_per_s": med[side], "gflops": achieved, "gemm_peak_gflops": med[gemm],
                      "share_of_own_peak": achieved / med[gemm], "share_of_best_peak": achieved / peak}
    print(f"word LSTM LM, V {VOCAB:,}, emb {EMBED}, {LAYERS} x {HIDDEN}, batch {BATCH} x {UNROLL}, full softmax, "
          f"{args.threads} threads; {flops / 1e6:.1f} MFLOP per training token; medians of {args.repeats}")
    print(f"{'side':>18} {'tokens/s':>9} {'GFLOP/s':>8} {'GEMM peak':>10} {'of own peak':>12} {'of best peak':>13}")
    for side, r in rows.items():
        print(f"{side:>18} {r['tokens_per_s']:>9.0f} {r['gflops']:>8.1f} {r['gemm_peak_gflops']:>10.1f} "
              f"{100 * r['share_of_own_peak']:>11.1f}% {100 * r['share_of_best_peak']:>12.1f}%")
    ratio, tuned = med["ours"] / med["torch"], med["ours"] / med["torch_tuned_malloc"]
    print(f"ours / torch as installed: {ratio:.2f}x; ours / torch with the same malloc setting: {tuned:.2f}x; "
          f"the setting for ours: {med['ours'] / med['ours_stock_malloc']:.2f}x")
    print(json.dumps({"threads": args.threads, "steps": args.steps, "repeats": args.repeats,
                      "flops_per_token": flops, "ratio": ratio, "ratio_same_malloc": tuned, **rows, "runs": runs}))


if __name__ == "__main__":
    main()
