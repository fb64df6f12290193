"""Pretraining and evaluation configs (`run_pretrain.py`, `run_eval.py`), the named presets, and their
validation: each flag's range, the flags against each other, and a resumed checkpoint's architecture."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from paddle_lm.config.ranges import SEED_RANGE, _f, check_fields
from paddle_lm.errors import UserError

#: --device values; auto picks the GPU when Paddle is built with CUDA and sees one (paddle_lm.device).
DEVICES = ("auto", "cpu", "gpu")
DATA_ROOT = os.environ.get("PADDLE_LM_DATA_DIR", "data")
SAMPLE_ROOT = os.path.join(DATA_ROOT, "sample")
SAMPLE_LM_DIR = os.path.join(SAMPLE_ROOT, "1-billion-word")
SAMPLE_POLARITY_DIR = os.path.join(SAMPLE_ROOT, "sentence-polarity-dataset-v1")
#: Model families by kind; a field's ``families`` metadata names those that use it (`check_applies`).
TRANSFORMERS = ("bert", "gpt2")
RNNS = ("elmo", "lstm")
ELMO = ("elmo",)


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
        "Vocabulary file, one token per line, most frequent first (bilm-tf or vocab-15w.txt style; ELMo, LSTM LM).",
        families=RNNS,
        habit=True,
    )
    cache_dir: str = _f("", "Where encoded token shards are cached (default: a .paddle_lm_cache folder beside the shards).")
    max_characters_per_token: int = _f(50, "Characters per token fed to the char-CNN (ELMo), incl. begin/end-of-word.",
                                   legal=">= 3", hint="room for the begin-of-word mark, a character and the end-of-word mark", families=ELMO)
    tokenizer_dir: str = _f("", "Subword tokenizer folder: BERT WordPiece (vocab.txt) or GPT-2 byte-level BPE "
                            "(vocab.json, merges.txt); empty = the --init_from_pretrained folder's, else one trained "
                            "on --train_data_path into {save_dir}/tokenizer on first use.", families=TRANSFORMERS)
    subword_vocab_size: int = _f(8000, "Vocabulary size of the tokenizer trained when --tokenizer_dir is empty "
                                 "(BERT / GPT-2).", legal=">= 1", families=TRANSFORMERS)


@dataclass
class ModelConfig:
    model: str = _f("elmo", "Model family.", choices=("elmo", "lstm", "bert", "gpt2"))
    vocab_size: int = _f(0, "Softmax size; filled in from the vocabulary, never set by hand.", cli=False,
                         legal=">= 0", hint="0 = not filled in yet")
    # --- ELMo token encoder (char-CNN + highway + projection)
    char_embed_dim: int = _f(16, "Character embedding size (ELMo).", legal=">= 1", families=ELMO)
    filters: list = _f(
        [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
        "Char-CNN filters as [[width, count], ...] (ELMo).",
        cli=False,
    )
    num_highways: int = _f(2, "Highway layers after the char-CNN (ELMo).", legal=">= 0", families=ELMO)
    cnn_activation: str = _f("relu", "Char-CNN activation (ELMo).", choices=("relu", "tanh"), families=ELMO)
    projection_dim: int = _f(512, "Token representation and LSTM output size (ELMo).", legal=">= 1", families=ELMO)
    # --- LSTM stacks (both models)
    cell_size: int = _f(4096, "LSTM cell size; when larger than the output size the output is projected (ELMo).",
                        legal=">= 1", families=ELMO)
    num_layers: int = _f(2, "LSTM layers per direction.", legal=">= 1")
    cell_clip: float = _f(3.0, "Clip LSTM cell values to [-c, c]; 0 disables (ELMo).", legal=">= 0",
                         hint="0 disables clipping", families=ELMO)
    proj_clip: float = _f(3.0, "Clip projected LSTM outputs to [-c, c]; 0 disables (ELMo).", legal=">= 0",
                         hint="0 disables clipping", families=ELMO)
    residual: bool = _f(True, "Residual connections between LSTM layers (from the second layer on).", families=ELMO)
    dropout: float = _f(0.1, "Dropout on LSTM inputs/outputs.", legal="[0, 1)")
    # --- plain LSTM LM
    embedding_dim: int = _f(256, "Word embedding size (LSTM LM).", legal=">= 1", families=("lstm",))
    hidden_size: int = _f(256, "Hidden size (LSTM LM, BERT / GPT-2).", legal=">= 1", families=("lstm", *TRANSFORMERS))
    tie_weights: bool = _f(False, "Tie input embedding and softmax weights (LSTM LM; needs embedding_dim == hidden_size).", families=("lstm",))
    # --- transformers (BERT / GPT-2 through paddlenlp; hidden_size, num_layers and dropout are shared).
    num_attention_heads: int = _f(4, "Attention heads (BERT / GPT-2).", legal=">= 1", families=TRANSFORMERS)
    intermediate_size: int = _f(1024, "Feed-forward inner size (BERT / GPT-2).", legal=">= 1", families=TRANSFORMERS)
    max_position_embeddings: int = _f(512, "Longest sequence the position embeddings cover (BERT / GPT-2).",
                                  legal=">= 1", families=TRANSFORMERS)
    # Set from a pretrained folder's config.json (paddle_lm.formats.hf), never on the command line.
    hidden_act: str = _f("", "Feed-forward activation (BERT / GPT-2): gelu (exact), gelu_new (tanh approximation), "
                         "relu, silu, tanh; empty = the family's default (BERT gelu, GPT-2 gelu_new).", cli=False,
                         choices=("", "gelu", "gelu_new", "relu", "silu", "tanh"), families=TRANSFORMERS)
    layer_norm_eps: float = _f(0.0, "Layer-norm epsilon (BERT / GPT-2); 0 = the family's default (BERT 1e-12, "
                               "GPT-2 1e-5).", cli=False, legal="[0, 0.001]",
                               hint="0 = the family's default; Paddle's LayerNorm takes at most 1e-3", families=TRANSFORMERS)
    type_vocab_size: int = _f(2, "Token-type (segment) embeddings (BERT).", cli=False, legal=">= 1", families=("bert",))


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
#: Training defaults that differ by family: bilm-tf's Adagrad for the LSTMs (TrainConfig's own defaults), AdamW
#: with warmup, linear decay and weight decay (bias and norm weights excluded) for the transformers.
FAMILY_TRAIN_DEFAULTS: dict[str, dict] = {
    m: dict(optimizer="adamw", lr=5e-4, weight_decay=0.01, warmup_steps=-1, lr_decay="linear", max_grad_norm=1.0)
    for m in TRANSFORMERS}


@dataclass
class TrainConfig:
    save_dir: str = _f("./checkpoints", "Where checkpoints and metrics.jsonl are written.", legal="non-empty")
    init_from_ckpt: str = _f("", "Checkpoint prefix to resume from, e.g. ./checkpoints/10000 (no suffix); latest = "
                             "the newest checkpoint in --save_dir; auto = that, or start afresh when there is "
                             "none (restart a preempted job with the same command line).")
    device: str = _f("auto", "Device to train on; auto = the GPU when Paddle has CUDA and one is visible, else "
                     "the CPU.", choices=DEVICES)
    batch_size: int = _f(32, "Rows (sentence streams) per rank per step.", legal=">= 1")
    unroll_steps: int = _f(20, "Tokens per row per step (truncated BPTT length).", legal=">= 1", families=RNNS)
    block_size: int = _f(128, "Tokens per training block (GPT-2; at most --max_position_embeddings).", legal=">= 1", families=("gpt2",))
    max_seq_len: int = _f(128, "Tokens per packed BERT sequence, [CLS] and [SEP] included (at most "
                          "--max_position_embeddings).", legal=">= 3", hint="[CLS] token [SEP]", families=("bert",))
    mlm_probability: float = _f(0.15, "Share of tokens selected for masked-LM prediction (BERT; 80% [MASK], 10% "
                                "random, 10% unchanged).", legal="(0, 1)", families=("bert",))
    whole_word_masking: bool = _f(False, "Mask all WordPiece pieces of a word together (BERT).", families=("bert",))
    init_from_pretrained: str = _f("", "Start from a local save_pretrained folder (BERT / GPT-2 weights, config "
                                   "and tokenizer) for continued pretraining; nothing is downloaded.", families=("elmo", *TRANSFORMERS))
    gradient_accumulation_steps: int = _f(1, "Micro-batches whose gradients are summed into one optimizer step.",
                                              legal=">= 1")
    max_steps: int = _f(0, "Stop after this many optimizer steps (0 = run --epochs).", legal=">= 0",
                        hint="0 = run --epochs")
    epochs: int = _f(1, "Passes over the training data when --max_steps is 0.", legal=">= 1")
    n_negative_samples: int = _f(0, "Train with a sampled softmax over this many negative classes per batch "
                                 "(bilm-tf: 8192); 0 = full softmax. Evaluation always uses the full softmax.",
                                 legal=">= 0", hint="0 = full softmax", families=RNNS)
    softmax_update: str = _f("auto", "How the sampled softmax's weights learn: rows = only the rows a step "
                             "touched get a gradient and an Adagrad update (O(rows), as in bilm-tf; the same "
                             "math as dense); dense = the full [V, P] gradient every step; auto = rows where "
                             "it applies (--n_negative_samples > 0, --optimizer adagrad, an untied softmax).",
                             choices=("auto", "rows", "dense"), families=RNNS)
    optimizer: str = _f("adagrad", "Optimizer (bilm-tf uses Adagrad).", choices=("adagrad", "adamw"))
    amp: str = _f("off", "Mixed precision: Paddle's O1 autocast in bf16 or fp16 (float32 weights and optimizer "
                  "state; fp16 adds a dynamic loss scaler, saved in checkpoints). A GPU feature: where autocast "
                  "does nothing (Paddle's CPU build) the run says so and trains in float32.",
                  choices=("off", "bf16", "fp16"))
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
    not_learning_logs: int = _f(5, "Warn (once) when the loss stays above its first logged value for this many "
                                "logged steps in a row; 0 = never.", legal=">= 0", hint="0 disables the warning")
    visualdl: bool = _f(True, "Also log the metrics for VisualDL under {save_dir}/vdl (visualdl --logdir "
                        "{save_dir}/vdl).")
    keep_last: int = _f(5, "Keep only the newest N step checkpoints (0 keeps all); final is always kept. An "
                        "elmo-original checkpoint is GBs (README), so all of a 10-epoch run's would be TBs.",
                        legal=">= 0", hint="0 keeps all")
    overwrite: bool = _f(False, "Start afresh even if --save_dir already holds checkpoints (they are replaced).")


@dataclass
class EvalConfig:
    init_from_ckpt: str = _f("", "Checkpoint prefix to evaluate, e.g. ./checkpoints/final.",
                             legal="non-empty")
    device: str = _f("auto", "Device to evaluate on (auto: GPU if available).", choices=DEVICES)
    batch_size: int = _f(32, "Rows per step.", legal=">= 1")
    unroll_steps: int = _f(20, "Tokens per row per step (ELMo, LSTM LM).", legal=">= 1", families=RNNS)
    max_steps: int = _f(0, "Evaluate only this many steps (0 = the whole held-out set).", legal=">= 0",
                        hint="0 = the whole held-out set")
    seed: int = _f(0, "Seed of the one fixed masking of the held-out data (BERT).", legal=SEED_RANGE,
                   families=("bert",))
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
    """(flag, value) of the sequence length a transformer trains on."""
    return ("--max_seq_len", cfg.max_seq_len) if model == "bert" else ("--block_size", cfg.block_size)


def check_seq_len(model: ModelConfig, train: TrainConfig) -> int:
    """The sequence length of a BERT / GPT-2 run; a UserError when the model's positions cannot hold it."""
    flag, seq_len = seq_len_flag(model.model, train)
    if seq_len > model.max_position_embeddings:
        raise UserError(f"{flag} {seq_len} exceeds the model's {model.max_position_embeddings} positions "
                        f"(--max_position_embeddings)")
    return seq_len


def validate_pretrain(data: DataConfig, model: ModelConfig, train: TrainConfig,
                      seq_len_known: bool | None = None) -> None:
    """Everything a pretraining run can check before any work: each config, and the flags against each other.

    `model` is the architecture the run will have (the checkpoint's when resuming). With
    --init_from_pretrained the command line does not know that folder's positions, so the sequence length is
    checked only when `seq_len_known` (default: unless --init_from_pretrained; the trainer passes True).
    """
    validate_train(train)
    validate_model(model)
    validate_data(data, model)
    if model.model in TRANSFORMERS:
        if train.n_negative_samples:
            raise UserError(f"--n_negative_samples is not supported with --model {model.model} (it trains with "
                            f"the full softmax); use 0")
        if seq_len_known or (seq_len_known is None and not train.init_from_pretrained):
            check_seq_len(model, train)
    elif train.init_from_pretrained and model.model != "elmo":
        raise UserError(f"--init_from_pretrained is for --model elmo, bert or gpt2, not {model.model}")
    rowwise_softmax(model, train)


def rowwise_softmax(model: ModelConfig, train: TrainConfig) -> bool:
    """Whether the softmax learns row-wise (--softmax_update); a UserError when `rows` was asked for where the
    row-wise update would change the math or has nothing to act on."""
    why = ("it needs --n_negative_samples > 0 (the full softmax touches every row)" if not train.n_negative_samples
           else "Adam's moments move rows without a gradient, so a row-wise AdamW is not the same optimizer; "
                "use --optimizer adagrad" if train.optimizer != "adagrad"
           else "the tied softmax is also the input embedding, whose gradient is dense"
           if model.model == "lstm" and model.tie_weights else "")
    if train.softmax_update == "rows" and why:
        raise UserError(f"--softmax_update rows: {why}; or use --softmax_update dense")
    return train.softmax_update != "dense" and not why


def validate_eval(cfg: EvalConfig, data: DataConfig | None = None) -> None:
    """One UserError naming the flag for any out-of-range run_eval.py value."""
    if not cfg.init_from_ckpt:
        raise UserError("--init_from_ckpt is required, e.g. --init_from_ckpt=./checkpoints/final")
    check_fields(cfg)
    if data is not None:
        validate_data(data)
