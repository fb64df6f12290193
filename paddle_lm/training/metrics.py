"""`metrics.jsonl`: one JSON line per logging interval (and the same scalars for VisualDL under
``{save_dir}/vdl``: ``visualdl --logdir checkpoints/vdl``), and the loss-curve plot made from it."""

from __future__ import annotations

import json
import math
import os
import sys

from paddle_lm.errors import UserError

METRICS_FILE = "metrics.jsonl"
VDL_DIR = "vdl"
SCALARS = ("loss", "ppl", "lr", "grad_norm", "tokens_per_s")
from paddle_lm.fsio import atomic_path, atomic_write_text, json_line, os_error, read_input


class MetricsLog:
    """Appends `{"step", "loss", "ppl", "lr", "grad_norm", "tokens_per_s"}` lines (strict JSON) to ``{save_dir}/metrics.jsonl``.

    When a run resumes from step N, lines after N (from the interrupted run) are dropped first, so the file
    always describes one consistent history.
    """

    def __init__(self, save_dir: str, resume_step: int = 0, visualdl: bool = True):
        self.path = os.path.join(save_dir, METRICS_FILE)
        os.makedirs(save_dir, exist_ok=True)
        if os.path.exists(self.path):
            kept = [r for r in read_metrics(self.path) if resume_step and r["step"] <= resume_step]
            atomic_write_text(self.path, "".join(json_line(r) + "\n" for r in kept))
        self.vdl = None
        if visualdl:
            from visualdl import LogWriter  # a new records file per run; a resumed run's steps follow on

            self.vdl = LogWriter(logdir=os.path.join(save_dir, VDL_DIR))

    def write(self, record: dict) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json_line(record) + "\n")
            if self.vdl is not None:
                for key in SCALARS:
                    value = record.get(key)
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        self.vdl.add_scalar(tag=f"train/{key}", step=record["step"], value=value)
                self.vdl.flush()
        except OSError as e:
            raise os_error(e, self.path) from None

    def close(self) -> None:
        if self.vdl is not None:
            self.vdl.close()
            self.vdl = None


#: the logged perplexity is exp(loss) up to this loss (float64 holds exp(700); a larger one would not be JSON)
PPL_CAP = 700.0


def perplexity(loss: float) -> dict:
    """``{"ppl": exp(loss)}`` rounded, with ``"ppl_capped": True`` past PPL_CAP (then ppl is exp(PPL_CAP))."""
    out = {"ppl": round(math.exp(min(loss, PPL_CAP)), 4)}
    if loss > PPL_CAP:
        out["ppl_capped"] = True
    return out


class LearningWatch:
    """Warns once (stderr) when `limit` logged losses in a row stay above the first one logged; 0 = never."""

    def __init__(self, limit: int):
        self.limit, self.first, self.above = limit, None, 0

    def see(self, loss: float, step: int) -> None:
        if self.first is None:
            self.first = loss
            return
        self.above = self.above + 1 if loss > self.first else 0
        if self.limit and self.above == self.limit:
            print(f"[paddle-lm] warning: the loss has stayed above its first logged value ({self.first:.3f}) for "
                  f"{self.limit} logged steps in a row (now {loss:.3f} at step {step}): the run is not learning; "
                  f"try a lower --lr (set --not_learning_logs 0 to silence this)", file=sys.stderr, flush=True)


def read_metrics(path: str) -> list[dict]:
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist; train with --save_dir first")
    rows = []
    for no, line in enumerate(read_input(path).split(b"\n"), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:  # (undecodable bytes included)
                raise UserError(f"{path}:{no} is not a JSON line") from None
    return rows


def plot_metrics(path: str, output: str) -> str:
    """Save a PNG of loss and perplexity against step from a metrics.jsonl file; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(path)
    if not rows:
        raise UserError(f"{path} has no metrics lines yet")
    steps = [r["step"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(steps, [r["loss"] for r in rows])
    ax1.set(xlabel="step", ylabel="training loss (nats/token)", title="loss")
    ax2.plot(steps, [r["ppl"] for r in rows])
    ax2.set(xlabel="step", ylabel="perplexity", title="training perplexity", yscale="log")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return output
