"""Perplexity of a checkpoint on held-out data (BERT: masked-token perplexity over a fixed-seed masking).

    python run_eval.py --init_from_ckpt=./checkpoints/final [--dev_data_path='...heldout.../*'] [--json]
"""

from paddle_lm.cli import quiet_startup, run_main

quiet_startup()


def main() -> None:
    import json

    from args import parse_eval

    eval_cfg, data, vocab_file = parse_eval()  # every flag validated before Paddle is imported
    from paddle_lm.evaluation import evaluate

    r = evaluate(eval_cfg, data, vocab_file)
    if r.get("objective") == "masked-lm":
        print(f"Eval - masked-LM loss: {r['loss']:.4f} - masked-token perplexity: {r['ppl']:.2f}")
        print(f"over {r['tokens']:,} masked tokens ({r['mlm_probability']:.0%} of the held-out tokens, one fixed "
              f"masking, --seed {r['mask_seed']}) - checkpoint step {r['step']}. A masked-token perplexity "
              f"predicts tokens from both sides: it is not comparable to a causal (GPT-2, LSTM) perplexity.")
    else:
        print(f"Eval - average loss: {r['loss']:.4f} - average Perplexity: {r['ppl']:.2f}")
        line = f"forward perplexity: {r['ppl_fw']:.2f}"
        if "ppl_bw" in r:
            line += f" - backward perplexity: {r['ppl_bw']:.2f}"
        print(f"{line} - {r['tokens']:,} tokens - checkpoint step {r['step']}")
    if eval_cfg.json:
        keys = ("ppl", "tokens", "objective") if "objective" in r else ("ppl", "ppl_fw", "ppl_bw", "tokens")
        print(json.dumps({k: r[k] for k in keys if k in r}))


if __name__ == "__main__":
    run_main(main)
