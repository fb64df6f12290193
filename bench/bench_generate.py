"""GPT-2 generation speed: paddle-lm's `generate` (paddlenlp's key/value cache, the project's logits processors and
seeded host-side sampling) against paddlenlp's own ``generate(use_cache=True)`` and transformers'
``GPT2LMHeadModel.generate``, on the same weights, on the CPU with the same threads, alternating.

    bash ../shared/tools/allennlp-venv.sh /tmp/allennlp-venv    # torch + transformers 4.57 (2-3 min)
    python bench/bench_generate.py [--preset gpt2-small] [--new_tokens 128,512] [--repeats 3] [--threads 2]
        [--venv /tmp/allennlp-venv]

The weights: a `--preset` GPT-2 with Paddle's random initialisation (`--seed`) and GPT-2's 50,257-token vocabulary,
written as a Hugging Face folder (`paddle_lm.formats.hf.hf_config` / `hf_state`); the two Paddle sides load that
folder through `--init_from_pretrained`'s loader, transformers through ``from_pretrained`` (it reports nothing
missing or unexpected, or the bench stops). The prompt: 16 token ids drawn with `--seed`. Settings: greedy and
sampled (top-k 50, temperature 1) for each `--new_tokens`; no stop token, so every side makes every new token.

Each side runs in its own process with `--threads` threads (OMP / MKL_NUM_THREADS, torch.set_num_threads;
MKL_DEBUG_CPU_TYPE=5 for the Paddle sides): paddle-lm's and paddlenlp's are this file with `--side`,
transformers' is bench/transformers_side.py in the `--venv` Python. Model loading does not count; each setting is
timed alone, first call included. The sides alternate (paddle-lm, paddlenlp, transformers, ...) `--repeats` times;
the figures are medians. Greedy tokens must be identical on all three sides (the bench exits 1 when they are not);
sampled tokens differ by design (each side has its own random stream).

Prints a table (new tokens/s per side and setting, paddle-lm / transformers), the machine and the command, and a
JSON last line. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_vs_allennlp import BUILD_VENV, DEFAULT_VENV, fail, machine

VOCAB = 50257  # GPT-2's
PROMPT_LEN = 16
SIDES = ("paddle-lm", "paddlenlp", "transformers")


def settings(new_tokens: list[int], seed: int) -> list[dict]:
    out = []
    for n in new_tokens:
        out.append({"name": f"greedy {n}", "greedy": True, "new_tokens": n})
        out.append({"name": f"sampled {n}", "greedy": False, "new_tokens": n, "top_k": 50, "temperature": 1.0,
                    "seed": seed})
    return out


def paddle_side(argv: list[str]) -> None:
    """One Paddle side (paddle-lm or paddlenlp): load the folder, time each setting, write the result JSON."""
    p = argparse.ArgumentParser()
    p.add_argument("side", choices=SIDES[:2])
    p.add_argument("--model", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--result", required=True)
    args = p.parse_args(argv)
    from paddle_lm.cli import quiet_startup

    quiet_startup()
    import paddle

    from paddle_lm.generation import generate
    from paddle_lm.pretrained import load_lm

    with open(args.job, encoding="utf-8") as f:
        job = json.load(f)
    model, _, _ = load_lm(init_from_pretrained=args.model, device="cpu")
    prompt = job["prompt"]
    runs = []
    for s in job["settings"]:
        n = s["new_tokens"]
        start = time.perf_counter()
        if args.side == "paddle-lm":
            kw = dict(greedy=True) if s["greedy"] else dict(top_k=s["top_k"], temperature=s["temperature"],
                                                              seed=s["seed"])
            new = generate(model, prompt, max_length=len(prompt) + n, **kw)[0][len(prompt):]
        else:
            kw = dict(decode_strategy="greedy_search") if s["greedy"] else dict(
                decode_strategy="sampling", top_k=s["top_k"], top_p=1.0, temperature=s["temperature"])
            if not s["greedy"]:
                paddle.seed(s["seed"])
            with paddle.no_grad():
                ids, _ = model.net.generate(paddle.to_tensor([prompt], dtype="int64"), max_new_tokens=n,
                                            use_cache=True, **kw)
            new = ids[0].numpy().tolist()
        seconds = time.perf_counter() - start
        runs.append({"name": s["name"], "new_tokens": len(new), "seconds": seconds,
                     "new_tokens_per_s": len(new) / seconds, "tokens": [int(t) for t in new]})
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump({"runs": runs}, f)


def write_folder(cfg, seed: int, folder: str) -> None:
    """A random paddle-lm model of ModelConfig `cfg` (Paddle's initialisation, `seed`) as an HF folder: config.json
    and model.safetensors as ``export-hf`` writes them (no tokenizer: the benches feed ids)."""
    from paddle_lm.cli import quiet_startup

    quiet_startup()
    import paddle

    from paddle_lm.formats.hf import write_model
    from paddle_lm.models.transformer_lm import TransformerLM

    paddle.seed(seed)
    os.makedirs(folder)
    write_model(TransformerLM(cfg), folder)


def run_side(side: str, folder: str, job: str, tmp: str, env: dict, venv_python: str) -> dict:
    result = os.path.join(tmp, f"{side}.json")
    if side == "transformers":
        cmd = [venv_python, os.path.join(ROOT, "bench", "transformers_side.py"), "generate", "--model", folder,
               "--job", job, "--result", result]
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--side", side, "--model", folder, "--job", job,
               "--result", result]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"the {side} side failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    with open(result, encoding="utf-8") as f:
        data = json.load(f)
    info = data.get("loading", {})
    if any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")):
        sys.exit(f"transformers did not load the folder cleanly: {info}")
    return data


def main() -> None:
    if sys.argv[1:2] == ["--side"]:
        paddle_side(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="gpt2-small", choices=("gpt2-small", "gpt2-tiny"), help="GPT-2 size")
    p.add_argument("--new_tokens", default="128,512", help="comma-separated numbers of new tokens")
    p.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating")
    p.add_argument("--threads", type=int, default=2, help="threads for each side")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the prompt and the sampling")
    p.add_argument("--venv", default=DEFAULT_VENV, help="venv with torch + transformers (" + BUILD_VENV + ")")
    args = p.parse_args()
    venv_python = os.path.join(args.venv, "bin", "python")
    if not os.path.isfile(venv_python):
        fail(f"no transformers venv at {args.venv}: {BUILD_VENV}")
    try:
        new_tokens = [int(n) for n in args.new_tokens.split(",")]
    except ValueError:
        fail(f"--new_tokens {args.new_tokens!r} is not a comma-separated list of numbers")
    import numpy as np

    prompt = np.random.default_rng(args.seed).integers(0, VOCAB, PROMPT_LEN).tolist()
    load = os.getloadavg()[0]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               MKL_DEBUG_CPU_TYPE="5")
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "gpt2-hf")
        from paddle_lm.config import apply_preset

        write_folder(dataclasses.replace(apply_preset("gpt2", args.preset), vocab_size=VOCAB), args.seed, folder)
        job = os.path.join(tmp, "job.json")
        with open(job, "w", encoding="utf-8") as f:
            json.dump({"prompt": prompt, "settings": settings(new_tokens, args.seed), "threads": args.threads}, f)
        runs: dict = {side: [] for side in SIDES}
        for _ in range(args.repeats):
            for side in SIDES:
                runs[side].append(run_side(side, folder, job, tmp, env, venv_python)["runs"])
    report(args, runs, load, new_tokens)


def report(args, runs: dict, load: float, new_tokens: list[int]) -> None:
    names = [s["name"] for s in settings(new_tokens, args.seed)]
    table, same = {}, {}
    for i, name in enumerate(names):
        table[name] = {side: statistics.median(r[i]["new_tokens_per_s"] for r in runs[side]) for side in SIDES}
        table[name]["ratio"] = table[name]["paddle-lm"] / table[name]["transformers"]
        if name.startswith("greedy"):
            tokens = [runs[side][0][i]["tokens"] for side in SIDES]
            same[name] = all(t == tokens[0] for t in tokens)
    print(f"GPT-2 {args.preset}, random weights (seed {args.seed}), vocabulary {VOCAB}, prompt {PROMPT_LEN} ids; "
          f"{args.threads} threads each, median of {args.repeats}, alternating; new tokens/s")
    print(f"{'setting':<14}{'paddle-lm':>11}{'paddlenlp':>11}{'transformers':>14}{'paddle-lm / tf':>16}  greedy same")
    for name, row in table.items():
        print(f"{name:<14}{row['paddle-lm']:>11.1f}{row['paddlenlp']:>11.1f}{row['transformers']:>14.1f}"
              f"{row['ratio']:>15.2f}x  {same.get(name, '-')}")
    box = machine()
    busy = " (other work was running: the times are unreliable)" if load > 0.5 else ""
    print(f"machine: {box['cpu']}, {box['cores']} cores, avx2 {'yes' if box['avx2'] else 'no'}, avx512f "
          f"{'yes' if box['avx512f'] else 'no'}; load average before the runs {load:.2f}{busy}")
    command = "python bench/bench_generate.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if k != "venv")
    print(f"command: {command}")
    ok = all(same.values())
    print(json.dumps({"preset": args.preset, "threads": args.threads, "repeats": args.repeats, "table": table,
                      "greedy_identical": same, "runs": {s: [[r["new_tokens_per_s"] for r in rep] for rep in runs[s]]
                                                          for s in SIDES},
                      "machine": {**box, "load_before": load}, "command": command}))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
