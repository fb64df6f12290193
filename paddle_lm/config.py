"""Typed configuration: the single source of truth for every flag, preset and checkpoint sidecar.

`args.py` builds the command line from these dataclasses (field name = flag name, the first line of
each field's ``doc`` metadata = help text). Validation lives in ``validate`` so the scripts and the
library agree on what is legal.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields

from paddle_lm.errors import UserError

DATA_ROOT = os.environ.get("PADDLE_LM_DATA_DIR", "data")
SAMPLE_ROOT = os.path.join(DATA_ROOT, "sample")
SAMPLE_LM_DIR = os.path.join(SAMPLE_ROOT, "1-billion-word")
SAMPLE_POLARITY_DIR = os.path.join(SAMPLE_ROOT, "sentence-polarity-dataset-v1")


def _f(default, doc: str, **kw):
    """A dataclass field with a help string (used by args.py)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc, **kw})
    return field(default=default, metadata={"doc": doc, **kw})


@dataclass
class DataConfig:
    train_data_path: str = _f(
        os.path.join(SAMPLE_LM_DIR, "training-tokenized-shuffled", "*"),
        "Glob of tokenized training shards (one sentence per line, tokens separated by spaces).",
    )
    dev_data_path: str = _f(
        os.path.join(SAMPLE_LM_DIR, "heldout-tokenized-shuffled", "*"),
        "Glob of tokenized held-out shards used by run_eval.py.",
    )
    vocab_file: str = _f(
        os.path.join(SAMPLE_LM_DIR, "vocab-15w.txt"),
        "Vocabulary file, one token per line, most frequent first (bilm-tf or vocab-15w.txt style).",
    )
    cache_dir: str = _f("", "Where encoded token shards are cached (default: a .paddle_lm_cache folder beside the shards).")
    max_characters_per_token: int = _f(50, "Characters per token fed to the char-CNN (ELMo), incl. begin/end-of-word.")
    tokenizer_dir: str = _f("", "Subword tokenizer folder: BERT WordPiece (vocab.txt) or GPT-2 byte-level BPE "
                            "(vocab.json, merges.txt); empty = the --init_from_pretrained folder's, else one trained "
                            "on --train_data_path into {save_dir}/tokenizer on first use.")
    subword_vocab_size: int = _f(8000, "Vocabulary size of the tokenizer trained when --tokenizer_dir is empty "
                                 "(BERT / GPT-2).")


@dataclass
class ModelConfig:
    model: str = _f("elmo", "Model family.", choices=("elmo", "lstm", "bert", "gpt2"))
    vocab_size: int = _f(0, "Softmax size; filled in from the vocabulary, never set by hand.", cli=False)
    # --- ELMo token encoder (char-CNN + highway + projection)
    char_embed_dim: int = _f(16, "Character embedding size (ELMo).")
    filters: list = _f(
        [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
        "Char-CNN filters as [[width, count], ...] (ELMo).",
        cli=False,
    )
    num_highways: int = _f(2, "Highway layers after the char-CNN (ELMo).")
    cnn_activation: str = _f("relu", "Char-CNN activation (ELMo).", choices=("relu", "tanh"))
    projection_dim: int = _f(512, "Token representation and LSTM output size (ELMo).")
    # --- LSTM stacks (both models)
    cell_size: int = _f(4096, "LSTM cell size; when larger than the output size the output is projected (ELMo).")
    num_layers: int = _f(2, "LSTM layers per direction.")
    cell_clip: float = _f(3.0, "Clip LSTM cell values to [-c, c]; 0 disables (ELMo).")
    proj_clip: float = _f(3.0, "Clip projected LSTM outputs to [-c, c]; 0 disables (ELMo).")
    residual: bool = _f(True, "Residual connections between LSTM layers (from the second layer on).")
    dropout: float = _f(0.1, "Dropout on LSTM inputs/outputs.")
    # --- plain LSTM LM
    embedding_dim: int = _f(256, "Word embedding size (LSTM LM).")
    hidden_size: int = _f(256, "LSTM hidden size (LSTM LM).")
    tie_weights: bool = _f(False, "Tie input embedding and softmax weights (LSTM LM; needs embedding_dim == hidden_size).")
    # --- transformers (BERT / GPT-2 through paddlenlp; hidden_size, num_layers and dropout are shared).
    num_attention_heads: int = _f(4, "Attention heads (BERT / GPT-2).")
    intermediate_size: int = _f(1024, "Feed-forward inner size (BERT / GPT-2).")
    max_position_embeddings: int = _f(512, "Longest sequence the position embeddings cover (BERT / GPT-2).")


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
    save_dir: str = _f("./checkpoints", "Where checkpoints and metrics.jsonl are written.")
    init_from_ckpt: str = _f("", "Checkpoint prefix to resume from, e.g. ./checkpoints/10000 (no suffix).")
    device: str = _f("cpu", "Device to train on.", choices=("cpu", "gpu"))
    batch_size: int = _f(32, "Rows (sentence streams) per rank per step.")
    unroll_steps: int = _f(20, "Tokens per row per step (truncated BPTT length).")
    block_size: int = _f(128, "Tokens per training block (GPT-2; at most --max_position_embeddings).")
    max_seq_len: int = _f(128, "Tokens per packed BERT sequence, [CLS] and [SEP] included (at most "
                          "--max_position_embeddings).")
    mlm_probability: float = _f(0.15, "Share of tokens selected for masked-LM prediction (BERT; 80% [MASK], 10% "
                                "random, 10% unchanged).")
    whole_word_masking: bool = _f(False, "Mask all WordPiece pieces of a word together (BERT).")
    init_from_pretrained: str = _f("", "Start from a local save_pretrained folder (BERT / GPT-2 weights, config "
                                   "and tokenizer) for continued pretraining; nothing is downloaded.")
    gradient_accumulation_steps: int = _f(1, "Micro-batches whose gradients are summed into one optimizer step.")
    max_steps: int = _f(0, "Stop after this many optimizer steps (0 = run --epochs).")
    epochs: int = _f(1, "Passes over the training data when --max_steps is 0.")
    n_negative_samples: int = _f(0, "Train with a sampled softmax over this many negative classes per batch "
                                 "(bilm-tf: 8192); 0 = full softmax. Evaluation always uses the full softmax.")
    optimizer: str = _f("adagrad", "Optimizer (bilm-tf uses Adagrad).", choices=("adagrad", "adamw"))
    lr: float = _f(0.2, "Peak learning rate.")
    weight_decay: float = _f(0.0, "Decoupled weight decay (AdamW only).")
    max_grad_norm: float = _f(10.0, "Clip gradients to this global norm; 0 disables.")
    warmup_steps: int = _f(0, "Linear warmup steps; -1 = 10% of the run's steps.")
    lr_decay: str = _f("none", "Learning-rate decay after warmup.", choices=("none", "linear", "cosine"))
    seed: int = _f(1234, "Random seed (rank r uses seed + r for dropout).")
    save_steps: int = _f(1000, "Save a checkpoint every N steps.")
    logging_steps: int = _f(10, "Log a metrics line every N steps.")
    keep_last: int = _f(0, "Keep only the newest N step checkpoints (0 keeps all).")
    overwrite: bool = _f(False, "Start afresh even if --save_dir already holds checkpoints (they are replaced).")


@dataclass
class EvalConfig:
    init_from_ckpt: str = _f("", "Checkpoint prefix to evaluate, e.g. ./checkpoints/final.")
    device: str = _f("cpu", "Device to evaluate on.", choices=("cpu", "gpu"))
    batch_size: int = _f(32, "Rows per step.")
    unroll_steps: int = _f(20, "Tokens per row per step.")
    max_steps: int = _f(0, "Evaluate only this many steps (0 = the whole held-out set).")
    seed: int = _f(0, "Seed of the one fixed masking of the held-out data (BERT).")
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


def validate_model(cfg: ModelConfig) -> None:
    if cfg.model == "lstm" and cfg.tie_weights and cfg.embedding_dim != cfg.hidden_size:
        raise UserError("--tie_weights needs --embedding_dim equal to --hidden_size")
    if cfg.model == "elmo" and cfg.cell_size < cfg.projection_dim:
        raise UserError("--cell_size must be at least --projection_dim")
    for name in ("num_layers", "projection_dim", "cell_size", "embedding_dim", "hidden_size"):
        if getattr(cfg, name) <= 0:
            raise UserError(f"--{name} must be positive")
    if not 0.0 <= cfg.dropout < 1.0:
        raise UserError("--dropout must be in [0, 1)")
    if cfg.model in TRANSFORMERS and cfg.hidden_size % cfg.num_attention_heads:
        raise UserError(f"--hidden_size {cfg.hidden_size} must be divisible by --num_attention_heads "
                        f"{cfg.num_attention_heads}")


def validate_train(cfg: TrainConfig) -> None:
    for name in ("batch_size", "unroll_steps", "block_size", "save_steps", "logging_steps",
                 "gradient_accumulation_steps"):
        if getattr(cfg, name) <= 0:
            raise UserError(f"--{name} must be positive")
    if cfg.max_steps < 0 or cfg.epochs <= 0:
        raise UserError("--max_steps must be >= 0 and --epochs positive")
    if cfg.lr <= 0:
        raise UserError("--lr must be positive")
    if cfg.warmup_steps < -1:
        raise UserError("--warmup_steps must be >= 0 (or -1 = 10% of the steps)")
    if cfg.max_seq_len < 3:
        raise UserError("--max_seq_len must be at least 3 ([CLS] token [SEP])")
    if not 0.0 < cfg.mlm_probability < 1.0:
        raise UserError("--mlm_probability must be between 0 and 1")


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
                       "sentence per line.")
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
    elmo_batch_size: int = _f(64, "Sentences per ELMo forward pass when computing frozen features.")
    pretrained_word2vec_file: str = _f("", "Word vectors for --encoder word2vec: word2vec binary or text, or "
                                       "GloVe text without the header line (the format is detected).")
    train_word2vec_on: str = _f("", "Instead of a vectors file: train word2vec (skip-gram) on this glob of "
                                "tokenized shards, e.g. the corpus ELMo was pretrained on.")
    word2vec_dim: int = _f(100, "Size of the word2vec vectors trained with --train_word2vec_on.")
    word2vec_epochs: int = _f(10, "Passes of word2vec training over the corpus.")
    word2vec_window: int = _f(5, "word2vec context window (words each side).")
    word2vec_min_count: int = _f(3, "word2vec keeps words seen at least this often (the sample vocab uses 3).")
    word2vec_cache_dir: str = _f("", "Where trained word2vec vectors are cached (default: the "
                                 ".paddle_lm_cache folder beside the corpus shards).")
    # --- classifier and training
    hidden_size: int = _f(128, "Hidden units of the classifier's MLP.")
    dropout: float = _f(0.3, "Dropout before each layer of the MLP.")
    normalize: bool = _f(True, "Standardize each feature of the averaged sentence vector (BatchNorm) before the "
                         "MLP; averaged ELMo states vary little around a large offset and stall the MLP without.")
    lr: float = _f(1e-3, "Adam learning rate.")
    epochs: int = _f(30, "Most passes over each training fold (early stopping usually ends sooner).")
    batch_size: int = _f(32, "Sentences per optimizer step.")
    patience: int = _f(3, "Stop after this many epochs without a lower dev loss; the best epoch's weights are "
                       "restored.")
    dev_fraction: float = _f(0.1, "Share of each training fold held out (stratified) as the early-stopping dev "
                             "set.")
    # --- evaluation
    folds: int = _f(0, "Stratified K-fold cross-validation with K folds (K >= 2); 0 = one held-out split of "
                    "--test_fraction.")
    test_fraction: float = _f(0.1, "Test share of the single stratified split used when --folds is 0.")
    seed: int = _f(1234, "Seed of the splits, the classifier initialization and shuffling.")
    compare: list = _f([], "Encoder specs to compare on identical folds (see run_finetune.py -h).", cli=False)
    device: str = _f("cpu", "Device to run on.", choices=("cpu", "gpu"))
    json: bool = _f(False, "Print a machine-readable JSON summary as the last line.")


def validate_finetune(cfg: FinetuneConfig) -> None:
    """One UserError naming the flag for any nonsensical FinetuneConfig value."""
    for name in ("hidden_size", "epochs", "batch_size", "elmo_batch_size", "word2vec_dim", "word2vec_epochs",
                 "word2vec_window", "word2vec_min_count"):
        if getattr(cfg, name) <= 0:
            raise UserError(f"--{name} must be positive")
    if cfg.lr <= 0:
        raise UserError("--lr must be positive")
    for f in fields(cfg):  # flags check their choices; --compare specs set fields directly
        choices = f.metadata.get("choices")
        if choices and getattr(cfg, f.name) not in choices:
            raise UserError(f"--{f.name} {getattr(cfg, f.name)!r}: choose one of {', '.join(choices)}")
    if cfg.patience < 1:
        raise UserError("--patience must be at least 1")
    if not 0.0 <= cfg.dropout < 1.0:
        raise UserError("--dropout must be in [0, 1)")
    for name in ("dev_fraction", "test_fraction"):
        if not 0.0 < getattr(cfg, name) < 1.0:
            raise UserError(f"--{name} must be between 0 and 1")
    if cfg.folds == 1 or cfg.folds < 0:
        raise UserError(f"--folds {cfg.folds}: cross-validation needs at least 2 folds (0 = one held-out split)")
    one_source = bool(cfg.pretrained_word2vec_file) != bool(cfg.train_word2vec_on)
    if cfg.encoder == "word2vec" and not cfg.compare and not one_source:
        raise UserError("--encoder word2vec needs exactly one of --pretrained_word2vec_file PATH or "
                        "--train_word2vec_on GLOB")
