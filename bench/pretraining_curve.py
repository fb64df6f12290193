"""When does pretraining pay? Downstream polarity accuracy against the tokens an ELMo saw in pretraining, next to
word2vec trained for the same passes over the same corpus, with held-out perplexity beside each point.

    python bench/pretraining_curve.py --untrained ./checkpoints-untrained/final --ckpt ./checkpoints/final \
        --ckpt ./checkpoints-curve/377 --ckpt ./checkpoints-curve/754 --ckpt ./checkpoints-curve/1508 \
        --ckpt ./checkpoints-curve/final [--folds 10] [--plot docs/pretraining_curve.png]

Per checkpoint: `run_eval.py --json` (held-out perplexity), then one `run_finetune.py --json --compare` over
every encoder at once — each ELMo checkpoint and word2vec at every whole number of passes among the points, each
with both heads (the BoW MLP and `classifier=linear`) — so all share identical folds. Prints the curve as a
table (with McNemar's p of the better ELMo head against word2vec at the same passes) and a JSON last line, and
draws it (matplotlib) to `--plot`. The untrained control (`--untrained`, e.g. 1 step at lr 1e-12) sits at 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def last_json(cmd: list[str]) -> dict:
    """Run a project script; its JSON last line."""
    out = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True, check=False,
                         env={**os.environ, "MKL_DEBUG_CPU_TYPE": "5"})
    if out.returncode:
        sys.exit(f"{' '.join(cmd[:3])} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def point(prefix: str, untrained: bool) -> dict:
    with open(prefix + ".json") as f:
        side = json.load(f)
    epochs = 0.0 if untrained else side["step"] / side["geometry"]["steps_per_epoch"]
    return {"prefix": prefix, "step": side["step"], "epochs": epochs,
            "tokens": 0 if untrained else side["tokens_seen"], "corpus": side["data"]["train_data_path"]}


def plot(rows: list, w2v: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    xs = [r["epochs"] for r in rows]
    ax.plot(xs, [r["elmo_mlp"] for r in rows], "o-", color="C0", label="ELMo + BoW MLP")
    ax.plot(xs, [r["elmo_linear"] for r in rows], "s-", color="C0", alpha=0.6, label="ELMo + linear head")
    ep = sorted(w2v)
    ax.plot(ep, [w2v[e]["mlp"] for e in ep], "o--", color="C1", label="word2vec + BoW MLP")
    ax.plot(ep, [w2v[e]["linear"] for e in ep], "s--", color="C1", alpha=0.6, label="word2vec + linear head")
    ax.set_xlabel("passes over the pretraining corpus (epochs)")
    ax.set_ylabel("polarity accuracy (10-fold mean)")
    ax.grid(alpha=0.3)
    ppl = ax.twinx()
    trained = [r for r in rows if r["epochs"] > 0]
    ppl.plot([r["epochs"] for r in trained], [r["ppl"] for r in trained], "x:", color="gray", label="held-out ppl")
    ppl.set_ylabel("ELMo held-out perplexity")
    lines = ax.get_legend_handles_labels()[0] + ppl.get_legend_handles_labels()[0]
    ax.legend(lines, [h.get_label() for h in lines], fontsize=8, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", action="append", required=True, help="an ELMo checkpoint prefix (repeat the flag)")
    p.add_argument("--untrained", default="", help="the untrained control's prefix (plotted at 0)")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--plot", default="docs/pretraining_curve.png")
    p.add_argument("--also", action="append", default=[], metavar="SPEC",
                   help="another run_finetune.py --compare spec scored on the same folds (e.g. GloVe; repeat)")
    args = p.parse_args()
    points = ([point(args.untrained, True)] if args.untrained else []) + [point(c, False) for c in args.ckpt]
    corpus = points[-1]["corpus"]
    specs, names = [], []
    for pt in points:
        label = f"elmo-{pt['epochs']:g}ep"
        pt["ppl"] = None if pt["epochs"] == 0 else last_json(["run_eval.py", "--init_from_ckpt", pt["prefix"],
                                                              "--json"])["ppl"]
        for head in ("mlp", "linear"):
            specs.append(f"elmo:ckpt={pt['prefix']},classifier={head},name={label}-{head}")
        names.append(label)
    passes = sorted({round(pt["epochs"]) for pt in points if pt["epochs"] >= 1
                     and abs(pt["epochs"] - round(pt["epochs"])) < 1e-9})
    for e in passes:
        for head in ("mlp", "linear"):
            specs.append(f"w2v:train_on={corpus},epochs={e},classifier={head},name=w2v-{e}ep-{head}")
    report = last_json(["run_finetune.py", "--folds", str(args.folds), "--json", "--compare", *specs, *args.also])
    acc = {e["name"]: e["mean"] for e in report["encoders"]}
    pairs = {(c["a"], c["b"]): c for c in report["comparisons"]}
    w2v = {e: {"mlp": acc[f"w2v-{e}ep-mlp"], "linear": acc[f"w2v-{e}ep-linear"]} for e in passes}
    rows = []
    print(f"\n{args.folds}-fold polarity accuracy (identical folds) against pretraining; word2vec trained on "
          f"{corpus} for the same passes")
    print(f"{'epochs':>6} {'tokens':>10} {'held-out ppl':>12} {'ELMo MLP':>9} {'ELMo lin':>9} "
          f"{'w2v MLP':>8} {'w2v lin':>8}  best ELMo - best w2v (McNemar p)")
    for pt, label in zip(points, names):
        row = {**pt, "elmo_mlp": acc[f"{label}-mlp"], "elmo_linear": acc[f"{label}-linear"]}
        e = round(pt["epochs"])
        cell = "-"
        if e in w2v and abs(pt["epochs"] - e) < 1e-9:
            a = f"{label}-{'mlp' if row['elmo_mlp'] >= row['elmo_linear'] else 'linear'}"
            b = f"w2v-{e}ep-{'mlp' if w2v[e]['mlp'] >= w2v[e]['linear'] else 'linear'}"
            c = pairs.get((a, b))
            row.update(w2v_mlp=w2v[e]["mlp"], w2v_linear=w2v[e]["linear"], best_diff=acc[a] - acc[b],
                       mcnemar_p=c["mcnemar_p"] if c else None)
            cell = f"{acc[a] - acc[b]:+.4f} ({c['mcnemar_p']:.2g})" if c else f"{acc[a] - acc[b]:+.4f}"
        ppl = f"{row['ppl']:.1f}" if row["ppl"] else "-"
        w_m = f"{row['w2v_mlp']:.4f}" if "w2v_mlp" in row else "-"
        w_l = f"{row['w2v_linear']:.4f}" if "w2v_linear" in row else "-"
        print(f"{pt['epochs']:>6.2f} {pt['tokens']:>10,} {ppl:>12} {row['elmo_mlp']:>9.4f} {row['elmo_linear']:>9.4f} "
              f"{w_m:>8} {w_l:>8}  {cell}")
        rows.append(row)
    for e in report["encoders"][len(specs):]:
        print(f"also: {e['name']}: {e['mean']:.4f} ± {e['std']:.4f}")
    plot(rows, w2v, args.plot)
    print(f"plot: {args.plot}")
    print(json.dumps({"folds": args.folds, "points": rows, "word2vec": w2v, "encoders": report["encoders"]}))


if __name__ == "__main__":
    main()
