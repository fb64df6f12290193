"""Training memory does not grow with the corpus: peak RSS of the same short run on the sample and on a
1-Billion-Word-shaped corpus of 100 shards that is much larger.

    python bench/bench_rss.py [--tokens 60000000] [--steps 30] [--repeats 2]

The large corpus is the sample repeated into 100 shards (see bench/bench_encode.py); both are encoded before
timing, so only training is measured: `run_pretrain.py` (elmo-small, 1,024 negatives, 1 process) for `--steps`
steps, peak RSS read by a wrapper process. Prints the medians as a table and a JSON last line.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_encode import SAMPLE_TRAIN, SAMPLE_VOCAB, build_corpus

# run_pretrain.py in this process, then its peak RSS and, at the end, the anonymous vs file-backed (memory-mapped
# cache pages, which the kernel can drop) parts of the resident set.
PROBE = """
import os, runpy, sys
sys.argv = sys.argv[1:]
exec(os.environ.get("BENCH_SETUP", ""))
runpy.run_path("run_pretrain.py", run_name="__main__")
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print("RSS_MIB", *(int(status[k].split()[0]) / 1024 for k in ("VmHWM", "RssAnon", "RssFile")))
"""


def short_run(pattern: str, vocab: str, steps: int, tmp: str, negatives: int = 1024, threads: int = 1,
              extra: tuple[str, ...] = (), device: str = "cpu", env: dict | None = None) -> dict:
    """One short `run_pretrain.py` run (elmo-small unless `extra` flags say otherwise, one process with `threads`
    OMP threads, a sampled softmax of `negatives`): its peak, final anonymous and final file-backed RSS (MiB),
    median tokens/s after the first logged window, metrics rows and stdout. `env`: extra environment (a
    BENCH_SETUP there is Python run before the script, e.g. to swap the model)."""
    save = tempfile.mkdtemp(dir=tmp)
    cmd = ["run_pretrain.py", "--device", device, "--train_data_path", pattern, "--vocab_file", vocab,
           "--n_negative_samples", str(negatives), "--max_steps", str(steps),
           "--logging_steps", str(max(1, steps // 3)), "--save_steps", str(10 * steps), "--save_dir", save,
           "--no-visualdl", *extra]
    env = {**os.environ, "MKL_DEBUG_CPU_TYPE": "5", "OMP_NUM_THREADS": str(threads), "PYTHONPATH": ROOT,
           **(env or {})}
    out = subprocess.run([sys.executable, "-c", PROBE, *cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        sys.exit(f"run failed:\n{out.stderr[-2000:]}")
    with open(os.path.join(save, "metrics.jsonl")) as f:
        rows = [json.loads(x) for x in f]
    peak, anon, mapped = (float(v) for v in out.stdout.rsplit("RSS_MIB", 1)[1].split()[:3])
    return {"peak": peak, "anon": anon, "file": mapped, "rows": rows, "stdout": out.stdout,
            "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rows[1:] or rows)}


def peak_rss(pattern: str, vocab: str, steps: int, tmp: str, negatives: int = 1024,
             threads: int = 1, extra: tuple[str, ...] = ()) -> tuple[float, float, float, float]:
    """(peak RSS MiB, final anonymous RSS MiB, final file-backed RSS MiB, tokens/s) of a `short_run`."""
    r = short_run(pattern, vocab, steps, tmp, negatives, threads, extra)
    return r["peak"], r["anon"], r["file"], r["tokens_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=60_000_000)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    vocab = SAMPLE_VOCAB
    sample = SAMPLE_TRAIN
    with tempfile.TemporaryDirectory() as tmp:
        big, _ = build_corpus(tmp, args.tokens, 100)
        corpora = {"sample": sample, "large": big}
        sizes = {k: sum(os.path.getsize(f) for f in glob.glob(v)) for k, v in corpora.items()}
        for pattern in corpora.values():  # encode once, outside the measurement
            peak_rss(pattern, vocab, 1, tmp)
        runs: dict[str, list] = {k: [] for k in corpora}
        for _ in range(args.repeats):
            for name, pattern in corpora.items():  # alternating
                runs[name].append(peak_rss(pattern, vocab, args.steps, tmp))
    med = {k: [statistics.median(r[i] for r in v) for i in range(4)] for k, v in runs.items()}
    for name in corpora:
        peak, anon, mapped, speed = med[name]
        print(f"{name:<7} {sizes[name] / 2**20:>8.1f} MiB of text   peak RSS {peak:>6.0f} MiB   at the end: "
              f"anonymous {anon:>6.0f} MiB, file-backed {mapped:>5.0f} MiB   {speed:>6.0f} tokens/s")
    growth = med["large"][0] - med["sample"][0]
    anon_growth = med["large"][1] - med["sample"][1]
    print(f"from the sample to the {sizes['large'] / sizes['sample']:.0f}x larger corpus: peak RSS {growth:+.0f} MiB, "
          f"anonymous {anon_growth:+.0f} MiB")
    print(json.dumps({"sizes_bytes": sizes, "medians": {k: dict(zip(("peak_mib", "anon_mib", "file_mib",
                      "tokens_per_s"), v)) for k, v in med.items()}, "growth_mib": growth,
                      "anon_growth_mib": anon_growth, "runs": runs}))


if __name__ == "__main__":
    main()
