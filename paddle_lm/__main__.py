"""`python -m paddle_lm COMMAND`: small tools around training and downstream use.

    python -m paddle_lm plot --metrics checkpoints/metrics.jsonl --output loss.png
    python -m paddle_lm embed --init_from_ckpt checkpoints/final --input sentences.txt --output vectors.npz
    python -m paddle_lm export --init_from_ckpt checkpoints/final --output exported/elmo
    python -m paddle_lm save_pretrained --init_from_ckpt checkpoints-bert/final --output bert-sample
    python -m paddle_lm generate --init_from_ckpt checkpoints-gpt2/final --prompt "the government said" --top_k 50
    python -m paddle_lm import-elmo --options options.json --weights weights.hdf5 --output elmo/original
    python -m paddle_lm export-elmo --init_from_ckpt checkpoints/final --output exported/bilm
    python -m paddle_lm export-hf --init_from_ckpt checkpoints-gpt2/final --output gpt2-hf
    python -m paddle_lm fill-mask --init_from_pretrained bert-hf --text "the [MASK] said" --top_k 5 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from paddle_lm.cli import ArgumentParser, quiet_startup, run_main
from paddle_lm.config import DEVICES, GenerateConfig, validate_embed, validate_generate
from paddle_lm.errors import UserError
from paddle_lm.fsio import json_line

#: The files `export` writes at its prefix (paddle.jit.save's program and weights, then paddle-lm's metadata).
EXPORT_SUFFIXES = (".json", ".pdmodel", ".pdiparams", ".pdiparams.info", ".embedder-meta")
OVERWRITE_HELP = "replace an existing --output"
DEVICE_HELP = "device to run on; auto = the GPU when Paddle has CUDA and sees one, else the CPU"


def build_parser(prog: str = "python -m paddle_lm") -> ArgumentParser:
    """The subcommands' argument parser (parsing only; `main` checks and runs)."""
    from paddle_lm import __version__

    p = ArgumentParser(prog=prog)
    p.add_argument("--version", action="version", version=f"paddle-lm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    plot = sub.add_parser("plot", help="Loss/perplexity curve PNG from a metrics.jsonl file.")
    plot.add_argument("--metrics", default="./checkpoints/metrics.jsonl", help="metrics.jsonl written by training")
    plot.add_argument("--output", default="loss_curve.png", help="PNG file to write")
    plot.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    embed = sub.add_parser("embed", help="ELMo vectors of every line of a tokenized text file -> .npz/.h5.")
    embed.add_argument("--init_from_ckpt", required=True, help="ELMo checkpoint prefix, e.g. ./checkpoints/final")
    embed.add_argument("--input", required=True,
                       help="UTF-8 text, one tokenized sentence per line (tokens separated by spaces)")
    embed.add_argument("--output", required=True,
                       help="*.npz (or *.h5, needs h5py): entry 'i' = line i+1's [layers, tokens, 2*proj] vectors")
    embed.add_argument("--batch_size", type=int, default=64, help="sentences encoded at a time")
    embed.add_argument("--device", default="auto", choices=DEVICES, help=DEVICE_HELP)
    embed.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    export = sub.add_parser("export", help="Static inference model (paddle.jit.save) of an ELMo encoder.")
    export.add_argument("--init_from_ckpt", required=True, help="ELMo checkpoint prefix, e.g. ./checkpoints/final")
    export.add_argument("--output", required=True,
                        help="prefix of the files to write, e.g. exported/elmo -> elmo.json, elmo.pdiparams, ...")
    export.add_argument("--device", default="auto", choices=DEVICES, help=DEVICE_HELP)
    export.add_argument("--overwrite", action="store_true", help="replace existing files at the --output prefix")
    pre = sub.add_parser("save_pretrained", help="A BERT / GPT-2 checkpoint as a paddlenlp save_pretrained folder "
                         "(model + tokenizer; loadable with from_pretrained and --init_from_pretrained).")
    pre.add_argument("--init_from_ckpt", required=True, help="BERT or GPT-2 checkpoint prefix, e.g. "
                     "./checkpoints-bert/final")
    pre.add_argument("--output", required=True, help="folder to write")
    pre.add_argument("--overwrite", action="store_true", help="write into a non-empty --output")

    gen = sub.add_parser("generate", help="Continue a prompt with a GPT-2 (sampling or greedy, key/value cache).")
    _model_source(gen, "GPT-2", "./checkpoints-gpt2/final")
    gen.add_argument("--prompt", required=True, help="text to continue (the sample corpus is Moses-tokenized: "
                     "lower-case words separated by spaces match it best)")
    for f in dataclasses.fields(GenerateConfig):  # the sampling flags, documented and ranged in paddle_lm.config
        if f.type in ("bool", bool):
            gen.add_argument(f"--{f.name}", action="store_true", help=f.metadata["doc"])
        else:
            gen.add_argument(f"--{f.name}", type=type(f.default), default=f.default,
                             help=f"{f.metadata['doc']} (default {f.default})")
    gen.add_argument("--device", default="auto", choices=DEVICES, help=DEVICE_HELP)
    gen.add_argument("--json", action="store_true", help="print one JSON line: texts, new_tokens, new_tokens_per_s")

    fill = sub.add_parser("fill-mask", help="The likeliest tokens at each [MASK] of a text, with a BERT.")
    _model_source(fill, "BERT", "./checkpoints-bert/final")
    fill.add_argument("--text", required=True, help='text with one or more [MASK], e.g. "the [MASK] said"')
    fill.add_argument("--top_k", type=int, default=5, help="tokens to show per [MASK] (default 5)")
    fill.add_argument("--device", default="auto", choices=DEVICES, help=DEVICE_HELP)
    fill.add_argument("--json", action="store_true", help="print one JSON line: per [MASK], the top-k tokens and "
                      "their probabilities")

    imp = sub.add_parser("import-elmo", help="A bilm-tf / AllenNLP ELMo (options.json + weights.hdf5, e.g. the "
                         "released models) as a paddle-lm encoder checkpoint.")
    imp.add_argument("--options", required=True, help="bilm-tf options JSON, e.g. "
                     "elmo_2x4096_512_2048cnn_2xhighway_options.json")
    imp.add_argument("--weights", required=True, help="bilm-tf weights HDF5, e.g. "
                     "elmo_2x4096_512_2048cnn_2xhighway_weights.hdf5")
    imp.add_argument("--output", required=True, help="checkpoint prefix to write, e.g. elmo/original")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint at --output")
    exp = sub.add_parser("export-elmo", help="An ELMo checkpoint as bilm-tf's options.json + weights.hdf5 "
                         "(loadable by AllenNLP's Elmo and bilm-tf).")
    exp.add_argument("--init_from_ckpt", required=True, help="ELMo checkpoint prefix, e.g. ./checkpoints/final")
    exp.add_argument("--output", required=True, help="folder to write (options.json, weights.hdf5)")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    exp_hf = sub.add_parser("export-hf", help="A BERT / GPT-2 checkpoint as a Hugging Face folder (config.json, "
                            "model.safetensors, tokenizer) for transformers' AutoModelForMaskedLM / "
                            "AutoModelForCausalLM and AutoTokenizer.")
    exp_hf.add_argument("--init_from_ckpt", required=True, help="BERT or GPT-2 checkpoint prefix, e.g. "
                        "./checkpoints-gpt2/final")
    exp_hf.add_argument("--output", required=True, help="folder to write")
    exp_hf.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    return p


def main(argv=None, prog: str = "python -m paddle_lm") -> None:
    """Parse, check every flag (`check_args`), then run the command holding its output (`locks.claim_output`:
    the existence check and the write are one step, so two commands writing one output cannot both succeed)."""
    from paddle_lm.locks import claim_output

    args = build_parser(prog).parse_args(argv)
    output = check_args(args)
    if output is None:
        run_command(args)
        return
    paths, shown = output
    with claim_output(paths, "--output", args.overwrite, shown):
        run_command(args)


def run_command(args: argparse.Namespace) -> None:
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

        result = generate_text(args.prompt, init_from_ckpt=args.init_from_ckpt,
                               init_from_pretrained=args.init_from_pretrained, device=args.device,
                               **dataclasses.asdict(_generate_config(args)))
        if args.json:
            print(json_line(result))
        else:
            for i, text in enumerate(result["texts"], 1):
                print(f"[{i}] {text}")
            print(f"{result['new_tokens']} new tokens in {result['seconds']:.2f} s "
                  f"({result['new_tokens_per_s']} new tokens/s)")
    elif args.command == "fill-mask":
        from paddle_lm.pretrained import fill_mask

        masks = fill_mask(args.text, args.top_k, init_from_ckpt=args.init_from_ckpt,
                          init_from_pretrained=args.init_from_pretrained, device=args.device)
        if args.json:
            print(json_line({"text": args.text, "masks": masks}))
        else:
            for i, best in enumerate(masks, 1):
                print(f"[MASK] {i}: " + ", ".join(f"{b['token']} {b['probability']:.3f}" for b in best))
    elif args.command == "import-elmo":
        from paddle_lm.formats.elmo_files import describe_import, import_elmo

        side = import_elmo(args.options, args.weights, args.output, args.overwrite)
        print(f"wrote {args.output}: an ELMo encoder ({describe_import(side)}); use it with "
              f"ELMoEmbedder({args.output!r}), run_finetune.py --init_from_ckpt {args.output}, or continue "
              f"pretraining with run_pretrain.py --model elmo --init_from_pretrained {args.output}")
    elif args.command == "export-elmo":
        from paddle_lm.formats.elmo_files import export_elmo

        written, notes = export_elmo(args.init_from_ckpt, args.output, args.overwrite)
        print(f"wrote {', '.join(written)}; AllenNLP: Elmo(options_file, weight_file, num_output_representations)")
        for note in notes:
            print(f"note: {note}")
    elif args.command == "export-hf":
        from paddle_lm.formats.hf import export_hf

        files = export_hf(args.init_from_ckpt, args.output, args.overwrite)
        print(f"wrote {args.output}: {', '.join(files)}; transformers: AutoModelForMaskedLM / AutoModelForCausalLM"
              f".from_pretrained({args.output!r}), AutoTokenizer.from_pretrained({args.output!r})")


def check_args(args: argparse.Namespace) -> tuple[list[str], str | None] | None:
    """Every flag of `args.command` checked before anything is loaded (no Paddle yet): numbers against their
    ranges (paddle_lm.config), outputs that cannot be written. Returns what the command writes (paths, the
    --output shown in messages; `main` claims them, refusing existing ones without --overwrite), or None for a
    command that writes nothing."""
    if args.command == "embed":
        validate_embed(args.batch_size)
    elif args.command == "export":
        from paddle_lm.training.checkpoint import is_checkpoint  # no Paddle import

        if is_checkpoint(args.output):
            example = os.path.join(os.path.dirname(args.output) or ".", "exported", "elmo")
            raise UserError(f"--output {args.output!r} is a training checkpoint prefix; export to another prefix, "
                            f"e.g. {example}")
        return [args.output + suffix for suffix in EXPORT_SUFFIXES], args.output
    elif args.command == "save_pretrained":
        if os.path.lexists(args.output) and not os.path.isdir(args.output):
            raise UserError(f"--output {args.output!r} exists and is not a folder; pick another folder")
    elif args.command in ("generate", "fill-mask"):
        from paddle_lm.pretrained import check_source

        check_source(args.init_from_ckpt, args.init_from_pretrained)
        if args.command == "generate":
            validate_generate(_generate_config(args), args.prompt)
        elif args.top_k < 1:
            raise UserError(f"--top_k must be >= 1 (got {args.top_k})")
    elif args.command == "import-elmo":
        from paddle_lm.formats.elmo_files import check_import_output
        from paddle_lm.training.checkpoint import SUFFIXES  # no Paddle import

        check_import_output(args.output, args.overwrite)
        return [args.output + suffix for suffix in SUFFIXES], args.output
    elif args.command == "export-elmo":
        from paddle_lm.formats.elmo_files import check_export_output

        check_export_output(args.output, args.overwrite)
    elif args.command == "export-hf":
        from paddle_lm.formats.hf import check_hf_output

        check_hf_output(args.output, args.overwrite)
    return None if args.command in ("generate", "fill-mask") else ([args.output], None)


def _model_source(parser: argparse.ArgumentParser, kind: str, example: str) -> None:
    parser.add_argument("--init_from_ckpt", default="", help=f"{kind} checkpoint prefix, e.g. {example}")
    parser.add_argument("--init_from_pretrained", default="", help=f"or a {kind} folder: paddlenlp save_pretrained "
                        f"or Hugging Face (config.json + model.safetensors + tokenizer files)")


def _generate_config(args: argparse.Namespace) -> GenerateConfig:
    return GenerateConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(GenerateConfig)})


def console() -> None:
    """The ``paddle-lm`` command (pyproject's [project.scripts]): the same subcommands as ``python -m paddle_lm``."""
    quiet_startup()
    run_main(lambda: main(prog="paddle-lm"))


if __name__ == "__main__":
    quiet_startup()
    run_main(main)
