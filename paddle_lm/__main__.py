"""`python -m paddle_lm COMMAND`: small tools around training.

    python -m paddle_lm plot --metrics checkpoints/metrics.jsonl --output loss.png
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
    args = p.parse_args(argv)
    if args.command == "plot":
        from paddle_lm.training.metrics import plot_metrics

        print(f"wrote {plot_metrics(args.metrics, args.output)}")


if __name__ == "__main__":
    quiet_startup()
    run_main(main)
