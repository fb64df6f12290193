"""A/B of two versions of the code: the same `run_pretrain.py` command from a git revision and from this working
tree, alternating, in one run — how a speed change is measured before it is kept.

    python bench/bench_ab.py REV [--steps 15] [--repeats 3] [--threads 2] -- [run_pretrain.py flags]
    python bench/bench_ab.py HEAD~1 -- --n_negative_samples 8192
    python bench/bench_ab.py HEAD~1 -- --model lstm --embedding_dim 256 --hidden_size 512 --no-tie_weights \
        --unroll_steps 35

REV is checked out into a temporary `git worktree`; both sides train on the sample (1 process, `--threads` OMP
threads). Prints the median tokens/s of each side, the ratio and each side's last loss (a speed change that is an
exact reformulation keeps it) as a table and a JSON last line.
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
sys.path.insert(0, ROOT)

from paddle_lm.config import SAMPLE_LM_DIR


def run(tree: str, flags: list[str], steps: int, threads: int, tmp: str) -> tuple[float, float]:
    """(median tokens/s after the first logged window, last logged loss) of one run from `tree`."""
    save = tempfile.mkdtemp(dir=tmp)
    data = os.path.join(ROOT, SAMPLE_LM_DIR)
    cmd = [sys.executable, "run_pretrain.py", "--device", "cpu", "--train_data_path",
           os.path.join(data, "training-tokenized-shuffled", "*"), "--vocab_file", os.path.join(data, "vocab-15w.txt"),
           "--max_steps", str(steps), "--logging_steps", str(max(1, steps // 3)), "--save_steps", str(10 * steps),
           "--save_dir", save, "--no-visualdl", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": tree}
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"run in {tree} failed:\n{out.stderr[-2000:]}")
    with open(os.path.join(save, "metrics.jsonl")) as f:
        rows = [json.loads(x) for x in f]
    return statistics.median(r["tokens_per_s"] for r in rows[1:] or rows), rows[-1]["loss"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rev")
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)  # everything after "--" goes to run_pretrain.py
    args = p.parse_args(argv[:cut])
    args.flags = argv[cut + 1:]
    with tempfile.TemporaryDirectory() as tmp:
        old = os.path.join(tmp, "old")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", old, args.rev], check=True)
        try:
            runs: dict[str, list] = {args.rev: [], "working tree": []}
            for _ in range(args.repeats):  # alternating
                for side, tree in ((args.rev, old), ("working tree", ROOT)):
                    runs[side].append(run(tree, args.flags, args.steps, args.threads, tmp))
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", old], check=False)
    med = {k: {"tokens_per_s": statistics.median(r[0] for r in v), "last_loss": v[0][1],
               "runs": [r[0] for r in v]} for k, v in runs.items()}
    print(f"run_pretrain.py {' '.join(args.flags)}: {args.steps} steps, {args.threads} threads, "
          f"median of {args.repeats}")
    for side, m in med.items():
        print(f"{side:>14} {m['tokens_per_s']:>8.1f} tokens/s  last loss {m['last_loss']:.6f}  runs {m['runs']}")
    ratio = med["working tree"]["tokens_per_s"] / med[args.rev]["tokens_per_s"]
    print(f"working tree / {args.rev}: {ratio:.2f}x")
    print(json.dumps({"rev": args.rev, "flags": args.flags, "steps": args.steps, "ratio": ratio, **med}))


if __name__ == "__main__":
    main()
