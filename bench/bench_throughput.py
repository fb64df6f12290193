"""Training throughput on CPU: 1 rank vs 2 ranks (`paddle.distributed.launch`), side by side in one run.

    python bench/bench_throughput.py [--preset elmo-small] [--steps 60] [--repeats 3] [extra run_pretrain flags]
    python bench/bench_throughput.py --preset gpt2-tiny --steps 40 --batch_size 8 --tokenizer_dir checkpoints-gpt2/tokenizer

Runs the real run_pretrain.py on the sample data (build it first: `bash download_data.sh --sample`), reads
tokens/s from metrics.jsonl (the first logging window is skipped as warm-up), and prints the median over
repeats for each setting (1 and 2 ranks alternate), the per-step wall time, peak RSS per rank, and the
2-rank/1-rank ratio, as a table and a JSON last line.
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


def run_once(ranks: int, args, extra: list[str]) -> tuple[float, float, int]:
    """(tokens/s after warm-up, peak RSS MiB of rank 0, tokens per rank per step) of one short training run."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable]
        if ranks > 1:
            cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", str(ranks), "--log_dir", f"{tmp}/log"]
        cmd += ["run_pretrain.py", "--device", "cpu", "--preset", args.preset, "--max_steps", str(args.steps),
                "--logging_steps", str(args.steps // 4), "--save_steps", str(10 * args.steps),
                "--save_dir", f"{tmp}/ck", *extra]
        probe = ("import resource,subprocess,sys;"
                 "r=subprocess.run(sys.argv[1:]).returncode;"
                 "print('RSS_MIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024);sys.exit(r)")
        wrapper = [sys.executable, "-c", probe, *cmd]
        env = {**os.environ, "MKL_DEBUG_CPU_TYPE": "5"}
        if ranks == 1:
            env["OMP_NUM_THREADS"] = str(args.threads_one_rank)
        out = subprocess.run(wrapper, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            sys.exit(f"run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        with open(f"{tmp}/ck/metrics.jsonl") as f:
            rows = [json.loads(x) for x in f]
        with open(f"{tmp}/ck/final.json") as f:
            side = json.load(f)
        rss = float(out.stdout.rsplit("RSS_MIB", 1)[1].split()[0])
        per_rank_step = side["tokens_seen"] // (side["step"] * ranks)
        return statistics.median(r["tokens_per_s"] for r in rows[1:]), rss, per_rank_step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="elmo-small")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads_one_rank", type=int, default=1,
                   help="OMP threads for the 1-rank run (the launcher gives each rank 1)")
    args, extra = p.parse_known_args()
    runs: dict[int, list] = {1: [], 2: []}
    for _ in range(args.repeats):
        for ranks, done in runs.items():  # alternating
            done.append(run_once(ranks, args, extra))
    results = {ranks: (statistics.median(r[0] for r in rs), max(r[1] for r in rs), [r[0] for r in rs])
               for ranks, rs in runs.items()}
    per_step = runs[1][0][2]
    print(f"\npreset {args.preset}, {per_step} tokens per rank per step, {args.steps} steps, "
          f"median of {args.repeats} runs (OMP threads: 1-rank run {args.threads_one_rank}, 1 per rank when launched)")
    print(f"{'ranks':>5} {'tokens/s':>10} {'s/step':>8} {'peak RSS MiB':>13}  runs")
    for ranks, (tps, rss, all_tps) in results.items():
        step_s = per_step * ranks / tps
        print(f"{ranks:>5} {tps:>10.0f} {step_s:>8.3f} {rss:>13.0f}  {', '.join(f'{t:.0f}' for t in all_tps)}")
    ratio = results[2][0] / results[1][0]
    print(f"2-rank / 1-rank throughput: {ratio:.2f}x")
    print(json.dumps({"preset": args.preset, "extra": extra, "steps": args.steps, "repeats": args.repeats,
                      "threads_one_rank": args.threads_one_rank, "ratio": ratio,
                      **{f"ranks_{k}": {"tokens_per_s": v[0], "peak_rss_mib": v[1], "runs": v[2]}
                         for k, v in results.items()}}))


if __name__ == "__main__":
    main()
