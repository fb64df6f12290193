"""Command-line parsing built from paddle_lm.config's dataclasses (flag = field name, help = field doc).

The flag names of PaddleNLP's ELMo example keep working: ``--save_freq`` and ``--log_freq`` are aliases of
``--save_steps`` and ``--logging_steps``.

Every ``parse_*`` validates what it parsed (paddle_lm.config's ``validate_*``) before returning, so a bad flag is
one ``error: ...`` line before Paddle is even imported. Nothing here imports Paddle.
"""

from __future__ import annotations

import argparse
import dataclasses

from paddle_lm.cli import ArgumentParser
from paddle_lm.config import (
    FAMILY_TRAIN_DEFAULTS,
    PRESETS,
    DataConfig,
    EvalConfig,
    ModelConfig,
    TrainConfig,
    apply_preset,
    check_applies,
    check_fields,
    resume_conflicts,
    resume_data,
    validate_data,
    validate_eval,
    validate_finetune,
    validate_pretrain,
    validate_train,
)

ALIASES = {"save_steps": ["--save_freq"], "logging_steps": ["--log_freq"]}


def add_config_args(parser: argparse.ArgumentParser, cls, *, none_defaults: bool = False, skip=(),
                    show_defaults: bool | None = None, other_defaults: tuple[str, dict] | None = None) -> None:
    """Add one flag per CLI-visible field of dataclass `cls`.

    With `none_defaults` an absent flag parses as None (so a preset or family default can fill it in);
    `other_defaults` = (label, values) adds "label: value" to the help of the fields it lists.
    """
    show_defaults = not none_defaults if show_defaults is None else show_defaults
    group = parser.add_argument_group(cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli") is False:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs = {"help": f.metadata.get("doc", "").replace("%", "%%"), "dest": f.name}  # argparse formats help with %
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = type(default)
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        kwargs["default"] = None if none_defaults else default
        if show_defaults and not isinstance(default, bool):
            other = ""
            if other_defaults and f.name in other_defaults[1]:
                other = f"; {other_defaults[0]}: {other_defaults[1][f.name]}"
            kwargs["help"] += f" (default: {default}{other})"
        group.add_argument(f"--{f.name}", *ALIASES.get(f.name, []), **kwargs)


def _fill(cls, ns: argparse.Namespace, base=None):
    """An instance of `cls` from parsed flags; a None flag keeps `base`'s (or the class default) value."""
    obj = base if base is not None else cls()
    given = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)
             if getattr(ns, f.name, None) is not None}
    return dataclasses.replace(obj, **given)


def _given(cls, ns: argparse.Namespace) -> dict:
    """The fields of `cls` whose flags are on the command line (parsed with ``none_defaults``)."""
    return {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if getattr(ns, f.name, None) is not None}


def pretrain_parser() -> ArgumentParser:
    """run_pretrain.py's argument parser (parsing only; `parse_pretrain` validates)."""
    p = ArgumentParser(description="Pretrain an ELMo biLM, an LSTM LM, a BERT masked LM or GPT-2 (run "
                                "under `python -m paddle.distributed.launch` for several ranks).")
    p.add_argument("--preset", default=None, help="Named architecture (elmo-small, elmo-original, elmo-paddlenlp, "
                   "lstm-small, ...); the model's small CPU preset by default. Model flags override it.")
    add_config_args(p, DataConfig, none_defaults=True, show_defaults=True)
    add_config_args(p, ModelConfig, none_defaults=True)
    add_config_args(p, TrainConfig, none_defaults=True, show_defaults=True,
                    other_defaults=("BERT/GPT-2", FAMILY_TRAIN_DEFAULTS["gpt2"]))
    return p


def parse_pretrain(argv=None) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """(data, model, train) configs of run_pretrain.py, validated.

    Resuming (--init_from_ckpt), the model config is the checkpoint's: an architecture flag or --preset the user
    gave that contradicts it is an error, and the family (hence the training defaults) is the checkpoint's.
    """
    ns = pretrain_parser().parse_args(argv)
    family = ns.model or PRESETS.get(ns.preset or "", {}).get("model", "elmo")  # --preset gpt2-tiny implies gpt2
    model = _fill(ModelConfig, ns, apply_preset(family, ns.preset))
    data = _fill(DataConfig, ns)
    # Each flag's own range first (the defaults are legal, so only a given flag can fail), then the checkpoint
    # (a resumed run keeps its architecture), then the flags against each other and the architecture.
    validate_train(_fill(TrainConfig, ns))
    check_fields(model)
    validate_data(data)
    from paddle_lm.training.checkpoint import read_sidecar, resolve_resume  # no Paddle import

    prefix = resolve_resume(ns.init_from_ckpt or "", ns.save_dir or TrainConfig.save_dir)
    if prefix:
        side = read_sidecar(prefix)
        model = resume_conflicts(prefix, side["model_config"], _given(ModelConfig, ns), ns.preset)
        data = resume_data(prefix, side.get("data", {}), data, _given(DataConfig, ns))
    elif ns.init_from_pretrained and family == "elmo":  # the architecture is the encoder's; dropout may change
        from paddle_lm.formats.elmo_files import elmo_start  # no Paddle import

        start, side = elmo_start(ns.init_from_pretrained)
        given = {k: v for k, v in _given(ModelConfig, ns).items() if k != "dropout"}
        model = resume_conflicts(start, side["model_config"], given, ns.preset, to="start from it")
        if ns.dropout is not None:
            model = dataclasses.replace(model, dropout=ns.dropout)
        data = resume_data(start, side["data"], data, _given(DataConfig, ns), to="start from it")
    train = _fill(TrainConfig, ns, TrainConfig(**FAMILY_TRAIN_DEFAULTS.get(model.model, {})))
    whose = f"checkpoint {prefix} (--model {model.model})" if prefix else f"--model {model.model}"
    for cls in (DataConfig, ModelConfig, TrainConfig):  # a flag the model does not use is an error, not a no-op
        check_applies(cls, _given(cls, ns), model.model, whose)
    validate_pretrain(data, model, train)
    return data, model, train


def parse_eval(argv=None) -> tuple[EvalConfig, DataConfig, str | None]:
    """(eval config, data config, explicit --vocab_file or None = the checkpoint's own copy), validated."""
    ns = eval_parser().parse_args(argv)
    cfg, data = _fill(EvalConfig, ns), _fill(DataConfig, ns)
    validate_eval(cfg, data)
    from paddle_lm.training.checkpoint import read_sidecar, resolve_prefix  # no Paddle import

    prefix = resolve_prefix(cfg.init_from_ckpt)
    family = read_sidecar(prefix).get("model_config", {}).get("model", "elmo")
    for cls in (DataConfig, EvalConfig):  # a flag the checkpoint's model does not use is an error
        check_applies(cls, _given(cls, ns), family, f"checkpoint {prefix} (--model {family})")
    return cfg, data, ns.vocab_file


def eval_parser() -> ArgumentParser:
    """run_eval.py's argument parser (parsing only; `parse_eval` validates)."""
    p = ArgumentParser(description="Perplexity of a checkpoint on held-out data.")
    add_config_args(p, DataConfig, none_defaults=True, show_defaults=True,
                    skip=("train_data_path", "vocab_file", "max_characters_per_token", "tokenizer_dir",
                          "subword_vocab_size"))
    p.add_argument("--vocab_file", default=None, help="Vocabulary (BERT / GPT-2: tokenizer folder) to check against the "
                   "checkpoint's (default: the copy saved with the checkpoint).")
    add_config_args(p, EvalConfig, none_defaults=True, show_defaults=True)
    return p


COMPARE_HELP = """Compare encoders on identical folds and print one table. Each SPEC is ENCODER[:key=value,...]
with ENCODER elmo or word2vec (alias w2v); keys: for elmo ckpt=PREFIX, layers=mix|top|concat, trainable=1; for
word2vec file=PATH or train_on=GLOB, dim=N, epochs=N; any encoder: classifier=mlp|linear, name=LABEL, or any
classifier flag (lr=..., hidden_size=...). Unset keys come from the other flags. With no SPEC: elmo, word2vec
trained on the sample LM corpus, and the sample GloVe vectors."""


def parse_finetune(argv=None):
    """FinetuneConfig from the command line of run_finetune.py (``--compare`` takes the encoder specs), validated."""
    from paddle_lm.config import DEFAULT_COMPARE, FinetuneConfig

    ns = finetune_parser().parse_args(argv)
    cfg = _fill(FinetuneConfig, ns)
    if ns.compare is not None:
        cfg.compare = list(ns.compare) or list(DEFAULT_COMPARE)
    validate_finetune(cfg)  # each --compare spec is checked when paddle_lm.downstream.finetune parses it
    return cfg


def finetune_parser() -> ArgumentParser:
    """run_finetune.py's argument parser (parsing only; `parse_finetune` validates)."""
    from paddle_lm.config import FinetuneConfig

    p = ArgumentParser(description="Sentence-polarity classifier (bag of words -> MLP, or a linear head) "
                                "on ELMo or word2vec token vectors, with K-fold CV and a paired comparison.")
    add_config_args(p, FinetuneConfig)
    p.add_argument("--compare", nargs="*", default=None, metavar="SPEC", help=COMPARE_HELP)
    return p
