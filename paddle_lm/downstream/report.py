"""Printing a ``finetune`` report: the human-readable table and the ``--json`` summary."""

from __future__ import annotations

from paddle_lm.downstream.linear import C_GRID


def _p(v) -> str:
    return "n/a" if v is None else (f"{v:.2e}" if v < 1e-4 else f"{v:.4f}")


def format_report(r: dict) -> str:
    """The human-readable table of a ``finetune`` report."""
    how = (f"{r['folds']}-fold stratified CV" if r["folds"] else
           f"one stratified split, {r['test_fraction']:.0%} test") + f" (seed {r['seed']})"
    c = r["classifier"]
    data = (f"{r['sentences']:,} sentences ({r['positive']:,} positive, {r['negative']:,} negative) from "
            f"{r['data_dir']}{' (cleaned)' if r['clean'] else ''}; {how}")
    dev = f"a {c['dev_fraction']:.0%} dev split of each training fold"
    mlp = (f"mean of token vectors -> {'BatchNorm -> ' if c['normalize'] else ''}MLP {c['hidden_size']} (dropout "
           f"{c['dropout']}), Adam lr {c['lr']}, batch {c['batch_size']}, <= {c['epochs']} epochs, early stopping "
           f"(patience {c['patience']}) on {dev}")
    linear = (f"mean of token vectors (layers side by side) -> standardized -> L2 logistic regression, C chosen "
              f"by log-loss on {dev} from {', '.join(f'{x:g}' for x in C_GRID)}")
    heads = {e.get("classifier", c).get("classifier", "mlp") for e in r["results"]} | {c.get("classifier", "mlp")}
    clf = "\n".join(f"classifier{' ' + h if len(heads) > 1 else ''}: {mlp if h == 'mlp' else linear}"
                     for h in sorted(heads))
    header = f"{'encoder':<24} {'dim':>4} {'OOV':>6}  {'accuracy mean ± std':<20} {'best epoch / C':<14} time"
    lines = [*(f"note: {n}" for n in r["notes"]), data, clf, "", header]
    for e in r["results"]:
        oov = f"{e['oov_rate']:.1%}" if "oov_rate" in e else "-"
        chosen = e.get("best_epochs") or e.get("best_c")
        lo, hi = min(chosen), max(chosen)
        ep = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
        lines.append(f"{e['name']:<24} {e['dim']:>4} {oov:>6}  {e['mean']:.4f} ± {e['std']:.4f}      {ep:<14} "
                     f"{e['seconds']:.1f}s (features {e['feature_seconds']:.1f}s)")
    for e in r["results"]:
        own = [f"{k} {v}" for k, v in e.get("classifier", c).items() if v != c[k]]
        lines.append(f"  {e['name']}: {e['source']}" + (f" ({e['detail']})" if e.get("detail") else "")
                     + (f"; classifier: {', '.join(own)}" if own else ""))
    if not r["comparisons"]:
        return "\n".join(lines)
    header = (f"{'paired comparison (A - B)':<44} {'Δacc mean ± std':<18} {'McNemar b/c':<12} "
              f"{'McNemar p':<10} t-test p")
    lines += ["", header]
    for p in r["comparisons"]:
        m, t = p["mcnemar"], p["ttest"]
        lines.append(f"{p['a'] + ' - ' + p['b']:<44} {p['diff_mean']:+.4f} ± {p['diff_std']:.4f}  "
                     f"{str(m['b']) + '/' + str(m['c']):<12} {_p(m['p']):<10} {_p(t['p'])}")
    n = r["comparisons"][0]["mcnemar"]["n"]
    once = ", each tested exactly once" if r["folds"] else ""
    single = "" if r["folds"] else " (n/a with one split; use --folds K)"
    lines.append(f"McNemar p: exact two-sided binomial test on the discordant predictions (b = A right and B "
                 f"wrong, c = the reverse) pooled over all {n:,} test sentences{once}")
    lines.append(f"t-test p: paired t-test (scipy.stats.ttest_rel) over the {r['splits']} per-fold "
                 f"accuracies{single}")
    return "\n".join(lines)


def report_json(r: dict) -> dict:
    """The machine-readable summary (``--json``): per-encoder fold accuracies, mean, std, and the p-values."""
    keep = ("name", "encoder", "source", "dim", "classifier", "accuracies", "mean", "std", "best_epochs", "best_c",
            "seconds", "feature_seconds", "oov_rate")
    return {"sentences": r["sentences"], "folds": r["folds"], "seed": r["seed"],
            "encoders": [{k: e[k] for k in keep if k in e} for e in r["results"]],
            "comparisons": [{"a": p["a"], "b": p["b"], "diff_mean": p["diff_mean"], "diff_std": p["diff_std"],
                             "mcnemar_b": p["mcnemar"]["b"], "mcnemar_c": p["mcnemar"]["c"],
                             "mcnemar_p": p["mcnemar"]["p"], "ttest_t": p["ttest"]["t"],
                             "ttest_p": p["ttest"]["p"]} for p in r["comparisons"]]}
