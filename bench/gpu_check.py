"""GPU acceptance run: what to run first on a new GPU box (about 8 minutes on one card).

    bash bench/gpu_check.sh                  # --device auto: the GPU when Paddle's CUDA build sees one
    bash bench/gpu_check.sh --device cpu     # the same checks at tiny sizes, well under 2 minutes (CI runs it)

Each check runs the project's own entry points (run_pretrain.py, `python -m paddle_lm generate / embed`) on a
corpus and vocabulary written into --out, and is a row of a table (PASS, or FAIL / SKIP with the reason; its
figure measured or arithmetic); one JSON line comes last. Exit status 1 if any check failed.

  device      `--device auto` as paddle_lm.device resolves it, confirmed by the trainer's start-up line
  elmo_<V>    --preset elmo-original --softmax_update rows at V = 150,000 and 793,471 words (CPU: elmo-small,
              2,000 and 8,000): tokens/s (metrics.jsonl), peak GPU memory of the training process (CPU: RSS)
  amp_bf16/16 the first elmo run with --amp bf16 / fp16: speed, and loss against fp32 after the same steps
  resume      SIGTERM mid-run, its checkpoint, --init_from_ckpt latest: the resumed steps' losses equal an
              uninterrupted run's
  generate    `python -m paddle_lm generate --json` (key/value cache), GPT-2 trained a few steps: new tokens/s
  embed       `python -m paddle_lm embed` on the first elmo checkpoint: sentences/s
  epoch       arithmetic, not measured: hours per 1-Billion-Word epoch on 1 and 8 cards from the elmo tokens/s
No traced-vs-eager row: training has no traced-LSTM switch (bench/bench_lstm_static.py times the layer alone).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gpu_check_parts import (
    CheckFailed,
    Corpus,
    Row,
    Run,
    draw,
    logged,
    reason,
    steady_speed,
    tidy,
    without_speed,
    write_corpus,
)

#: training tokens of one 1-Billion-Word epoch (bilm-tf's n_train_tokens; the README rounds it to ~800M)
EPOCH_TOKENS = 768_648_884
SCALING = 0.9  #: assumed per-card efficiency at 8 cards (data parallel, all-reduce of the dense gradients)
AMP_LOSS_TOLERANCE = 0.02  #: largest |loss_amp - loss_fp32| / loss_fp32 at the last step that passes
RESUME_STEPS = 3  #: steps trained after the resume and compared with the uninterrupted run
EMBED_TOKENS = 20  #: tokens per sentence of the embed input (one length: every batch costs the same)
DETERMINISTIC = {"FLAGS_cudnn_deterministic": "1", "FLAGS_embedding_deterministic": "1"}
INTERRUPTED = re.compile(r"interrupted at step (\d+); saved (\S+); resume with --init_from_ckpt=(\S+)")
RATE = re.compile(r"(\d+)/(\d+) \[[^\]]*?([\d.]+)(sent/s|s/sent)\]")  # tqdm's bar of the embedder
# run_pretrain.py as itself (runpy, __main__), then the process's peak memory written to $GPU_CHECK_PEAK.
PEAK_RUNNER = """
import json, os, resource, runpy, sys
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    paddle, gpu = sys.modules.get("paddle"), None
    if paddle is not None and paddle.is_compiled_with_cuda() and str(paddle.get_device()).startswith("gpu"):
        gpu = int(paddle.device.cuda.max_memory_allocated())
    with open(os.environ["GPU_CHECK_PEAK"], "w") as f:
        json.dump({"gpu_bytes": gpu, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, f)
"""


class Sizes(NamedTuple):
    """What the checks run at on one kind of device."""

    elmo: tuple[str, ...]  # run_pretrain.py flags of every ELMo run
    vocabs: tuple[int, int]
    steps: int  # ELMo training steps per measured run
    corpus_tokens: int
    gpt2: tuple[str, ...]  # run_pretrain.py flags of the GPT-2 behind `generate`
    generate: tuple[str, ...]  # `python -m paddle_lm generate` flags
    embed: tuple[int, int]  # sentences, batch size
    timeout: float  # seconds any one command may take


SIZES = {
    "gpu": Sizes(("--preset", "elmo-original", "--batch_size", "128", "--unroll_steps", "20", "--n_negative_samples",
                  "8192"), (150_000, 793_471), 30, 300_000,
                 ("--preset", "gpt2-small", "--subword_vocab_size", "8000", "--block_size", "128", "--batch_size",
                  "16", "--max_steps", "5"),
                 ("--max_length", "256", "--num_return_sequences", "8", "--top_k", "50"), (2048, 64), 900.0),
    "cpu": Sizes(("--preset", "elmo-small", "--batch_size", "8", "--unroll_steps", "10", "--n_negative_samples", "64"),
                 (2_000, 8_000), 8, 20_000,
                 ("--preset", "gpt2-tiny", "--subword_vocab_size", "300", "--block_size", "32", "--batch_size", "4",
                  "--max_steps", "3"),
                 ("--max_length", "64", "--num_return_sequences", "4", "--top_k", "50"), (256, 32), 180.0),
}


class GpuCheck:
    def __init__(self, args: argparse.Namespace, mode: str, out: str):
        self.args, self.mode, self.out, self.sizes = args, mode, out, SIZES[mode]
        self.rows: dict[str, Row] = {}
        self.elmo: dict[int, dict] = {}  # vocabulary size -> its run's tokens/s, metrics rows and save_dir
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (ROOT, os.environ.get("PYTHONPATH"))))}

    def say(self, msg: str) -> None:
        if not self.args.json_only:
            print(f"[gpu-check] {msg}", flush=True)

    def attempt(self, name: str, kind: str, fn, needs: str = "") -> None:
        """Run check `fn` (-> (summary, data); data["status"] may say SKIP) as row `name`; an exception is a FAIL
        with its message as the reason; with `needs`, SKIP unless that row passed."""
        if needs and self.rows.get(needs, Row("", "FAIL", "", "", {})).status == "FAIL":
            row = Row(name, "SKIP", kind, f"needs the {needs} check, which did not pass", {})
        else:
            self.say(f"{name} ...")
            try:
                summary, data = fn()
                row = Row(name, data.pop("status", "PASS"), kind, summary, data)
            except subprocess.TimeoutExpired as e:
                row = Row(name, "FAIL", kind, f"a command timed out after {e.timeout:.0f} s", {})
            except Exception as e:  # noqa: BLE001 - a check that breaks is a FAIL row; the others still run
                text = str(e) if isinstance(e, CheckFailed) else f"{type(e).__name__}: {e}"
                row = Row(name, "FAIL", kind, " ".join(text.split())[:400], {})
        self.rows[name] = row
        self.say(f"{name}: {row.status} {row.summary}")

    # ------------------------------------------------------------------ the project's commands
    def python(self, argv: list[str], peak: bool = False, env: dict | None = None) -> Run:
        """`python ARGV` from the repo root, bounded by the mode's timeout; with `peak`, run_pretrain.py under
        PEAK_RUNNER so the training process reports its peak memory."""
        peak_file = os.path.join(self.out, f"peak-{time.monotonic_ns()}.json")  # fresh: no stale figure
        cmd = [sys.executable, *(["-c", PEAK_RUNNER] if peak else []), *argv]
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, env={**self.env, **(env or {}), "GPU_CHECK_PEAK": peak_file},
                           capture_output=True, text=True, timeout=self.sizes.timeout, check=False)
        wall, found = time.perf_counter() - t, {}
        if peak and os.path.exists(peak_file):
            with open(peak_file) as f:
                found = json.load(f)
        return Run(r.returncode, r.stdout, r.stderr, wall, found)

    def elmo_flags(self, corpus: Corpus, device: str = "") -> list[str]:
        return ["run_pretrain.py", *self.sizes.elmo, "--train_data_path", corpus.train, "--vocab_file", corpus.vocab,
                "--softmax_update", "rows", "--lr_decay", "none", "--logging_steps", "1", "--save_steps", "1000000",
                "--no-visualdl", "--device", device or self.mode]

    def train(self, argv: list[str], save_dir: str, peak: bool = False, env: dict | None = None) -> tuple[Run, list]:
        """run_pretrain.py ARGV --save_dir SAVE_DIR; returns the run and its metrics.jsonl rows."""
        from paddle_lm.training.metrics import read_metrics

        run = self.python([*argv, "--save_dir", save_dir], peak=peak, env=env)
        if run.rc != 0:
            raise CheckFailed(f"run_pretrain.py exited {run.rc}: {reason(run)}")
        return run, read_metrics(os.path.join(save_dir, "metrics.jsonl"))

    def drop(self, *paths: str) -> None:
        for path in paths if not self.args.keep else ():
            shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------------ the checks
    def check_device(self) -> tuple[str, dict]:
        import paddle

        from paddle_lm.device import resolve_device

        auto = resolve_device("auto")
        data = {"auto": auto, "paddle": paddle.__version__, "cuda_build": paddle.is_compiled_with_cuda()}
        where = "no GPU"
        if auto == "gpu":
            props = paddle.device.cuda.get_device_properties(0)
            data.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                        gpus=paddle.device.cuda.device_count())
            where = f"{data['gpu']}, {data['gpu_memory_gib']} GiB, {data['gpus']} visible"
        if self.args.device == "gpu" and auto != "gpu":
            raise CheckFailed(f"--device gpu, but auto resolves to {auto} (Paddle {paddle.__version__}, CUDA build: "
                              f"{paddle.is_compiled_with_cuda()}); install paddlepaddle-gpu (README)")
        return f"--device auto -> {auto} ({where}; Paddle {paddle.__version__})", data

    def check_elmo(self, vocab_size: int, corpus: Corpus) -> tuple[str, dict]:
        device = "auto" if self.rows["device"].data.get("auto") == self.mode else self.mode  # the trainer resolves it
        save, first = os.path.join(self.out, f"elmo-{vocab_size}"), self.elmo.get(self.sizes.vocabs[0])
        run, rows = self.train([*self.elmo_flags(corpus, device), "--max_steps", str(self.sizes.steps)], save, True)
        on = (re.findall(r"rank\(s\) on (\w+)", run.out) or ["?"])[0]
        if on != self.mode:
            raise CheckFailed(f"the trainer ran on {on!r} with --device {device}, expected {self.mode}")
        speed, gpu, rss = steady_speed(rows), run.peak.get("gpu_bytes"), run.peak.get("rss_kib")
        memory = (f"peak GPU memory allocated {gpu / 2**30:.2f} GiB" if gpu else
                  f"peak RSS {(rss or 0) / 1024:.0f} MiB (CPU)")
        ratio = f" = {speed / first['tokens_per_s']:.2f}x the {self.sizes.vocabs[0]:,}-word run" if first else ""
        self.elmo[vocab_size] = {"tokens_per_s": speed, "rows": rows, "save_dir": save}
        if first:
            self.drop(save)  # only the first vocabulary's checkpoint is used again (embed)
        data = {"vocab": vocab_size, "steps": len(rows), "tokens_per_s": speed, "peak_gpu_bytes": gpu,
                "peak_rss_kib": rss, "final_loss": rows[-1]["loss"], "wall_s": run.wall_s, "trainer_device": device}
        flags = dict(zip(self.sizes.elmo[::2], self.sizes.elmo[1::2]))
        return (f"{speed:,.0f} tokens/s{ratio}; {memory}; {flags['--preset']}, batch {flags['--batch_size']} x "
                f"{flags['--unroll_steps']}, {flags['--n_negative_samples']} negatives, row-wise softmax, "
                f"{len(rows)} steps"), data

    def check_amp(self, mode: str, corpus: Corpus) -> tuple[str, dict]:
        base = self.elmo[self.sizes.vocabs[0]]
        save = os.path.join(self.out, f"amp-{mode}")
        run, rows = self.train([*self.elmo_flags(corpus), "--max_steps", str(self.sizes.steps), "--amp", mode], save)
        self.drop(save)
        speed, ref = steady_speed(rows), base["rows"]
        diffs = [abs(a["loss"] - b["loss"]) for a, b in zip(rows, ref)]
        last, rel = diffs[-1], diffs[-1] / max(abs(ref[-1]["loss"]), 1e-12)
        data = {"tokens_per_s": speed, "speedup_vs_fp32": speed / base["tokens_per_s"], "loss_diff_last": last,
                "loss_diff_max": max(diffs), "loss_fp32": ref[-1]["loss"], "loss_amp": rows[-1]["loss"],
                "skipped_steps": rows[-1].get("skipped_steps")}
        figures = (f"{speed:,.0f} tokens/s = {data['speedup_vs_fp32']:.2f}x fp32; |loss - fp32| after {len(rows)} "
                   f"steps {last:.4g} (max {max(diffs):.4g})")
        note = next((ln for ln in run.out.splitlines() if "is a no-op" in ln), "")
        if note:  # the project's own answer where autocast does nothing (Paddle's CPU build, no bf16 on a GPU)
            return f"{note.removeprefix('[paddle-lm] note: ')} ({figures})", {**data, "status": "SKIP"}
        if not math.isfinite(last) or rel > AMP_LOSS_TOLERANCE:
            raise CheckFailed(f"loss differs from fp32 by {rel:.1%} (> {AMP_LOSS_TOLERANCE:.0%}): {figures}")
        return figures, data

    def check_resume(self, corpus: Corpus) -> tuple[str, dict]:
        """SIGTERM once 2 steps are logged; resume from `latest`; compare with an uninterrupted run."""
        from paddle_lm.training.checkpoint import list_checkpoints

        flags, save, ref = self.elmo_flags(corpus), os.path.join(self.out, "resume"), os.path.join(self.out, "ref")
        log = os.path.join(self.out, "interrupted.err")
        with open(log, "w") as err:
            proc = subprocess.Popen([sys.executable, *flags, "--max_steps", "1000000", "--save_dir", save], cwd=ROOT,
                                    env={**self.env, **DETERMINISTIC}, stdout=subprocess.DEVNULL, stderr=err)
            try:
                self.wait_for(lambda: logged(save) >= 2, proc, "2 logged training steps")
                proc.send_signal(signal.SIGTERM)
                rc = proc.wait(timeout=self.sizes.timeout)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        with open(log) as f:
            text = f.read()
        m = INTERRUPTED.search(text)
        if rc != 128 + signal.SIGTERM or not m:
            raise CheckFailed(f"after SIGTERM: exit status {rc}, no 'interrupted at step' line; "
                              f"{reason(Run(rc, '', text, 0.0, {}))}")
        step, prefix = int(m.group(1)), m.group(2)
        if str(step) not in list_checkpoints(save):
            raise CheckFailed(f"SIGTERM at step {step}: no committed checkpoint {prefix}")
        end = ["--max_steps", str(step + RESUME_STEPS)]
        _, resumed = self.train([*flags, *end, "--init_from_ckpt", "latest"], save, env=DETERMINISTIC)
        _, uninterrupted = self.train([*flags, *end], ref, env=DETERMINISTIC)
        a, b = without_speed(resumed), without_speed(uninterrupted)
        diff = max((abs(x["loss"] - y["loss"]) for x, y in zip(a, b)), default=math.inf)
        data = {"interrupted_at": step, "saved": os.path.basename(prefix), "exit_status": rc, "equal": a == b,
                "max_loss_diff": diff, "resumed_losses": [r["loss"] for r in a[step:]],
                "uninterrupted_losses": [r["loss"] for r in b[step:]]}
        if a != b:  # the control: do two uninterrupted runs agree on this device?
            _, again = self.train([*flags, *end], ref + "2", env=DETERMINISTIC)
            noise = max(abs(x["loss"] - y["loss"]) for x, y in zip(again, uninterrupted))
            cause = ("two uninterrupted runs agree: resume is not exact" if without_speed(again) == b else
                     f"two uninterrupted runs differ too (max {noise:.3g}): non-deterministic kernels here")
            raise CheckFailed(f"SIGTERM at step {step}, resumed from latest, but steps 1..{len(b)} differ from the "
                              f"uninterrupted run (max |loss diff| {diff:.3g}); {cause}")
        self.drop(save, ref)
        return (f"SIGTERM at step {step} -> checkpoint {os.path.basename(prefix)} saved, exit {rc}; resumed from "
                f"latest: steps {step + 1}..{step + RESUME_STEPS} equal the uninterrupted run's losses"), data

    def check_generate(self, corpus: Corpus) -> tuple[str, dict]:
        save = os.path.join(self.out, "gpt2")
        self.train(["run_pretrain.py", "--model", "gpt2", *self.sizes.gpt2, "--train_data_path", corpus.train,
                    "--no-visualdl", "--device", self.mode], save)
        run = self.python(["-m", "paddle_lm", "generate", "--init_from_ckpt", os.path.join(save, "final"),
                           "--prompt", " ".join(corpus.words[:3]), *self.sizes.generate, "--seed", "0",
                           "--device", self.mode, "--json"])
        self.drop(save)
        if run.rc != 0:
            raise CheckFailed(f"generate exited {run.rc}: {reason(run)}")
        result = json.loads(run.out.strip().splitlines()[-1])
        data = {k: result[k] for k in ("new_tokens", "seconds", "new_tokens_per_s")}
        if not data["new_tokens"] or not data["new_tokens_per_s"]:
            raise CheckFailed(f"generate made no new tokens: {run.out.strip()[-200:]}")
        return (f"{data['new_tokens_per_s']:,.1f} new tokens/s ({data['new_tokens']} in {data['seconds']} s; "
                f"{' '.join(self.sizes.generate)}; {self.sizes.gpt2[1]} trained a few steps; key/value cache)"), data

    def check_embed(self, corpus: Corpus) -> tuple[str, dict]:
        (n, batch), path = self.sizes.embed, os.path.join(self.out, "embed.txt")
        ids = draw(np.random.default_rng(7), len(corpus.words), n * EMBED_TOKENS).reshape(n, EMBED_TOKENS)  # [n, T]
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(" ".join(corpus.words[i] for i in row) + "\n" for row in ids)
        ckpt = os.path.join(self.elmo[self.sizes.vocabs[0]]["save_dir"], "final")
        run = self.python(["-m", "paddle_lm", "embed", "--init_from_ckpt", ckpt, "--input", path, "--output",
                           os.path.join(self.out, "embed.npz"), "--batch_size", str(batch), "--device", self.mode])
        if run.rc != 0 or f"{n} sentences" not in run.out:
            raise CheckFailed(f"embed exited {run.rc}: {reason(run)}")
        os.remove(os.path.join(self.out, "embed.npz"))
        bars = RATE.findall(run.err)  # the last is the closing bar: tqdm's rate over the encoding loop
        if not bars:
            raise CheckFailed(f"no progress bar with a rate in embed's stderr: {reason(run)}")
        rate = float(bars[-1][2]) if bars[-1][3] == "sent/s" else 1.0 / float(bars[-1][2])
        data = {"sentences": n, "tokens_per_sentence": EMBED_TOKENS, "batch_size": batch, "sentences_per_s": rate,
                "wall_s": run.wall_s, "end_to_end_sentences_per_s": n / run.wall_s}
        return (f"{rate:,.1f} sentences/s ({n} x {EMBED_TOKENS} tokens, batch {batch}; {run.wall_s:.1f} s end to "
                f"end with start-up and loading)"), data

    def check_epoch(self) -> tuple[str, dict]:
        data, parts = {"epoch_tokens": EPOCH_TOKENS, "scaling_efficiency_8_cards": SCALING}, []
        for vocab, run in self.elmo.items():
            hours = {n: EPOCH_TOKENS / (run["tokens_per_s"] * n * (SCALING if n > 1 else 1.0)) / 3600 for n in (1, 8)}
            data[f"hours_{vocab}"] = {str(n): h for n, h in hours.items()}
            parts.append(f"{vocab:,} words: " + ", ".join(f"{n} card{'s' * (n > 1)} {h:,.1f} h"
                                                        for n, h in hours.items()))
        tail = "" if self.mode == "gpu" else "; from tiny CPU figures, so it exercises the arithmetic only"
        return (f"{'; '.join(parts)} per epoch of {EPOCH_TOKENS:,} tokens at the measured per-card tokens/s; 8 "
                f"cards assume {SCALING:.0%} scaling efficiency{tail}"), data

    # ------------------------------------------------------------------ waiting, the whole run, the report
    def wait_for(self, cond, proc: subprocess.Popen, what: str) -> None:
        """Poll `cond()` until it holds; fail when `proc` exits first or after the mode's timeout."""
        deadline = time.monotonic() + self.sizes.timeout
        while not cond():
            if proc.poll() is not None:
                raise CheckFailed(f"training exited ({proc.returncode}) before {what}")
            if time.monotonic() > deadline:
                raise CheckFailed(f"no {what} within {self.sizes.timeout:.0f} s")
            time.sleep(0.02)

    def run(self) -> None:
        s = self.sizes
        self.attempt("device", "measured", self.check_device)
        if self.rows["device"].status == "FAIL":
            return
        corpora = [write_corpus(os.path.join(self.out, f"corpus-{v}"), v, s.corpus_tokens, seed=v) for v in s.vocabs]
        for vocab, corpus in zip(s.vocabs, corpora):
            self.attempt(f"elmo_{vocab}", "measured", lambda v=vocab, c=corpus: self.check_elmo(v, c))
        first = f"elmo_{s.vocabs[0]}"
        for mode in ("bf16", "fp16"):
            self.attempt(f"amp_{mode}", "measured", lambda m=mode: self.check_amp(m, corpora[0]), needs=first)
        self.attempt("resume", "measured", lambda: self.check_resume(corpora[0]))
        self.attempt("generate", "measured", lambda: self.check_generate(corpora[0]))
        self.attempt("embed", "measured", lambda: self.check_embed(corpora[0]), needs=first)
        self.attempt("epoch", "arithmetic", self.check_epoch, needs=first)

    def report(self, wall_s: float) -> bool:
        ok = all(r.status != "FAIL" for r in self.rows.values())
        if not self.args.json_only:
            table = [("check", "status", "kind", "result"), *(r[:4] for r in self.rows.values())]
            widths = [max(len(t[i]) for t in table) for i in range(3)]
            print()
            for t in table:
                print("  ".join(c.ljust(w) for c, w in zip(t, widths)) + "  " + t[3])
            print(f"\n{'all checks passed' if ok else 'FAILED'} on {self.mode} in {wall_s:.0f} s")
        checks = {r.name: {"status": r.status, "kind": r.kind, "summary": r.summary, **r.data}
                  for r in self.rows.values()}
        print(json.dumps(tidy({"gpu_check": "paddle-lm", "device": self.mode, "ok": ok, "wall_s": wall_s,
                               "checks": checks})), flush=True)
        return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("auto", "gpu", "cpu"), default="auto",
                   help="auto = the GPU when Paddle's CUDA build sees one, else the CPU (tiny sizes)")
    p.add_argument("--out", default="", help="a new or empty folder for corpora, checkpoints and logs (default: a "
                                             "temporary one); removed at the end unless --keep")
    p.add_argument("--keep", action="store_true", help="keep --out and the checkpoints in it")
    p.add_argument("--json-only", action="store_true", help="print only the JSON line")
    args = p.parse_args(argv)
    if args.out and os.path.isdir(args.out) and os.listdir(args.out):
        print(f"error: --out {args.out} is not empty; name a new or empty folder", file=sys.stderr)
        return 2
    out = os.path.abspath(args.out) if args.out else tempfile.mkdtemp(prefix="paddle-lm-gpu-check-")
    os.makedirs(out, exist_ok=True)
    from paddle_lm.cli import quiet_startup

    quiet_startup()  # what the scripts do before Paddle loads
    from paddle_lm.device import resolve_device

    mode = args.device if args.device != "auto" else resolve_device("auto")
    check = GpuCheck(args, mode, out)
    check.say(f"{mode} mode ({'full' if mode == 'gpu' else 'tiny'} sizes); files in {out}")
    start = time.perf_counter()
    try:
        check.run()
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    return 0 if check.report(time.perf_counter() - start) else 1


if __name__ == "__main__":
    sys.exit(main())
