"""Downstream and tool configs: the polarity classifier (`run_finetune.py`), `python -m paddle_lm generate` /
`embed`, and `python -m paddle_lm.data.prep`, validated the same way before anything loads."""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass

from paddle_lm.config.pretrain import DEVICES, SAMPLE_LM_DIR, SAMPLE_POLARITY_DIR, SAMPLE_ROOT
from paddle_lm.config.ranges import MAX_SEED, SEED_RANGE, _f, check_fields, check_value
from paddle_lm.errors import UserError

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
    classifier: str = _f("mlp", "Head on the token-averaged sentence vector: mlp (the bag-of-words MLP below, "
                         "early-stopped on a dev split) or linear (L2-regularized logistic regression on the "
                         "standardized vector, its strength chosen on each training fold's dev split; frozen "
                         "features only).", choices=("mlp", "linear"))
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
    device: str = _f("auto", "Device to run on (auto: GPU if available).", choices=DEVICES)
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
    if cfg.classifier == "linear" and cfg.trainable and cfg.encoder == "elmo":
        raise UserError("--classifier linear fits on frozen features and cannot fine-tune ELMo: drop --trainable "
                        "(trainable=1 in a --compare spec) or use --classifier mlp")
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
