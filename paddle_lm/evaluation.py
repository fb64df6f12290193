"""Perplexity of a checkpoint on held-out data (token-weighted, over a full pass)."""

from __future__ import annotations

import math
import os

import numpy as np
import paddle
from tqdm import tqdm

from paddle_lm.config import DataConfig, EvalConfig, ModelConfig
from paddle_lm.data.blocks import BlockBatches, CausalBlocks
from paddle_lm.data.stream import BPTTStream
from paddle_lm.data.subword import tokenizer_identity
from paddle_lm.data.subword_shards import SubwordCorpus
from paddle_lm.data.vocab import Vocab
from paddle_lm.device import set_device, to_tensors
from paddle_lm.errors import UserError
from paddle_lm.models import STAT_KEYS, build_model
from paddle_lm.training import checkpoint as ckpt
from paddle_lm.training.sources import masked_blocks, open_corpus
from paddle_lm.weights import fit_state


def load_model(prefix: str, vocab_file: str | None = None, flag: str = "--init_from_ckpt",
               allow_suffix: bool = False, with_softmax: bool = True) -> tuple[paddle.nn.Layer, dict, Vocab | None]:
    """(model in eval mode, sidecar, vocabulary) of a checkpoint; the architecture comes from its sidecar.

    `vocab_file` defaults to the copy saved beside the checkpoint; another file must be the same vocabulary.
    ``with_softmax=False``: an ELMo encoder without its softmax (never built, its weights not kept). An
    encoder-only checkpoint (``python -m paddle_lm import-elmo``) has no vocabulary: None is returned for it.
    """
    prefix = ckpt.resolve_prefix(prefix, flag, allow_suffix=allow_suffix)
    side = ckpt.read_sidecar(prefix)
    if side.get("encoder_only"):
        if with_softmax:
            raise UserError(f"{prefix} is an ELMo encoder without a softmax ({ckpt.describe_source(side)}): it "
                            f"has no perplexity; continue pretraining from it with run_pretrain.py --model elmo "
                            f"--init_from_pretrained {prefix}")
        if vocab_file:
            raise UserError(f"{prefix} is an ELMo encoder without a word vocabulary ({ckpt.describe_source(side)}); "
                            f"drop --vocab_file")
        return _weights(prefix, side, with_softmax), side, None
    if "vocab_file" not in side["data"]:
        raise UserError(f"{prefix} is a {side['model_config']['model']!r} checkpoint without a word vocabulary; "
                        f"this needs an ELMo or LSTM checkpoint")
    saved_vocab = os.path.join(os.path.dirname(prefix), side["data"]["vocab_file"])
    vocab = Vocab.load(vocab_file or saved_vocab)
    if vocab.identity != side["data"]["vocab_identity"]:
        raise UserError(f"--vocab_file {vocab_file or saved_vocab!r} does not match checkpoint {prefix}: it has "
                        f"{len(vocab)} tokens (identity {vocab.identity}), the checkpoint was trained with "
                        f"{side['data']['vocab_size']} (identity {side['data']['vocab_identity']})")
    return _weights(prefix, side, with_softmax), side, vocab


def load_subword_model(prefix: str, tokenizer_dir: str | None = None,
                       flag: str = "--init_from_ckpt") -> tuple[paddle.nn.Layer, dict, str]:
    """(model in eval mode, sidecar, tokenizer folder) of a BERT or GPT-2 checkpoint; `tokenizer_dir` defaults to
    the copy saved beside it, another folder must hold the same tokenizer."""
    prefix = ckpt.resolve_prefix(prefix, flag)
    side = ckpt.read_sidecar(prefix)
    if "tokenizer_dir" not in side["data"]:
        raise UserError(f"{prefix} is a {side['model_config']['model']!r} checkpoint without a subword tokenizer; "
                        f"this needs a BERT or GPT-2 checkpoint")
    saved = os.path.join(os.path.dirname(prefix), side["data"]["tokenizer_dir"])
    ident = tokenizer_identity(tokenizer_dir or saved)
    if ident != side["data"]["tokenizer_identity"]:
        raise UserError(f"tokenizer {tokenizer_dir or saved!r} does not match checkpoint {prefix} (identity {ident}; "
                        f"the checkpoint was trained with {side['data']['tokenizer_identity']})")
    return _weights(prefix, side), side, tokenizer_dir or saved


def _weights(prefix: str, side: dict, with_softmax: bool = True) -> paddle.nn.Layer:
    """The model its sidecar describes, with the checkpoint's verified weights, in eval mode."""
    model = build_model(ModelConfig(**side["model_config"]), with_softmax)
    state = ckpt.load_params(prefix, side)
    if not with_softmax:
        state = {k: v for k, v in state.items() if not k.startswith(SOFTMAX_PREFIX)}
    fit_state(model, state, f"{prefix}.pdparams", ckpt.DAMAGED)
    model.eval()
    return model


SOFTMAX_PREFIX = "softmax."  # ELMo's output layer in a state dict


@paddle.no_grad()
def loss_sums(model: paddle.nn.Layer, stream: BPTTStream, max_steps: int = 0, progress: bool = True) -> np.ndarray:
    """Summed forward/backward losses and target counts over the stream (state carried across steps)."""
    steps = min(max_steps, stream.steps_per_epoch) if max_steps else stream.steps_per_epoch
    totals, state = np.zeros(len(STAT_KEYS)), None
    for s in tqdm(range(steps), desc="eval", unit="step", disable=not progress, dynamic_ncols=True):
        outputs, _, state = model(to_tensors(stream.batch(s)), state)
        totals += [float(outputs[k]) if k in outputs else 0.0 for k in STAT_KEYS]
    return totals


def perplexity_report(totals: np.ndarray, bidirectional: bool) -> dict:
    """`loss` = token-weighted mean over both directions; ppl = exp(loss); per-direction ppl too."""
    fw_sum, fw_n, bw_sum, bw_n = (float(v) for v in totals)
    if fw_n == 0:
        raise UserError("the held-out data produced no targets to score")
    loss = (fw_sum + bw_sum) / (fw_n + bw_n)
    report = {"loss": loss, "ppl": math.exp(loss), "ppl_fw": math.exp(fw_sum / fw_n), "tokens": int(fw_n)}
    if bidirectional:
        report["ppl_bw"] = math.exp(bw_sum / bw_n)
    return report


def evaluate(cfg: EvalConfig, data: DataConfig, vocab_file: str | None = None, progress: bool = True) -> dict:
    """Full pass of `data.dev_data_path` through checkpoint `cfg.init_from_ckpt`."""
    if not cfg.init_from_ckpt:
        raise UserError("--init_from_ckpt is required, e.g. --init_from_ckpt=./checkpoints/final")
    set_device(cfg.device)
    prefix = ckpt.resolve_prefix(cfg.init_from_ckpt)
    masked = False
    if "tokenizer_identity" in ckpt.read_sidecar(prefix)["data"]:  # BERT / GPT-2: every full block once, in order
        model, side, tok_dir = load_subword_model(prefix, vocab_file)
        corpus = SubwordCorpus(data.dev_data_path, tok_dir, what="--dev_data_path", cache_dir=data.cache_dir,
                               progress=progress)
        tc = side["train_config"]
        masked = side["model_config"]["model"] == "bert"
        if masked:  # one fixed masking of the held-out data, drawn from --seed
            blocks = masked_blocks(corpus, tok_dir, tc["max_seq_len"], seed=cfg.seed,
                                   mlm_probability=tc["mlm_probability"],
                                   whole_word_masking=tc["whole_word_masking"])
        else:
            blocks = CausalBlocks(corpus, tc["block_size"])
        stream = BlockBatches(blocks, cfg.batch_size, ordered=True)
    else:
        model, side, vocab = load_model(prefix, vocab_file)
        data.max_characters_per_token = side["data"]["max_characters_per_token"]
        corpus = open_corpus(data.dev_data_path, vocab, data, ModelConfig(**side["model_config"]), "--dev_data_path",
                             progress)
        stream = BPTTStream(corpus, cfg.batch_size, cfg.unroll_steps)
    report = perplexity_report(loss_sums(model, stream, cfg.max_steps, progress),
                               side["model_config"]["model"] == "elmo")
    report["step"] = side["step"]
    if masked:
        report.update(objective="masked-lm", mlm_probability=tc["mlm_probability"], mask_seed=cfg.seed,
                      whole_word_masking=tc["whole_word_masking"])
    return report


# ---------------------------------------------------------------------------------------------------------
# Classification: accuracy and paired significance tests (used by paddle_lm.downstream.finetune)


def accuracy(predictions, labels) -> float:
    """Share of equal entries of two equally long 1-D label arrays."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.size == 0:
        raise ValueError(f"accuracy needs two equally long, non-empty arrays, got {predictions.shape} and "
                         f"{labels.shape}")
    return float((predictions == labels).mean())


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def mcnemar_exact(correct_a, correct_b) -> dict:
    """McNemar's exact test on paired predictions of two classifiers over the same test items.

    ``correct_a`` / ``correct_b``: booleans, whether each classifier got each item right. Only the
    discordant pairs count: ``b`` = A right and B wrong, ``c`` = A wrong and B right. Under the null
    hypothesis (equal error rates) b ~ Binomial(b + c, 1/2); the p-value is the exact two-sided binomial
    test (scipy.stats.binomtest), 1.0 when there are no discordant pairs.
    """
    from scipy.stats import binomtest

    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"mcnemar_exact needs paired predictions, got {a.shape} and {b_.shape}")
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    p = binomtest(b, b + c, 0.5, alternative="two-sided").pvalue if b + c else 1.0
    return {"b": b, "c": c, "n": int(a.size), "p": float(p)}


def paired_ttest(acc_a, acc_b) -> dict:
    """Paired t-test (scipy.stats.ttest_rel) over per-fold accuracies of two classifiers on the same folds.

    ``t`` and ``p`` are None with fewer than two folds, or when every fold has the same difference (the test
    statistic is undefined then).
    """
    from scipy.stats import ttest_rel

    a, b = np.asarray(acc_a, dtype=np.float64), np.asarray(acc_b, dtype=np.float64)
    d = a - b
    if a.size < 2 or np.allclose(d, d[0]):
        return {"t": None, "p": None, "folds": int(a.size)}
    r = ttest_rel(a, b)
    return {"t": float(r.statistic), "p": float(r.pvalue), "folds": int(a.size)}
