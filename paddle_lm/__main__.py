"""`python -m paddle_lm COMMAND`: small tools around training and downstream use.

    python -m paddle_lm plot --metrics checkpoints/metrics.jsonl --output loss.png
    python -m paddle_lm embed --init_from_ckpt checkpoints/final --input sentences.txt --output vectors.npz
    python -m paddle_lm export --init_from_ckpt checkpoints/final --output exported/elmo
    python -m paddle_lm save_pretrained --init_from_ckpt checkpoints-bert/final --output bert-sample
    python -m paddle_lm generate --init_from_ckpt checkpoints-gpt2/final --prompt "the government said" --top_k 50
"""

from __future__ import annotations

import argparse

from paddle_lm.cli import quiet_startup, run_main


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m paddle_lm")
    sub = p.add_subparsers(dest="command", required=True)
    plot = sub.add_parser("plot", help="Loss/perplexity curve PNG from a metrics.jsonl file.")
    plot.add_argument("--metrics", default="./checkpoints/metrics.jsonl", help="metrics.jsonl written by training")
    plot.add_argument("--output", default="loss_curve.png", help="PNG file to write")

    embed = sub.add_parser("embed", help="ELMo vectors of every line of a tokenized text file -> .npz/.h5.")
    embed.add_argument("--init_from_ckpt", required=True, help="ELMo checkpoint prefix, e.g. ./checkpoints/final")
    embed.add_argument("--input", required=True,
                       help="UTF-8 text, one tokenized sentence per line (tokens separated by spaces)")
    embed.add_argument("--output", required=True,
                       help="*.npz (or *.h5, needs h5py): entry 'i' = line i+1's [layers, tokens, 2*proj] vectors")
    embed.add_argument("--batch_size", type=int, default=64, help="sentences encoded at a time")
    embed.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="device to run on")

    export = sub.add_parser("export", help="Static inference model (paddle.jit.save) of an ELMo encoder.")
    export.add_argument("--init_from_ckpt", required=True, help="ELMo checkpoint prefix, e.g. ./checkpoints/final")
    export.add_argument("--output", required=True,
                        help="prefix of the files to write, e.g. exported/elmo -> elmo.json, elmo.pdiparams, ...")
    export.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="device to trace on")
    pre = sub.add_parser("save_pretrained", help="A BERT / GPT-2 checkpoint as a paddlenlp save_pretrained folder "
                         "(model + tokenizer; loadable with from_pretrained and --init_from_pretrained).")
    pre.add_argument("--init_from_ckpt", required=True, help="BERT or GPT-2 checkpoint prefix, e.g. "
                     "./checkpoints-bert/final")
    pre.add_argument("--output", required=True, help="folder to write")
    pre.add_argument("--overwrite", action="store_true", help="write into a non-empty --output")

    gen = sub.add_parser("generate", help="Continue a prompt with a GPT-2 checkpoint (sampling or greedy).")
    gen.add_argument("--init_from_ckpt", required=True, help="GPT-2 checkpoint prefix, e.g. ./checkpoints-gpt2/final")
    gen.add_argument("--prompt", required=True, help="text to continue (the sample corpus is Moses-tokenized: "
                     "lower-case words separated by spaces match it best)")
    gen.add_argument("--max_length", type=int, default=60, help="tokens per sequence, prompt included (default 60)")
    gen.add_argument("--temperature", type=float, default=1.0, help="divide the logits by this (default 1.0)")
    gen.add_argument("--top_k", type=int, default=0, help="sample among the k likeliest tokens; 0 = off")
    gen.add_argument("--top_p", type=float, default=1.0, help="nucleus sampling: the smallest set of tokens "
                     "holding this probability; 1.0 = off")
    gen.add_argument("--repetition_penalty", type=float, default=1.0, help="CTRL-style penalty (> 1) on tokens "
                     "already in the sequence; 1.0 = off")
    gen.add_argument("--num_return_sequences", type=int, default=1, help="continuations to draw (default 1)")
    gen.add_argument("--greedy", action="store_true", help="take the likeliest token at every step")
    gen.add_argument("--seed", type=int, default=0, help="sampling seed: the same seed gives the same text")
    gen.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="device to run on")
    args = p.parse_args(argv)

    if args.command == "plot":
        from paddle_lm.training.metrics import plot_metrics

        print(f"wrote {plot_metrics(args.metrics, args.output)}")
    elif args.command == "embed":
        from paddle_lm.downstream.export import embed_file

        n = embed_file(args.init_from_ckpt, args.input, args.output, args.batch_size, args.device)
        print(f"wrote {args.output}: {n} sentences, keys '0'..'{n - 1}' (one per input line)")
    elif args.command == "export":
        from paddle_lm.downstream.export import export_embedder

        written = export_embedder(args.init_from_ckpt, args.output, args.device)
        print(f"wrote {', '.join(written)}; load with paddle_lm.downstream.export.load_exported({args.output!r})")
    elif args.command == "save_pretrained":
        from paddle_lm.pretrained import export_pretrained

        files = export_pretrained(args.init_from_ckpt, args.output, args.overwrite)
        print(f"wrote {args.output}: {', '.join(files)}")
    elif args.command == "generate":
        from paddle_lm.pretrained import generate_text

        texts = generate_text(args.init_from_ckpt, args.prompt, device=args.device, max_length=args.max_length,
                              temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                              repetition_penalty=args.repetition_penalty,
                              num_return_sequences=args.num_return_sequences, greedy=args.greedy, seed=args.seed)
        for i, text in enumerate(texts, 1):
            print(f"[{i}] {text}")


if __name__ == "__main__":
    quiet_startup()
    run_main(main)
