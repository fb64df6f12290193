"""Mixed precision: tokens/s and the loss against float32 of `--amp off`, `bf16` and `fp16`, alternating, in
one run, and whether autocast was active at all (the run prints a note where it is a no-op).

    python bench/bench_amp.py [--device cpu|gpu] [--preset elmo-small] [--steps 30] [--repeats 2]

Every mode trains the same steps from the same seed on the sample (8,192 negatives); "loss diff" is the last
logged window loss minus float32's. Prints a table and a JSON last line. On Paddle 3.3.1's CPU build every
mode is float32 (reported as inactive); on a GPU this is the AMP speed-up and the precision cost.
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

from bench_encode import SAMPLE_TRAIN, SAMPLE_VOCAB
from bench_rss import short_run

MODES = ("off", "bf16", "fp16")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--preset", default="elmo-small")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=32)
    args = p.parse_args()
    pattern = SAMPLE_TRAIN
    vocab = SAMPLE_VOCAB
    runs: dict[str, list] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for mode in MODES:  # alternating
                flags = ("--preset", args.preset, "--amp", mode, "--batch_size", str(args.batch_size))
                runs[mode].append(short_run(pattern, vocab, args.steps, tmp, 8192, threads=2, extra=flags,
                                            device=args.device))
    out = {}
    for mode, rs in runs.items():
        out[mode] = {"tokens_per_s": statistics.median(r["tokens_per_s"] for r in rs),
                     "loss": rs[0]["rows"][-1]["loss"],
                     "active": mode != "off" and all("is a no-op" not in r["stdout"] for r in rs)}
    base = out["off"]
    print(f"{args.preset} on {args.device}, {args.steps} steps, batch {args.batch_size} x 20, median of "
          f"{args.repeats}")
    print(f"{'--amp':>6} {'autocast':>9} {'tokens/s':>9} {'speed-up':>9} {'last loss':>10} {'loss diff':>10}")
    for mode, r in out.items():
        r["speedup"], r["loss_diff"] = r["tokens_per_s"] / base["tokens_per_s"], r["loss"] - base["loss"]
        state = "-" if mode == "off" else ("active" if r["active"] else "no-op")
        print(f"{mode:>6} {state:>9} {r['tokens_per_s']:>9.1f} {r['speedup']:>8.2f}x {r['loss']:>10.4f} "
              f"{r['loss_diff']:>+10.4f}")
    print(json.dumps({"device": args.device, "preset": args.preset, "steps": args.steps, "repeats": args.repeats,
                      "modes": out}))


if __name__ == "__main__":
    main()
