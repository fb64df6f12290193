"""Learning per step: paddle-lm's ELMo against the plain reference network (bench/plain_elmo.py) at the
`elmo-paddlenlp` configuration — the training loss of every step, same trainer, data order, optimizer and seed.

    python bench/bench_learning.py [--steps 50] [--seeds 1] [--threads 2]

Both sides train `--preset elmo-paddlenlp` with the full softmax on the sample (1 process, Adagrad, the
trainer's defaults); the plain side is PlainELMo with max-pooling (the same values as its `paddle.max`, whose
CPU backward is ~10x slower). Prints the loss at every tenth step, the mean over the last 10 steps of each side
and their difference (ours - plain; negative = ours learns faster), per seed and as a median, as a table and a
JSON last line, and each side's gradient norm per part on the first batch (where the two start apart: the plain
initialization gives the char-CNN ~100x smaller gradients, which Adagrad's initial accumulator of 1 turns into
~100x smaller steps). Issue 10's goal 5: ours no worse than plain after 50 steps.
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
from bench_vs_plain import PLAIN

SIDES = {"ours": {}, "plain": {"BENCH_SETUP": PLAIN.format(pooling="pool")}}


def first_gradients(tmp: str) -> dict[str, dict[str, float]]:
    """Each side's gradient norm per part (top-level sublayer) on the first batch of the stream, from its
    initialization: where the two networks start to differ. In-process, on this process's threads."""
    import paddle
    import plain_elmo

    from paddle_lm.config import PRESETS, apply_preset
    from paddle_lm.data.shards import EncodedCorpus
    from paddle_lm.data.stream import BPTTStream
    from paddle_lm.data.vocab import Vocab
    from paddle_lm.models import build_model

    vocab = Vocab.load(SAMPLE_VOCAB)
    batch = BPTTStream(EncodedCorpus(SAMPLE_TRAIN, vocab, cache_dir=tmp, progress=False), 32, 20).batch(0)
    cfg = dataclasses.replace(apply_preset(PRESETS["elmo-paddlenlp"]["model"], "elmo-paddlenlp"),
                              vocab_size=len(vocab), dropout=0.0)
    out = {}
    for side, build in (("ours", lambda: build_model(cfg)), ("plain", lambda: plain_elmo.PlainELMo(cfg, "pool"))):
        paddle.seed(0)
        model = build()
        _, loss, _ = model({k: paddle.to_tensor(v) for k, v in batch.items()})
        loss.backward()
        squares: dict[str, float] = {}
        for name, param in model.named_parameters():
            if param.grad is not None:
                part = name.split(".")[0]
                squares[part] = squares.get(part, 0.0) + float((param.grad ** 2).sum())
        out[side] = {"loss": float(loss), "total": sum(squares.values()) ** 0.5,
                     **{part: sq ** 0.5 for part, sq in squares.items()}}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seeds", type=int, default=1, help="runs per side, seeds 0..N-1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tail", type=int, default=10, help="steps averaged at the end")
    args = p.parse_args()
    curves: dict[str, list[list[float]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory() as tmp:
        grads = first_gradients(tmp)
        for seed in range(args.seeds):
            for side, env in SIDES.items():
                flags = ("--preset", "elmo-paddlenlp", "--logging_steps", "1", "--seed", str(seed))
                r = short_run(SAMPLE_TRAIN, SAMPLE_VOCAB, args.steps, tmp, negatives=0, threads=args.threads,
                              extra=flags, env=env)
                curves[side].append([row["loss"] for row in r["rows"]])
                print(f"seed {seed} {side}: step {args.steps} loss {curves[side][-1][-1]:.4f}", flush=True)
    tails = {side: [statistics.fmean(c[-args.tail:]) for c in runs] for side, runs in curves.items()}
    diffs = [o - q for o, q in zip(tails["ours"], tails["plain"])]
    marks = sorted({*range(9, args.steps, 10), args.steps - 1})
    print(f"elmo-paddlenlp, full softmax, batch 32 x 20, Adagrad, {args.steps} steps, {args.seeds} seed(s); "
          f"training loss per step (seed 0)")
    print("step    " + "".join(f"{m + 1:>9}" for m in marks) + f"   last-{args.tail} mean")
    for side, runs in curves.items():
        print(f"{side:<8}" + "".join(f"{runs[0][m]:>9.4f}" for m in marks) + f"   {tails[side][0]:.4f}")
    diff = statistics.median(diffs)
    print(f"ours - plain, mean of the last {args.tail} steps: per seed {[round(d, 4) for d in diffs]}, "
          f"median {diff:+.4f} ({'ours no worse' if diff <= 0 else 'ours worse'})")
    print("gradient norms on the first batch, by part (dropout off):")
    for side, g in grads.items():
        print(f"{side:<8}" + "  ".join(f"{k} {v:.4g}" for k, v in g.items()))
    print(json.dumps({"first_gradients": grads, "steps": args.steps, "seeds": args.seeds, "tail": args.tail, "tails": tails,
                      "diff_median": diff, "curves": curves}))


if __name__ == "__main__":
    main()
