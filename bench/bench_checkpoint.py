"""Checkpoint size, save time and memory at full-size vocabularies: the old in-memory save vs the streamed one,
and how long training is blocked when the write runs in the background.

    python bench/bench_checkpoint.py [--preset elmo-original] [--vocab 16285 150000 793471] [--repeats 1]

For each vocabulary a fresh process builds the model with its Adagrad state (one zero-gradient step creates the
accumulators) and then does one of:
- ``buffered``: the way paddle-lm saved before (``paddle.save`` into a BytesIO, then the bytes to the file);
- ``streamed``: `save_checkpoint` (host snapshot, each pickle streamed into its file, checksummed);
- ``background``: the host snapshot alone — what the training loop waits for while `BackgroundWriter` writes.
Each prints its seconds and the growth of peak RSS over the built model. Table + JSON last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import dataclasses, io, json, os, resource, sys, time
import paddle
from paddle_lm.config import apply_preset
from paddle_lm.models import build_model
from paddle_lm.training import checkpoint as ckpt

preset, vocab, mode, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
model = build_model(dataclasses.replace(apply_preset("elmo", preset), vocab_size=vocab))
opt = paddle.optimizer.Adagrad(0.2, parameters=model.parameters(), initial_accumulator_value=1.0)
paddle.add_n([(p * 0).sum() for p in model.parameters()]).backward()  # zero gradients: creates the state
opt.step()
opt.clear_grad()
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = rss()
prefix = os.path.join(folder, "final")
t = time.perf_counter()
if mode == "buffered":
    for suffix, state in ((".pdparams", model.state_dict()), (".pdopt", opt.state_dict())):
        buf = io.BytesIO()
        paddle.save(state, buf)
        with open(prefix + suffix, "wb") as f:
            f.write(buf.getvalue())
            os.fsync(f.fileno())
elif mode == "streamed":
    ckpt.save_checkpoint(prefix, model.state_dict(), opt.state_dict(), {}, {"step": 1})
else:
    snapshot = ckpt.host_state(model.state_dict()), ckpt.host_state(opt.state_dict())
seconds = time.perf_counter() - t
size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
n_params = sum(int(p.size) for p in model.parameters())
print(json.dumps({"seconds": seconds, "rss_growth": rss() - base, "bytes": size, "params": n_params}))
"""


def once(preset: str, vocab: int, mode: str) -> dict:
    with tempfile.TemporaryDirectory(dir=ROOT) as folder:
        env = {**os.environ, "PYTHONPATH": ROOT, "MKL_DEBUG_CPU_TYPE": "5", "GLOG_minloglevel": "2"}
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, preset, str(vocab), mode, folder],
                             env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            sys.exit(f"{mode} at {vocab} failed:\n{out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="elmo-original")
    p.add_argument("--vocab", type=int, nargs="+", default=[16285, 150000, 793471])
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    results = []
    gib = 2**30
    print(f"{'vocab':>8} {'params':>12} {'checkpoint':>11} {'buffered s / +RSS':>20} {'streamed s / +RSS':>20} "
          f"{'background: blocks s / +RSS':>28}")
    for vocab in args.vocab:
        runs = {m: [once(args.preset, vocab, m) for _ in range(args.repeats)] for m in
                ("buffered", "streamed", "background")}
        med = {m: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "rss_growth")} for m, rs in runs.items()}
        size, params = runs["streamed"][0]["bytes"], runs["streamed"][0]["params"]
        print(f"{vocab:>8,} {params:>12,} {size / gib:>9.2f} GiB " + " ".join(
            f"{med[m]['seconds']:>9.1f} / {med[m]['rss_growth'] / gib:>5.2f} GiB" for m in
            ("buffered", "streamed", "background")))
        results.append({"vocab": vocab, "params": params, "checkpoint_bytes": size, "medians": med})
    print(json.dumps({"preset": args.preset, "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
