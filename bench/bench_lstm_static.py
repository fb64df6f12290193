"""One projected, clipped LSTM layer (the per-time-step loop ELMo trains with): eager vs `paddle.jit.to_static`,
forward + backward, side by side in one run.

    python bench/bench_lstm_static.py [--device cpu|gpu] [--runs 5]

Sizes: an `elmo-small` layer (input 128, cell 512, projection 128) and an `elmo-original` layer (512, 4096,
512), batch 32 x unroll 20. Prints the median times, the speed-up of the traced loop and the largest output
difference (the two paths compute the same thing), as a table and a JSON last line. On a GPU the eager loop
pays a kernel launch per op and time step; that is where tracing may pay.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import paddle

from paddle_lm.models.layers import ProjectedLSTM

SIZES = {"elmo-small layer": (128, 512, 128), "elmo-original layer": (512, 4096, 512)}


def timed(fn, x, runs: int) -> tuple[float, np.ndarray]:
    out, _ = fn(x)
    out.sum().backward()  # warm-up (and the trace, for to_static)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out, _ = fn(x)
        out.sum().backward()
        float(out.sum())  # wait for the device
        times.append(time.perf_counter() - t)
    return statistics.median(times), out.numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--unroll_steps", type=int, default=20)
    args = p.parse_args()
    paddle.set_device(args.device)
    rows = []
    print(f"{'layer':<22} {'eager ms':>10} {'to_static ms':>13} {'speed-up':>9} {'max |diff|':>11}")
    for name, (inp, cell, proj) in SIZES.items():
        paddle.seed(0)
        layer = ProjectedLSTM(inp, cell, proj, cell_clip=3.0, proj_clip=3.0)
        x = paddle.randn([args.batch_size, args.unroll_steps, inp])
        x.stop_gradient = False
        eager, out_e = timed(layer, x, args.runs)
        traced, out_s = timed(paddle.jit.to_static(layer, full_graph=True), x, args.runs)
        diff = float(np.abs(out_e - out_s).max())
        print(f"{name:<22} {eager * 1e3:>10.1f} {traced * 1e3:>13.1f} {eager / traced:>8.2f}x {diff:>11.1e}")
        rows.append({"layer": name, "eager_s": eager, "to_static_s": traced, "speedup": eager / traced,
                     "max_abs_diff": diff})
    print(json.dumps({"device": args.device, "batch_size": args.batch_size, "unroll_steps": args.unroll_steps,
                      "runs": args.runs, "results": rows}))


if __name__ == "__main__":
    main()
