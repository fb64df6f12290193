"""Training throughput on CPU: 1 rank vs 2 ranks (`paddle.distributed.launch`), side by side in one run, and
where the difference from 2x goes.

    python bench/bench_throughput.py [--preset elmo-small] [--steps 60] [--repeats 3] [extra run_pretrain flags]
    python bench/bench_throughput.py --preset gpt2-tiny --steps 40 --batch_size 8 --tokenizer_dir checkpoints-gpt2/tokenizer

Runs the real run_pretrain.py on the sample data (build it first: `bash download_data.sh --sample`), reads
tokens/s from metrics.jsonl (the first logging window is skipped as warm-up), and prints the median over
repeats for each setting (the settings alternate), the per-step wall time, peak RSS per rank, and the
2-rank/1-rank ratio, as a table and a JSON last line. Two more settings split that ratio into factors: 1 rank
pinned to one core (`taskset`; what the 1-rank run gains from the idle second core: its prefetch and writer
threads), two independent 1-rank runs at once, one per core (what sharing caches and memory costs), and the
2-rank launch against that pair (what the ranks' all-reduce, all-gather and waiting for each other cost).
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


#: The settings, in the order run. Two single-rank processes at once, each on its own core and not talking to each
#: other, split the 2-rank cost into what sharing the machine costs (vs 1 rank on one core) and what the ranks'
#: communication costs (2 ranks vs the independent pair).
SETTINGS = ("1 rank", "1 rank, one core", "2 independent", "2 ranks")
PROBE = ("import resource,subprocess,sys;"
         "r=subprocess.run(sys.argv[1:]).returncode;"
         "print('RSS_MIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024);sys.exit(r)")


def start(setting: str, args, extra: list[str], tmp: str, k: int = 0, core: int | None = None):
    """Start one training command of `setting` (for "2 independent": the k-th of the pair, pinned to `core`)."""
    cmd = [sys.executable]
    if setting == "2 ranks":
        cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", f"{tmp}/log"]
    cmd += ["run_pretrain.py", "--device", "cpu", "--preset", args.preset, "--max_steps", str(args.steps),
            "--logging_steps", str(args.steps // 4), "--save_steps", str(10 * args.steps),
            "--save_dir", f"{tmp}/ck{k}", *extra]
    env = {**os.environ, "MKL_DEBUG_CPU_TYPE": "5"}
    if setting != "2 ranks":
        env["OMP_NUM_THREADS"] = str(args.threads_one_rank if setting == "1 rank" else 1)
    pin = ["taskset", "-c", str(core)] if core is not None else []
    return subprocess.Popen([*pin, sys.executable, "-c", PROBE, *cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result(proc, save_dir: str, ranks: int) -> tuple[float, float, int]:
    """(tokens/s after warm-up, peak RSS MiB, tokens per rank per step) of a finished `start`."""
    out, err = proc.communicate()
    if proc.returncode:
        sys.exit(f"run failed:\n{out[-2000:]}\n{err[-2000:]}")
    with open(f"{save_dir}/metrics.jsonl") as f:
        rows = [json.loads(x) for x in f]
    with open(f"{save_dir}/final.json") as f:
        side = json.load(f)
    rss = float(out.rsplit("RSS_MIB", 1)[1].split()[0])
    return statistics.median(r["tokens_per_s"] for r in rows[1:]), rss, side["tokens_seen"] // (side["step"] * ranks)


def run_once(setting: str, args, extra: list[str]) -> tuple[float, float, int]:
    """(tokens/s of the setting, all its processes together; peak RSS MiB; tokens per rank per step)."""
    with tempfile.TemporaryDirectory() as tmp:
        if setting == "2 independent":
            procs = [start(setting, args, extra, tmp, k, core=k) for k in range(2)]
            done = [result(proc, f"{tmp}/ck{k}", 1) for k, proc in enumerate(procs)]
            return sum(d[0] for d in done), max(d[1] for d in done), done[0][2]
        proc = start(setting, args, extra, tmp, core=0 if setting == "1 rank, one core" else None)
        return result(proc, f"{tmp}/ck0", 2 if setting == "2 ranks" else 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="elmo-small")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads_one_rank", type=int, default=1,
                   help="OMP threads for the 1-rank run (the launcher gives each rank 1)")
    args, extra = p.parse_known_args()
    runs: dict[str, list] = {s: [] for s in SETTINGS}
    for _ in range(args.repeats):
        for setting, done in runs.items():  # alternating
            done.append(run_once(setting, args, extra))
    results = {s: (statistics.median(r[0] for r in rs), max(r[1] for r in rs), [r[0] for r in rs])
               for s, rs in runs.items()}
    per_step = runs["1 rank"][0][2]
    print(f"\npreset {args.preset}, {per_step} tokens per rank per step, {args.steps} steps, median of "
          f"{args.repeats} runs (OMP threads: 1-rank run {args.threads_one_rank}, 1 per process otherwise)")
    print(f"{'setting':>17} {'tokens/s':>10} {'s/step':>8} {'peak RSS MiB':>13}  runs")
    for setting, (tps, rss, all_tps) in results.items():
        step_s = per_step * (1 if setting.startswith("1") else 2) / tps
        print(f"{setting:>17} {tps:>10.0f} {step_s:>8.3f} {rss:>13.0f}  {', '.join(f'{t:.0f}' for t in all_tps)}")
    tps = {s: r[0] for s, r in results.items()}
    ratio = tps["2 ranks"] / tps["1 rank"]
    split = {"one_core": tps["1 rank, one core"] / tps["1 rank"],
             "sharing": tps["2 independent"] / (2 * tps["1 rank, one core"]),
             "communication": tps["2 ranks"] / tps["2 independent"]}
    print(f"2-rank / 1-rank throughput: {ratio:.2f}x = 2 x {split['one_core']:.3f} (1 rank kept to one core) "
          f"x {split['sharing']:.3f} (two processes sharing the machine) x {split['communication']:.3f} "
          "(the ranks' communication and synchronization)")
    print(json.dumps({"preset": args.preset, "extra": extra, "steps": args.steps, "repeats": args.repeats,
                      "threads_one_rank": args.threads_one_rank, "ratio": ratio, "split": split,
                      **{s.replace(" ", "_").replace(",", ""): {"tokens_per_s": v[0], "peak_rss_mib": v[1],
                                                                "runs": v[2]} for s, v in results.items()}}))


if __name__ == "__main__":
    main()
