"""Data loading's share of the training step, on the sample and on a 1-Billion-Word-shaped corpus of 100 shards.

    python bench/bench_loading.py [--tokens 60000000] [--steps 30] [--negatives 8192]

For `elmo-small` (batch 32 x 20, a sampled softmax of `--negatives`, row-wise update, 1 process) this times
(a) building one micro-batch (`Trainer._batch`: memmap gather, char ids, negatives, touched rows) on its own,
and (b) inside a real run, how long the training thread waits for the batch the prefetch thread built. Both
as a share of the measured step time. Prints a table and a JSON last line. Issue 9's goal: under 2%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")  # as the other benches' runs; before Paddle loads
os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_encode import SAMPLE_TRAIN, SAMPLE_VOCAB, build_corpus

from paddle_lm.config import PRESETS, DataConfig, TrainConfig, apply_preset


def measure(pattern: str, vocab: str, steps: int, negatives: int, tmp: str) -> dict:
    from paddle_lm.training.trainer import Trainer

    cfg = TrainConfig(save_dir=tempfile.mkdtemp(dir=tmp), max_steps=steps, n_negative_samples=negatives,
                      save_steps=10 * steps, logging_steps=steps, visualdl=False, device="cpu")
    trainer = Trainer(DataConfig(train_data_path=pattern, vocab_file=vocab),
                      apply_preset(PRESETS["elmo-small"]["model"], "elmo-small"), cfg, progress=False)
    builds = []
    for micro in range(steps):
        t = time.perf_counter()
        trainer._batch(micro)
        builds.append(time.perf_counter() - t)
    waits, get = [], trainer.prefetch.get

    def timed_get(micro: int) -> dict:
        t = time.perf_counter()
        batch = get(micro)
        waits.append(time.perf_counter() - t)
        return batch

    trainer.prefetch.get = timed_get
    try:
        last = trainer.run()  # one logging window over all the steps (not the final save)
    finally:
        trainer.close()
    step = trainer.tokens_per_step / last["tokens_per_s"]
    build, wait = statistics.median(builds), statistics.median(waits[1:])  # the first batch is not prefetched
    return {"step_ms": 1e3 * step, "build_ms": 1e3 * build, "wait_ms": 1e3 * wait,
            "build_share": build / step, "wait_share": wait / step}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=60_000_000)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--negatives", type=int, default=8192)
    args = p.parse_args()
    vocab = SAMPLE_VOCAB
    with tempfile.TemporaryDirectory() as tmp:
        big, _ = build_corpus(tmp, args.tokens, 100)
        corpora = {"sample": SAMPLE_TRAIN, "large": big}
        out = {name: measure(pattern, vocab, args.steps, args.negatives, tmp) for name, pattern in corpora.items()}
    print(f"elmo-small, batch 32 x 20, {args.negatives:,} negatives, {args.steps} steps, 1 process")
    print(f"{'corpus':>7} {'step':>9} {'build a batch':>14} {'share':>7} {'wait (prefetched)':>18} {'share':>7}")
    for name, r in out.items():
        print(f"{name:>7} {r['step_ms']:>6.0f} ms {r['build_ms']:>11.2f} ms {100 * r['build_share']:>6.2f}% "
              f"{r['wait_ms']:>15.3f} ms {100 * r['wait_share']:>6.3f}%")
    print(json.dumps({"negatives": args.negatives, "steps": args.steps, "tokens": args.tokens, **out}))


if __name__ == "__main__":
    main()
