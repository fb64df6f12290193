"""Typed configuration: the single source of truth for every flag, preset and checkpoint sidecar.

`args.py` builds the command line from these dataclasses (field name = flag name, the first line of
each field's ``doc`` metadata = help text). Validation lives here too (the ``validate_*`` functions,
each field's ``legal`` range): the scripts run it right after parsing, before Paddle is imported, and the
library runs it again, so both agree on what is legal.
"""

from __future__ import annotations

import codecs
import dataclasses
import math
import os
import re
from dataclasses import dataclass, field, fields

from paddle_lm.errors import UserError

DATA_ROOT = os.environ.get("PADDLE_LM_DATA_DIR", "data")
SAMPLE_ROOT = os.path.join(DATA_ROOT, "sample")
SAMPLE_LM_DIR = os.path.join(SAMPLE_ROOT, "1-billion-word")
SAMPLE_POLARITY_DIR = os.path.join(SAMPLE_ROOT, "sentence-polarity-dataset-v1")


#: Largest seed accepted everywhere: numpy's RandomState and scikit-learn's random_state stop at 2**32 - 1.
MAX_SEED = 2**32 - 1
SEED_RANGE = f"[0, {MAX_SEED}]"


def _f(default, doc: str, **kw):
    """A dataclass field with a help string (used by args.py).

    Keyword metadata: ``choices`` (legal values), ``cli=False`` (no flag), ``legal`` (the legal range, checked by
    `check_fields`: ">= 1", "> 0", "[0, 1)", "(0, 1]", ... or "non-empty" for a string) and ``hint`` (what a
    special value means, added to the error).
    """
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc, **kw})
    return field(default=default, metadata={"doc": doc, **kw})


@dataclass
class DataConfig:
    train_data_path: str = _f(
        os.path.join(SAMPLE_LM_DIR, "training-tokenized-shuffled", "*"),
        "Glob of tokenized training shards (one sentence per line, tokens separated by spaces).",
        legal="non-empty",
    )
    dev_data_path: str = _f(
        os.path.join(SAMPLE_LM_DIR, "heldout-tokenized-shuffled", "*"),
        "Glob of tokenized held-out shards used by run_eval.py.",
        legal="non-empty",
    )
    vocab_file: str = _f(
        os.path.join(SAMPLE_LM_DIR, "vocab-15w.txt"),
        "Vocabulary file, one token per line, most frequent first (bilm-tf or vocab-15w.txt style).",
    )
    cache_dir: str = _f("", "Where encoded token shards are cached (default: a .paddle_lm_cache folder beside the shards).")
    max_characters_per_token: int = _f(50, "Characters per token fed to the char-CNN (ELMo), incl. begin/end-of-word.",
                                   legal=">= 3", hint="room for the begin-of-word mark, a character and the end-of-word mark")
    tokenizer_dir: str = _f("", "Subword tokenizer folder: BERT WordPiece (vocab.txt) or GPT-2 byte-level BPE "
                            "(vocab.json, merges.txt); empty = the --init_from_pretrained folder's, else one trained "
                            "on --train_data_path into {save_dir}/tokenizer on first use.")
    subword_vocab_size: int = _f(8000, "Vocabulary size of the tokenizer trained when --tokenizer_dir is empty "
                                 "(BERT / GPT-2).", legal=">= 1")


@dataclass
class ModelConfig:
    model: str = _f("elmo", "Model family.", choices=("elmo", "lstm", "bert", "gpt2"))
    vocab_size: int = _f(0, "Softmax size; filled in from the vocabulary, never set by hand.", cli=False,
                         legal=">= 0", hint="0 = not filled in yet")
    # --- ELMo token encoder (char-CNN + highway + projection)
    char_embed_dim: int = _f(16, "Character embedding size (ELMo).", legal=">= 1")
    filters: list = _f(
        [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
        "Char-CNN filters as [[width, count], ...] (ELMo).",
        cli=False,
    )
    num_highways: int = _f(2, "Highway layers after the char-CNN (ELMo).", legal=">= 0")
    cnn_activation: str = _f("relu", "Char-CNN activation (ELMo).", choices=("relu", "tanh"))
    projection_dim: int = _f(512, "Token representation and LSTM output size (ELMo).", legal=">= 1")
    # --- LSTM stacks (both models)
    cell_size: int = _f(4096, "LSTM cell size; when larger than the output size the output is projected (ELMo).",
                        legal=">= 1")
    num_layers: int = _f(2, "LSTM layers per direction.", legal=">= 1")
    cell_clip: float = _f(3.0, "Clip LSTM cell values to [-c, c]; 0 disables (ELMo).", legal=">= 0",
                         hint="0 disables clipping")
    proj_clip: float = _f(3.0, "Clip projected LSTM outputs to [-c, c]; 0 disables (ELMo).", legal=">= 0",
                         hint="0 disables clipping")
    residual: bool = _f(True, "Residual connections between LSTM layers (from the second layer on).")
    dropout: float = _f(0.1, "Dropout on LSTM inputs/outputs.", legal="[0, 1)")
    # --- plain LSTM LM
    embedding_dim: int = _f(256, "Word embedding size (LSTM LM).", legal=">= 1")
    hidden_size: int = _f(256, "LSTM hidden size (LSTM LM).", legal=">= 1")
    tie_weights: bool = _f(False, "Tie input embedding and softmax weights (LSTM LM; needs embedding_dim == hidden_size).")
    # --- transformers (BERT / GPT-2 through paddlenlp; hidden_size, num_layers and dropout are shared).
    num_attention_heads: int = _f(4, "Attention heads (BERT / GPT-2).", legal=">= 1")
    intermediate_size: int = _f(1024, "Feed-forward inner size (BERT / GPT-2).", legal=">= 1")
    max_position_embeddings: int = _f(512, "Longest sequence the position embeddings cover (BERT / GPT-2).",
                                  legal=">= 1")


#: Named architectures. ``elmo-small`` is the CPU default used on the sample data.
PRESETS: dict[str, dict] = {
    # bilm-tf's published configuration (the "original" 93.6M-parameter ELMo, 4096 -> 512).
    "elmo-original": dict(
        model="elmo", char_embed_dim=16,
        filters=[[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
        num_highways=2, cnn_activation="relu", projection_dim=512, cell_size=4096, num_layers=2,
        cell_clip=3.0, proj_clip=3.0, residual=True, dropout=0.1,
    ),
    # PaddleNLP's ELMo example: same token encoder, plain 512-unit LSTMs, no projection/clip/residual.
    "elmo-paddlenlp": dict(
        model="elmo", char_embed_dim=16,
        filters=[[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
        num_highways=2, cnn_activation="relu", projection_dim=512, cell_size=512, num_layers=2,
        cell_clip=0.0, proj_clip=0.0, residual=False, dropout=0.1,
    ),
    # A few-minutes-on-CPU ELMo with every bilm-tf feature switched on at small sizes.
    "elmo-small": dict(
        model="elmo", char_embed_dim=16,
        filters=[[1, 32], [2, 32], [3, 64], [4, 128]],
        num_highways=1, cnn_activation="relu", projection_dim=128, cell_size=512, num_layers=2,
        cell_clip=3.0, proj_clip=3.0, residual=True, dropout=0.1,
    ),
    # Tiny sizes for tests.
    "elmo-tiny": dict(
        model="elmo", char_embed_dim=4, filters=[[1, 4], [2, 8]], num_highways=1, cnn_activation="relu",
        projection_dim=16, cell_size=32, num_layers=2, cell_clip=3.0, proj_clip=3.0, residual=True, dropout=0.0,
    ),
    "lstm-small": dict(model="lstm", embedding_dim=256, hidden_size=256, num_layers=2, dropout=0.2, tie_weights=True),
    "lstm-tiny": dict(model="lstm", embedding_dim=16, hidden_size=16, num_layers=1, dropout=0.0, tie_weights=True),
}
# BERT / GPT-2 sizes (model built by paddlenlp.transformers; vocab_size comes from the trained tokenizer).
PRESETS.update({
    "bert-base": dict(model="bert", hidden_size=768, num_layers=12, num_attention_heads=12, intermediate_size=3072,
                      max_position_embeddings=512, dropout=0.1),
    "bert-tiny": dict(model="bert", hidden_size=128, num_layers=2, num_attention_heads=2, intermediate_size=512,
                      max_position_embeddings=128, dropout=0.1),
    "gpt2-small": dict(model="gpt2", hidden_size=768, num_layers=12, num_attention_heads=12, intermediate_size=3072,
                       max_position_embeddings=1024, dropout=0.1),
    "gpt2-tiny": dict(model="gpt2", hidden_size=128, num_layers=2, num_attention_heads=2, intermediate_size=512,
                      max_position_embeddings=128, dropout=0.1),
})
DEFAULT_PRESET = {"elmo": "elmo-small", "lstm": "lstm-small", "bert": "bert-tiny", "gpt2": "gpt2-tiny"}
TRANSFORMERS = ("bert", "gpt2")
#: Training defaults that differ by family: bilm-tf's Adagrad for the LSTMs (TrainConfig's own defaults), AdamW
#: with warmup, linear decay and weight decay (bias and norm weights excluded) for the transformers.
FAMILY_TRAIN_DEFAULTS: dict[str, dict] = {
    m: dict(optimizer="adamw", lr=5e-4, weight_decay=0.01, warmup_steps=-1, lr_decay="linear", max_grad_norm=1.0)
    for m in TRANSFORMERS}


@dataclass
class TrainConfig:
    save_dir: str = _f("./checkpoints", "Where checkpoints and metrics.jsonl are written.", legal="non-empty")
    init_from_ckpt: str = _f("", "Checkpoint prefix to resume from, e.g. ./checkpoints/10000 (no suffix).")
    device: str = _f("cpu", "Device to train on.", choices=("cpu", "gpu"))
    batch_size: int = _f(32, "Rows (sentence streams) per rank per step.", legal=">= 1")
    unroll_steps: int = _f(20, "Tokens per row per step (truncated BPTT length).", legal=">= 1")
    block_size: int = _f(128, "Tokens per training block (GPT-2; at most --max_position_embeddings).", legal=">= 1")
    max_seq_len: int = _f(128, "Tokens per packed BERT sequence, [CLS] and [SEP] included (at most "
                          "--max_position_embeddings).", legal=">= 3", hint="[CLS] token [SEP]")
    mlm_probability: float = _f(0.15, "Share of tokens selected for masked-LM prediction (BERT; 80% [MASK], 10% "
                                "random, 10% unchanged).", legal="(0, 1)")
    whole_word_masking: bool = _f(False, "Mask all WordPiece pieces of a word together (BERT).")
    init_from_pretrained: str = _f("", "Start from a local save_pretrained folder (BERT / GPT-2 weights, config "
                                   "and tokenizer) for continued pretraining; nothing is downloaded.")
    gradient_accumulation_steps: int = _f(1, "Micro-batches whose gradients are summed into one optimizer step.",
                                              legal=">= 1")
    max_steps: int = _f(0, "Stop after this many optimizer steps (0 = run --epochs).", legal=">= 0",
                        hint="0 = run --epochs")
    epochs: int = _f(1, "Passes over the training data when --max_steps is 0.", legal=">= 1")
    n_negative_samples: int = _f(0, "Train with a sampled softmax over this many negative classes per batch "
                                 "(bilm-tf: 8192); 0 = full softmax. Evaluation always uses the full softmax.",
                                 legal=">= 0", hint="0 = full softmax")
    optimizer: str = _f("adagrad", "Optimizer (bilm-tf uses Adagrad).", choices=("adagrad", "adamw"))
    lr: float = _f(0.2, "Peak learning rate.", legal="> 0")
    weight_decay: float = _f(0.0, "Decoupled weight decay (AdamW only).", legal=">= 0")
    max_grad_norm: float = _f(10.0, "Clip gradients to this global norm; 0 disables.", legal=">= 0",
                              hint="0 disables clipping")
    warmup_steps: int = _f(0, "Linear warmup steps; -1 = 10% of the run's steps.", legal=">= -1",
                          hint="-1 = 10% of the run's steps")
    lr_decay: str = _f("none", "Learning-rate decay after warmup.", choices=("none", "linear", "cosine"))
    seed: int = _f(1234, "Random seed (rank r uses seed + r for dropout).", legal=SEED_RANGE)
    save_steps: int = _f(1000, "Save a checkpoint every N steps.", legal=">= 1")
    logging_steps: int = _f(10, "Log a metrics line every N steps.", legal=">= 1")
    keep_last: int = _f(0, "Keep only the newest N step checkpoints (0 keeps all).", legal=">= 0",
                       hint="0 keeps all")
    overwrite: bool = _f(False, "Start afresh even if --save_dir already holds checkpoints (they are replaced).")


@dataclass
class EvalConfig:
    init_from_ckpt: str = _f("", "Checkpoint prefix to evaluate, e.g. ./checkpoints/final.",
                             legal="non-empty")
    device: str = _f("cpu", "Device to evaluate on.", choices=("cpu", "gpu"))
    batch_size: int = _f(32, "Rows per step.", legal=">= 1")
    unroll_steps: int = _f(20, "Tokens per row per step.", legal=">= 1")
    max_steps: int = _f(0, "Evaluate only this many steps (0 = the whole held-out set).", legal=">= 0",
                        hint="0 = the whole held-out set")
    seed: int = _f(0, "Seed of the one fixed masking of the held-out data (BERT).", legal=SEED_RANGE)
    json: bool = _f(False, "Print a machine-readable JSON summary as the last line.")


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def model_config_from_dict(d: dict) -> ModelConfig:
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    return ModelConfig(**{k: v for k, v in d.items() if k in known})


def apply_preset(model: str, preset: str | None) -> ModelConfig:
    """ModelConfig for `model` with the named preset applied (the model's default preset if None)."""
    name = preset or DEFAULT_PRESET[model]
    if name not in PRESETS:
        raise UserError(f"--preset {name!r} is unknown; choose one of: {', '.join(sorted(PRESETS))}")
    values = PRESETS[name]
    if values["model"] != model:
        raise UserError(f"--preset {name!r} is a {values['model']} preset but --model is {model!r}")
    return ModelConfig(**values)


# ---------------------------------------------------------------------------------------------------------
# Validation: every flag is checked here, right after parsing (before Paddle loads) and again by the library.

_BOUND = re.compile(r"^(>=|>)\s*(-?[\d.e+]+)$")
_INTERVAL = re.compile(r"^([\[(])\s*(-?[\d.e+]+),\s*(-?[\d.e+]+)\s*([\])])$")


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def within(value, legal: str) -> bool:
    """Is number `value` inside `legal` (">= 1", "> 0", "[0, 1)", "(0, 1]", "[0, 4294967295]", ...)?"""
    m = _BOUND.match(legal)
    if m:
        return value >= float(m[2]) if m[1] == ">=" else value > float(m[2])
    m = _INTERVAL.match(legal)
    if not m:
        raise ValueError(f"unknown range {legal!r}")
    low, high = float(m[2]), float(m[3])
    above = value >= low if m[1] == "[" else value > low
    below = value <= high if m[4] == "]" else value < high
    return above and below


def check_value(flag: str, value, legal: str, hint: str = "") -> None:
    """UserError naming `flag` and its legal range when `value` is not a finite number inside `legal`
    (or, for ``legal="non-empty"``, an empty string)."""
    note = f" ({hint})" if hint else ""
    if legal == "non-empty":
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{flag} must not be empty")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{flag} {_show(value)} must be a number {_describe(legal)}{note}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{flag} {_show(value)} must be a finite number {_describe(legal)}{note}")
    if not within(value, legal):
        raise UserError(f"{flag} {_show(value)} must be {_describe(legal)}{note}")


def _describe(legal: str) -> str:
    return legal if legal[0] in "<>" else f"in {legal}"


def check_fields(cfg) -> None:
    """Every field of dataclass instance `cfg` against its ``choices`` and ``legal`` metadata."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise UserError(f"--{f.name} {_show(value)}: choose one of {', '.join(choices)}")
        if "legal" in f.metadata:
            check_value(f"--{f.name}", value, f.metadata["legal"], f.metadata.get("hint", ""))


#: Smallest --subword_vocab_size a trained tokenizer can have (see paddle_lm.data.subword): more than BERT's 5
#: special tokens, more than GPT-2's 256 byte tokens plus <|endoftext|>.
MIN_SUBWORD_VOCAB = {"bert": 6, "gpt2": 258}
#: Characters of a token the char-ids always hold: begin-of-word, <S>/</S>'s marker or >= 1 byte, end-of-word
#: (paddle_lm.data.chars.token_char_ids).
MIN_CHARS = 3


def min_chars_per_token(filters: list) -> int:
    """Smallest --max_characters_per_token the char-CNN of `filters` can run on: the widest filter must fit
    into a token's characters (the convolutions are unpadded: ``C - width + 1 >= 1``), and the char ids need
    ``MIN_CHARS`` slots."""
    return max([MIN_CHARS, *(int(width) for width, _ in filters)])


def validate_data(cfg: DataConfig, model: ModelConfig | None = None) -> None:
    """Ranges of the data flags, and (given the model) what the model needs of them."""
    check_fields(cfg)
    if model is None:
        return
    if model.model == "elmo":
        need = min_chars_per_token(model.filters)
        if cfg.max_characters_per_token < need:
            raise UserError(f"--max_characters_per_token {cfg.max_characters_per_token} is narrower than the "
                            f"char-CNN's widest filter ({need} characters, begin/end-of-word marks included); "
                            f"pass at least {need}")
    if model.model in MIN_SUBWORD_VOCAB and cfg.subword_vocab_size < MIN_SUBWORD_VOCAB[model.model]:
        what = "its 5 special tokens" if model.model == "bert" else "256 byte tokens + <|endoftext|>"
        raise UserError(f"--subword_vocab_size must be >= {MIN_SUBWORD_VOCAB[model.model]} for --model "
                        f"{model.model} ({what}; got {cfg.subword_vocab_size})")


def validate_model(cfg: ModelConfig) -> None:
    """One UserError naming the flag for any ModelConfig value the model cannot be built with."""
    check_fields(cfg)
    if cfg.model == "elmo":
        ok = isinstance(cfg.filters, list) and cfg.filters and all(
            isinstance(wc, (list, tuple)) and len(wc) == 2 and all(isinstance(v, int) and v >= 1 for v in wc)
            for wc in cfg.filters)
        if not ok:
            raise UserError(f"filters must be a non-empty list of [width, count] pairs of positive integers "
                            f"(got {cfg.filters!r})")
        if cfg.cell_size < cfg.projection_dim:
            raise UserError(f"--cell_size {cfg.cell_size} must be at least --projection_dim {cfg.projection_dim}")
    if cfg.model == "lstm" and cfg.tie_weights and cfg.embedding_dim != cfg.hidden_size:
        raise UserError(f"--tie_weights needs --embedding_dim equal to --hidden_size (got {cfg.embedding_dim} and "
                        f"{cfg.hidden_size}); pass --no-tie_weights or equal sizes")
    if cfg.model in TRANSFORMERS and cfg.hidden_size % cfg.num_attention_heads:
        raise UserError(f"--hidden_size {cfg.hidden_size} must be divisible by --num_attention_heads "
                        f"{cfg.num_attention_heads}")


def validate_train(cfg: TrainConfig) -> None:
    """One UserError naming the flag for any out-of-range TrainConfig value."""
    check_fields(cfg)


def seq_len_flag(model: str, cfg: TrainConfig) -> tuple[str, int]:
    """(flag, value) of the sequence length a transformer trains on (as paddle_lm.training.sources)."""
    return ("--max_seq_len", cfg.max_seq_len) if model == "bert" else ("--block_size", cfg.block_size)


def validate_pretrain(data: DataConfig, model: ModelConfig, train: TrainConfig) -> None:
    """Everything run_pretrain.py can check before any work: each config, and the flags against each other.

    `model` is the architecture the run will have (the checkpoint's when resuming). With
    --init_from_pretrained the architecture comes from that folder, so the sequence length is checked later.
    """
    validate_train(train)
    validate_model(model)
    validate_data(data, model)
    if model.model in TRANSFORMERS:
        if train.n_negative_samples:
            raise UserError(f"--n_negative_samples is not supported with --model {model.model} (it trains with "
                            f"the full softmax); use 0")
        flag, seq_len = seq_len_flag(model.model, train)
        if not train.init_from_pretrained and seq_len > model.max_position_embeddings:
            raise UserError(f"{flag} {seq_len} exceeds the model's {model.max_position_embeddings} positions "
                            f"(--max_position_embeddings)")
    elif train.init_from_pretrained:
        raise UserError(f"--init_from_pretrained is for --model bert or gpt2, not {model.model}")


def validate_eval(cfg: EvalConfig, data: DataConfig | None = None) -> None:
    """One UserError naming the flag for any out-of-range run_eval.py value."""
    if not cfg.init_from_ckpt:
        raise UserError("--init_from_ckpt is required, e.g. --init_from_ckpt=./checkpoints/final")
    check_fields(cfg)
    if data is not None:
        validate_data(data)


def resume_conflicts(prefix: str, saved: dict, given: dict, preset: str | None = None) -> ModelConfig:
    """The ModelConfig of checkpoint `prefix` (its sidecar's ``model_config`` dict `saved`), after checking that
    no architecture flag the user gave contradicts it.

    `given` maps ModelConfig field -> value for the flags actually on the command line (--model included);
    `preset` is --preset when given. Its values count where no flag overrides them. A contradiction is a
    UserError naming each flag, e.g. ``--cell_size 64 contradicts checkpoint X (trained with 32); drop the flag
    to resume`` (a resumed run always keeps the checkpoint's architecture).
    """
    restored = model_config_from_dict(saved)  # a key an older sidecar lacks has its default, as in the trainer
    had = dataclasses.asdict(restored)
    conflicts: list[tuple[str, str]] = []  # (flag as given, what the checkpoint has)
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"--preset {preset!r} is unknown; choose one of: {', '.join(sorted(PRESETS))}")
        differ = [(k, v) for k, v in PRESETS[preset].items() if k not in given and had.get(k) != v]
        if differ:
            shown = "; ".join(f"{k} {_show(had.get(k))}, not {_show(v)}" for k, v in differ[:3])
            conflicts.append((f"--preset {preset}", shown + ("; ..." if len(differ) > 3 else "")))
    for name, value in given.items():
        if had.get(name) != value:
            if isinstance(value, bool):  # a switch: --residual / --no-residual
                conflicts.append((f"--{'' if value else 'no-'}{name}", f"--{'' if had.get(name) else 'no-'}{name}"))
            else:
                conflicts.append((f"--{name} {_show(value)}", _show(had.get(name))))
    if len(conflicts) == 1:
        flag, was = conflicts[0]
        raise UserError(f"{flag} contradicts checkpoint {prefix} (trained with {was}); drop the flag to resume")
    if conflicts:
        raise UserError(", ".join(f"{flag} (trained with {was})" for flag, was in conflicts)
                        + f" contradict checkpoint {prefix}; drop these flags to resume")
    return restored


# ---------------------------------------------------------------------------------------------------------
# Downstream: the sentence-polarity classifier (run_finetune.py)

SAMPLE_GLOVE_FILE = os.path.join(SAMPLE_ROOT, "glove.6B.50d", "glove.6B.50d.w2v.bin")
#: The encoders `--compare` runs when given no specs: ELMo, word2vec trained on ELMo's corpus, GloVe.
DEFAULT_COMPARE = ("elmo", f"word2vec:train_on={os.path.join(SAMPLE_LM_DIR, 'training-tokenized-shuffled', '*')}",
                   f"word2vec:file={SAMPLE_GLOVE_FILE}")


@dataclass
class FinetuneConfig:
    # --- data
    data_dir: str = _f(SAMPLE_POLARITY_DIR, "Folder with rt-polarity.pos and rt-polarity.neg, one tokenized "
                       "sentence per line.", legal="non-empty")
    encoding: str = _f("auto", "Text encoding of the polarity files; auto = UTF-8, falling back to Windows-1252 "
                       "(the original Cornell files are Latin-1) with a note.")
    clean: bool = _f(False, "Clean the text first: NFKC-normalize, unescape HTML entities, lowercase and drop "
                     "punctuation-only tokens (off: the data is already tokenized, and ELMo was pretrained on "
                     "cased text).")
    # --- encoder
    encoder: str = _f("elmo", "Token encoder under the bag-of-words classifier.", choices=("elmo", "word2vec"))
    init_from_ckpt: str = _f("./checkpoints/final", "ELMo checkpoint prefix (--encoder elmo), e.g. "
                             "./checkpoints/10000.")
    vocab_file: str = _f("", "Optional: check that this vocabulary is the one the ELMo checkpoint was trained "
                         "with.")
    elmo_layers: str = _f("mix", "ELMo layers fed to the classifier: a learned scalar mix of all three, the "
                          "top one, or all three concatenated.", choices=("mix", "top", "concat"))
    trainable: bool = _f(False, "Fine-tune ELMo's weights with the classifier (slow on CPU); frozen by default, "
                         "when the layers are computed once for all sentences.")
    elmo_batch_size: int = _f(64, "Sentences per ELMo forward pass when computing frozen features.",
                                 legal=">= 1")
    pretrained_word2vec_file: str = _f("", "Word vectors for --encoder word2vec: word2vec binary or text, or "
                                       "GloVe text without the header line (the format is detected).")
    train_word2vec_on: str = _f("", "Instead of a vectors file: train word2vec (skip-gram) on this glob of "
                                "tokenized shards, e.g. the corpus ELMo was pretrained on.")
    word2vec_dim: int = _f(100, "Size of the word2vec vectors trained with --train_word2vec_on.",
                              legal=">= 1")
    word2vec_epochs: int = _f(10, "Passes of word2vec training over the corpus.", legal=">= 1")
    word2vec_window: int = _f(5, "word2vec context window (words each side).", legal=">= 1")
    word2vec_min_count: int = _f(3, "word2vec keeps words seen at least this often (the sample vocab uses 3).",
                                    legal=">= 1")
    word2vec_cache_dir: str = _f("", "Where trained word2vec vectors are cached (default: the "
                                 ".paddle_lm_cache folder beside the corpus shards).")
    # --- classifier and training
    hidden_size: int = _f(128, "Hidden units of the classifier's MLP.", legal=">= 1")
    dropout: float = _f(0.3, "Dropout before each layer of the MLP.", legal="[0, 1)")
    normalize: bool = _f(True, "Standardize each feature of the averaged sentence vector (BatchNorm) before the "
                         "MLP; averaged ELMo states vary little around a large offset and stall the MLP without.")
    lr: float = _f(1e-3, "Adam learning rate.", legal="> 0")
    epochs: int = _f(30, "Most passes over each training fold (early stopping usually ends sooner).",
                    legal=">= 1")
    batch_size: int = _f(32, "Sentences per optimizer step.", legal=">= 1")
    patience: int = _f(3, "Stop after this many epochs without a lower dev loss; the best epoch's weights are "
                       "restored.", legal=">= 1")
    dev_fraction: float = _f(0.1, "Share of each training fold held out (stratified) as the early-stopping dev "
                             "set.", legal="(0, 1)")
    # --- evaluation
    folds: int = _f(0, "Stratified K-fold cross-validation with K folds (K >= 2); 0 = one held-out split of "
                    "--test_fraction.")
    test_fraction: float = _f(0.1, "Test share of the single stratified split used when --folds is 0.",
                             legal="(0, 1)")
    seed: int = _f(1234, "Seed of the splits, the classifier initialization and shuffling.")
    compare: list = _f([], "Encoder specs to compare on identical folds (see run_finetune.py -h).", cli=False)
    device: str = _f("cpu", "Device to run on.", choices=("cpu", "gpu"))
    json: bool = _f(False, "Print a machine-readable JSON summary as the last line.")


def validate_finetune(cfg: FinetuneConfig) -> None:
    """One UserError naming the flag for any nonsensical FinetuneConfig value (the flags, and each --compare
    spec, which sets fields directly)."""
    if isinstance(cfg.folds, bool) or not isinstance(cfg.folds, int) or cfg.folds == 1 or cfg.folds < 0:
        raise UserError(f"--folds {cfg.folds}: cross-validation needs at least 2 folds (0 = one held-out split)")
    check_fields(cfg)
    if cfg.encoding != "auto":
        try:
            codecs.lookup(cfg.encoding)
        except LookupError:
            raise UserError(f"--encoding {cfg.encoding!r} is not a known text encoding; use auto, utf-8, cp1252, "
                            f"latin-1, ...") from None
    top = MAX_SEED - 1000 * (max(cfg.folds, 1) - 1)  # fold k uses seed + 1000 * k
    check_value("--seed", cfg.seed, f"[0, {top}]", "fold k uses seed + 1000 * k" if cfg.folds > 1 else "")
    if cfg.encoder == "elmo" and not cfg.compare:
        check_value("--init_from_ckpt", cfg.init_from_ckpt, "non-empty")
    one_source = bool(cfg.pretrained_word2vec_file) != bool(cfg.train_word2vec_on)
    if cfg.encoder == "word2vec" and not cfg.compare and not one_source:
        raise UserError("--encoder word2vec needs exactly one of --pretrained_word2vec_file PATH or "
                        "--train_word2vec_on GLOB")


# ---------------------------------------------------------------------------------------------------------
# `python -m paddle_lm` commands and `python -m paddle_lm.data.prep`: their numeric flags, checked in the same
# way before anything is loaded.


@dataclass
class GenerateConfig:
    """Sampling settings of ``python -m paddle_lm generate`` (paddle_lm.generation.generate's keywords)."""
    max_length: int = _f(60, "Tokens per sequence, prompt included.", legal=">= 2",
                         hint="it counts the prompt, at least one token, plus the new tokens")
    temperature: float = _f(1.0, "Divide the logits by this (> 0; ignored with --greedy).")
    top_k: int = _f(0, "Sample among the k likeliest tokens; 0 = off.", legal=">= 0", hint="0 disables it")
    top_p: float = _f(1.0, "Nucleus sampling: the smallest set of tokens holding this probability; 1.0 = off.",
                      legal="(0, 1]", hint="1 disables it")
    repetition_penalty: float = _f(1.0, "CTRL-style penalty (> 1) on tokens already in the sequence; 1.0 = off.",
                                   legal="> 0", hint="1 disables it, > 1 penalises repeats")
    num_return_sequences: int = _f(1, "Continuations to draw.", legal=">= 1")
    greedy: bool = _f(False, "Take the likeliest token at every step.")
    seed: int = _f(0, "Sampling seed: the same seed gives the same text.", legal=SEED_RANGE)


def validate_generate(cfg: GenerateConfig, prompt: str = "x") -> None:
    """What ``generate`` can check before the model loads (the prompt's length in tokens is checked later)."""
    if not prompt.strip():
        raise UserError("--prompt is empty: give at least one token to continue from")
    check_fields(cfg)
    if not cfg.greedy:
        check_value("--temperature", cfg.temperature, "> 0", "use --greedy for argmax decoding")
    if cfg.greedy and cfg.num_return_sequences > 1:
        raise UserError(f"--num_return_sequences {cfg.num_return_sequences} with --greedy would return identical "
                        f"sequences; drop one of them")


def validate_embed(batch_size: int) -> None:
    check_value("--batch_size", batch_size, ">= 1")


def validate_prep(heldout_fraction: float, num_shards: int, num_heldout_shards: int, seed: int, min_count: int,
                  max_vocab_size: int, workers: int) -> None:
    """The numeric flags of ``python -m paddle_lm.data.prep``."""
    check_value("--heldout_fraction", heldout_fraction, "[0, 1)", "0 = no held-out split")
    check_value("--num_shards", num_shards, ">= 1")
    check_value("--num_heldout_shards", num_heldout_shards, ">= 1")
    check_value("--seed", seed, SEED_RANGE)
    check_value("--min_count", min_count, ">= 1")
    check_value("--max_vocab_size", max_vocab_size, ">= 0", "0 keeps all words")
    check_value("--workers", workers, ">= 0", "0 = from the CPU count")
