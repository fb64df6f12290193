"""The glibc malloc setting (paddle_lm/cli.py `tune_malloc`) on and off for one preset, alternating, in one run.

    python bench/bench_malloc.py [--preset elmo-small] [--negatives 1024] [--steps 20] [--repeats 3] [flags...]

Runs `run_pretrain.py` on the sample (1 process, 2 threads) with the setting and with PADDLE_LM_MALLOC_TUNING=0;
extra flags go to run_pretrain.py. Prints tokens/s and peak RSS medians as a table and a JSON last line.
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

SETTINGS = {"tuned": {}, "glibc default": {"PADDLE_LM_MALLOC_TUNING": "0"}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="elmo-small")
    p.add_argument("--negatives", type=int, default=1024)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args, extra = p.parse_known_args()
    pattern = SAMPLE_TRAIN
    vocab = SAMPLE_VOCAB
    runs: dict[str, list] = {k: [] for k in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for name, env in SETTINGS.items():  # alternating
                runs[name].append(short_run(pattern, vocab, args.steps, tmp, args.negatives, threads=2,
                                            extra=("--preset", args.preset, *extra), env=env))
    med = {k: {"tokens_per_s": statistics.median(r["tokens_per_s"] for r in v),
               "peak_rss_mib": statistics.median(r["peak"] for r in v),
               "runs": [r["tokens_per_s"] for r in v]} for k, v in runs.items()}
    print(f"{args.preset}, {args.negatives} negatives, {args.steps} steps, 1 process x 2 threads, "
          f"median of {args.repeats}")
    for name, m in med.items():
        print(f"{name:>14} {m['tokens_per_s']:>8.1f} tokens/s  peak RSS {m['peak_rss_mib']:>6.0f} MiB  runs {m['runs']}")
    ratio = med["tuned"]["tokens_per_s"] / med["glibc default"]["tokens_per_s"]
    print(f"tuned / default: {ratio:.2f}x")
    print(json.dumps({"preset": args.preset, "negatives": args.negatives, "extra": extra, "ratio": ratio, **med}))


if __name__ == "__main__":
    main()
