"""`python -m paddle_lm COMMAND`: small tools around training and downstream use.

    python -m paddle_lm plot --metrics checkpoints/metrics.jsonl --output loss.png
    python -m paddle_lm embed --init_from_ckpt checkpoints/final --input sentences.txt --output vectors.npz
    python -m paddle_lm export --init_from_ckpt checkpoints/final --output exported/elmo
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


if __name__ == "__main__":
    quiet_startup()
    run_main(main)
