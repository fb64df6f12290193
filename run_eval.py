"""Perplexity of a checkpoint on held-out data.

    python run_eval.py --init_from_ckpt=./checkpoints/final [--dev_data_path='...heldout.../*'] [--json]
"""

from paddle_lm.cli import quiet_startup, run_main

quiet_startup()


def main() -> None:
    import json

    from args import parse_eval
    from paddle_lm.evaluation import evaluate

    eval_cfg, data, vocab_file = parse_eval()
    r = evaluate(eval_cfg, data, vocab_file)
    print(f"Eval - average loss: {r['loss']:.4f} - average Perplexity: {r['ppl']:.2f}")
    line = f"forward perplexity: {r['ppl_fw']:.2f}"
    if "ppl_bw" in r:
        line += f" - backward perplexity: {r['ppl_bw']:.2f}"
    print(f"{line} - {r['tokens']:,} tokens - checkpoint step {r['step']}")
    if eval_cfg.json:
        print(json.dumps({k: r[k] for k in ("ppl", "ppl_fw", "ppl_bw", "tokens") if k in r}))


if __name__ == "__main__":
    run_main(main)
