"""Sentence polarity with a bag-of-words classifier on ELMo or word2vec vectors, and an honest comparison.

``finetune(cfg)`` reads ``rt-polarity.pos`` / ``.neg``, fixes the evaluation splits once (one stratified
held-out split, or stratified K-fold CV), then for each encoder — the one chosen by the flags, or every
``--compare`` spec — builds features, trains a fresh classifier per fold (early stopping on a stratified dev
split carved from the training fold) and predicts the fold's test sentences. All encoders see identical
folds, so their predictions are paired: the report has accuracy mean ± std per encoder, the per-fold paired
difference, McNemar's exact test on the pooled test predictions, and a paired t-test over fold accuracies.

Frozen encoders are pooled once: ELMo's layers (or word2vec vectors) are averaged over each sentence's
tokens before training, which is exact because the scalar mix is linear (see bow.BowClassifier).
"""

from __future__ import annotations

import dataclasses
import html
import os
import time
import unicodedata

import numpy as np
import paddle
from tqdm import tqdm

from paddle_lm.config import FinetuneConfig, validate_finetune
from paddle_lm.downstream.bow import BowClassifier, fit, predict_logits
from paddle_lm.downstream.linear import fit_linear
from paddle_lm.errors import UserError
from paddle_lm.evaluation import accuracy, mcnemar_exact, mean_std, paired_ttest
from paddle_lm.fsio import read_input

FILES = (("rt-polarity.pos", 1), ("rt-polarity.neg", 0))


# ---------------------------------------------------------------------------------------------- data
def clean_text(line: str) -> list[str]:
    """``--clean``: NFKC-normalize, unescape HTML entities (``&amp;`` ...), lowercase, split on whitespace,
    and drop tokens made only of punctuation or symbols (``.`` ``,`` ``--`` ``"``); ``'s`` and ``n't`` stay."""
    text = unicodedata.normalize("NFKC", html.unescape(line)).lower()
    return [t for t in text.split() if not all(unicodedata.category(ch)[0] in "PS" for ch in t)]


def _decode(path: str, encoding: str) -> tuple[str, str]:
    """(text, encoding used) of a polarity file; UserError for a missing, unreadable or binary file."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise UserError(f"{path} is not a file; --data_dir must hold the files rt-polarity.pos and .neg")
    if not os.path.isfile(path):
        raise UserError(f"{path} does not exist; --data_dir must hold rt-polarity.pos and rt-polarity.neg "
                        f"(`bash download_data.sh --sample` makes them)")
    raw = read_input(path)
    if b"\x00" in raw:
        raise UserError(f"{path} looks binary (it has NUL bytes), not one sentence per line of text")
    tries = ["utf-8", "cp1252"] if encoding == "auto" else [encoding]
    for enc in tries:
        try:
            return raw.decode(enc), enc
        except LookupError:
            raise UserError(f"--encoding {encoding!r} is not a known text encoding") from None
        except UnicodeDecodeError as e:
            err = e
    line = raw[: err.start].count(b"\n") + 1
    what = "UTF-8 or Windows-1252" if encoding == "auto" else encoding
    raise UserError(f"{path}:{line}: not valid {what} text ({err.reason} at byte {err.start}); re-encode the "
                    f"file as UTF-8" + ("" if encoding == "auto" else " or try --encoding auto"))


def load_polarity(data_dir: str, encoding: str = "auto", clean: bool = False) -> tuple[list, np.ndarray, list]:
    """(tokenized sentences, labels int64 ``[N]`` with 1 = positive, notes) from ``data_dir``.

    Blank lines are skipped; with `clean` (see ``clean_text``) sentences that end up empty are dropped.
    """
    if not os.path.isdir(data_dir):
        raise UserError(f"--data_dir {data_dir!r} is not a folder; it must hold rt-polarity.pos and "
                        f"rt-polarity.neg (`bash download_data.sh --sample` makes them)")
    sentences, labels, notes = [], [], []
    for name, label in FILES:
        path = os.path.join(data_dir, name)
        text, used = _decode(path, encoding)
        if encoding == "auto" and used != "utf-8":
            notes.append(f"{path} is not UTF-8; read it as Windows-1252")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        sents = [clean_text(ln) for ln in lines] if clean else [ln.split() for ln in lines]
        kept = [s for s in sents if s]
        if not kept:
            raise UserError(f"{path} is empty: it needs one tokenized sentence per line")
        if len(kept) < len(sents):
            notes.append(f"--clean left {len(sents) - len(kept)} sentences of {path} empty; dropped them")
        sentences += kept
        labels += [label] * len(kept)
    return sentences, np.asarray(labels, dtype=np.int64), notes


def make_splits(labels: np.ndarray, folds: int, test_fraction: float, seed: int) -> list:
    """[(train_idx, test_idx)]: stratified K-fold (K = `folds` >= 2, shuffled with `seed`) or, for
    ``folds == 0``, one stratified split with a `test_fraction` test set."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    smaller = int(np.bincount(labels, minlength=2).min())
    idx = np.arange(len(labels))
    if folds == 0:
        n_test = round(test_fraction * len(labels))
        if smaller < 2 or n_test < 2 or len(labels) - n_test < 2:
            raise UserError(f"--test_fraction {test_fraction}: {len(labels)} sentences ({smaller} in the smaller "
                            f"class) are too few for a stratified held-out split")
        train, test = train_test_split(idx, test_size=n_test, stratify=labels, random_state=seed)
        return [(np.sort(train), np.sort(test))]
    if folds < 2:
        raise UserError(f"--folds {folds}: cross-validation needs at least 2 folds (0 = one held-out split)")
    if folds > smaller:
        raise UserError(f"--folds {folds} is more than the {smaller} sentences of the smaller class; "
                        f"stratified K-fold needs K <= {smaller}")
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(train, test) for train, test in skf.split(idx, labels)]


def dev_split(train_idx: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple:
    """(fit_idx, dev_idx): a stratified `fraction` of a training fold held out for early stopping."""
    from sklearn.model_selection import train_test_split

    try:
        fit_idx, dev_idx = train_test_split(train_idx, test_size=fraction, stratify=labels[train_idx],
                                            random_state=seed)
    except ValueError as e:
        raise UserError(f"--dev_fraction {fraction}: cannot carve a stratified dev set from a training fold of "
                        f"{len(train_idx)} sentences ({e})") from None
    return fit_idx, dev_idx


# ---------------------------------------------------------------------------------------------- encoders
_SPEC_KEYS = {"ckpt": "init_from_ckpt", "layers": "elmo_layers", "file": "pretrained_word2vec_file",
              "train_on": "train_word2vec_on", "dim": "word2vec_dim", "epochs": "word2vec_epochs"}
_FIELDS = {f.name: f for f in dataclasses.fields(FinetuneConfig)}


def _convert(key: str, value: str, default):
    try:
        if isinstance(default, bool):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes")
        return type(default)(value)
    except ValueError:
        raise UserError(f"--compare: {key}={value!r} is not a valid {type(default).__name__}") from None


def parse_spec(spec: str, base: FinetuneConfig) -> tuple[str, FinetuneConfig]:
    """(label, config) of one ``--compare`` spec ``ENCODER[:key=value,...]`` (see args.COMPARE_HELP)."""
    head, _, rest = spec.partition(":")
    encoder = {"w2v": "word2vec"}.get(head.strip().lower(), head.strip().lower())
    if encoder not in ("elmo", "word2vec"):
        raise UserError(f"--compare {spec!r}: unknown encoder {head!r}; use elmo or word2vec (w2v)")
    changes, name = {"encoder": encoder, "compare": []}, None
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        field = _SPEC_KEYS.get(key.strip(), key.strip())
        if key.strip() == "name" and eq:
            name = value
        elif eq and field in _FIELDS and field not in ("compare", "encoder", "json"):
            changes[field] = _convert(key, value.strip(), getattr(base, field))
        else:
            raise UserError(f"--compare {spec!r}: {item!r} is not key=value with a known key "
                            f"({', '.join(['name', *_SPEC_KEYS])} or a flag name)")
    if "pretrained_word2vec_file" in changes:
        changes.setdefault("train_word2vec_on", "")
    elif "train_word2vec_on" in changes:
        changes["pretrained_word2vec_file"] = ""
    cfg = dataclasses.replace(base, **changes)
    validate_finetune(cfg)
    return name or default_label(cfg), cfg


def default_label(cfg: FinetuneConfig) -> str:
    head = "-linear" if cfg.classifier == "linear" else ""
    if cfg.encoder == "elmo":
        return f"elmo-{cfg.elmo_layers}" + ("-finetuned" if cfg.trainable else "") + head
    if cfg.train_word2vec_on:
        return f"w2v-trained-d{cfg.word2vec_dim}{head}"
    return "w2v:" + os.path.splitext(os.path.basename(cfg.pretrained_word2vec_file))[0] + head


class FrozenFeatures:
    """Features pooled in advance, ``[N, L, D]``: ``batch`` gives L tensors ``[B, 1, D]`` and no mask."""

    def __init__(self, pooled: np.ndarray):
        self.pooled = pooled
        self.num_layers, self.dim = pooled.shape[1], pooled.shape[2]

    def batch(self, idx, training: bool):
        x = paddle.to_tensor(self.pooled[idx])  # [B, L, D]
        return [x[:, k:k + 1] for k in range(self.num_layers)], None  # L x [B, 1, D]

    def vectors(self) -> np.ndarray:
        """``[N, L * D]``: the layers side by side (what the linear head fits on)."""
        return self.pooled.reshape(len(self.pooled), -1)

    def parameters(self) -> list:
        return []

    def state(self):
        return None

    def restore(self, state) -> None:
        pass


class TrainableELMo:
    """ELMo run on every batch with gradients (``--trainable``); ``reset`` reloads the pretrained weights."""

    def __init__(self, embedder, sentences: list, top_only: bool):
        self.embedder, self.sentences, self.top_only = embedder, sentences, top_only
        self.num_layers = 1 if top_only else embedder.num_layers
        self.dim = 2 * embedder.projection_dim
        self.initial = self.state()

    def batch(self, idx, training: bool):
        self.embedder.model.train() if training else self.embedder.model.eval()
        layers, mask = self.embedder.batch_layers([self.sentences[i] for i in idx])  # L x [B, T, 2P], [B, T]
        return (layers[-1:] if self.top_only else layers), mask

    def parameters(self) -> list:
        return list(self.embedder.model.parameters())

    def state(self) -> dict:
        return {k: v.numpy().copy() for k, v in self.embedder.model.state_dict().items()}

    def restore(self, state: dict) -> None:
        self.embedder.model.set_state_dict(state)

    def reset(self) -> None:
        self.restore(self.initial)


def _check_vocab(cfg: FinetuneConfig, embedder) -> None:
    if cfg.vocab_file:
        from paddle_lm.data.vocab import Vocab

        if embedder.vocab is None:
            raise UserError(f"--vocab_file: checkpoint {cfg.init_from_ckpt} is an ELMo encoder without a word "
                            f"vocabulary (an import); drop --vocab_file")

        vocab = Vocab.load(cfg.vocab_file)
        if vocab.identity != embedder.vocab.identity:
            raise UserError(f"--vocab_file {cfg.vocab_file!r} does not match checkpoint {cfg.init_from_ckpt}: it "
                            f"has {len(vocab)} tokens (identity {vocab.identity}), the checkpoint's vocabulary "
                            f"{len(embedder.vocab)} (identity {embedder.vocab.identity})")


def build_features(cfg: FinetuneConfig, sentences: list, progress: bool = True, cache: dict | None = None) -> tuple:
    """(feature source, info dict) for the encoder of `cfg` (see bow.py for the feature-source interface).

    A frozen ELMo is loaded and its layers pooled once per checkpoint, kept in `cache` for the other encoders
    of a run (a trainable one always starts from a fresh copy, as it changes its weights).
    """
    if cfg.encoder == "elmo":
        from paddle_lm.downstream.embedder import ELMoEmbedder
        from paddle_lm.training.checkpoint import resolve_prefix

        key = os.path.realpath(resolve_prefix(cfg.init_from_ckpt, "--init_from_ckpt", allow_suffix=True))
        emb, pooled = (None, None) if cfg.trainable or cache is None else cache.get(key, (None, None))
        if emb is None:
            emb = ELMoEmbedder(cfg.init_from_ckpt, batch_size=cfg.elmo_batch_size, device=cfg.device,
                               progress=progress, flag="--init_from_ckpt")
        _check_vocab(cfg, emb)
        side = emb.sidecar
        wide = emb.num_layers if cfg.elmo_layers == "concat" else 1
        info = {"source": emb.prefix, "dim": wide * 2 * emb.projection_dim,
                "detail": f"step {side.get('step')}, {side.get('tokens_seen', 0):,} tokens seen in pretraining"}
        if cfg.trainable:
            return TrainableELMo(emb, sentences, cfg.elmo_layers == "top"), info
        if pooled is None:
            pooled = emb.mean_layers(sentences)  # [N, L, 2P]
            if cache is not None:
                cache[key] = (emb, pooled)
        else:
            info["detail"] += "; layers pooled once for an earlier encoder of this run"
        return FrozenFeatures(pooled[:, -1:] if cfg.elmo_layers == "top" else pooled), info
    from paddle_lm.downstream import baselines

    if cfg.train_word2vec_on:
        wv, path, cached = baselines.train_word2vec(
            cfg.train_word2vec_on, cfg.word2vec_dim, cfg.word2vec_epochs, cfg.word2vec_window,
            cfg.word2vec_min_count, cfg.seed, cfg.word2vec_cache_dir, progress)
        info = {"source": path, "detail": f"skip-gram, {cfg.word2vec_epochs} epochs over "
                f"{cfg.train_word2vec_on}" + (", from the cache" if cached else "")}
    else:
        wv, info = baselines.load_vectors(cfg.pretrained_word2vec_file), {"source": cfg.pretrained_word2vec_file}
    means, stats = wv.sentence_means(sentences)  # [N, D]
    return FrozenFeatures(means[:, None, :]), {**info, "dim": wv.dim, **stats}


# ---------------------------------------------------------------------------------------------- running
def classifier_settings(cfg: FinetuneConfig) -> dict:
    """The classifier's flags in `cfg` (reported per run and per encoder, as --compare specs may change them)."""
    keys = ("classifier", "hidden_size", "dropout", "normalize", "lr", "epochs", "batch_size", "patience",
            "dev_fraction")
    return {k: getattr(cfg, k) for k in keys}


def run_encoder(name: str, cfg: FinetuneConfig, sentences: list, labels: np.ndarray, splits: list,
                progress: bool = True, cache: dict | None = None) -> dict:
    """Features, then per split a fresh classifier (the MLP early-stopped, or the linear head with its C chosen,
    on the split's dev part) scored on the test part."""
    t0 = time.perf_counter()
    features, info = build_features(cfg, sentences, progress, cache)
    t1 = time.perf_counter()
    x = features.vectors() if cfg.classifier == "linear" else None  # [N, L*D]: the linear head's input
    if x is not None:
        info = {**info, "dim": x.shape[1]}
    predictions = np.full(len(labels), -1, dtype=np.int64)  # [N], -1 = never in a test fold
    accs, chosen = [], []  # per fold: the MLP's best epoch, or the linear head's C
    bar = tqdm(list(enumerate(splits)), desc=f"{name} folds", unit="fold", disable=not progress,
               dynamic_ncols=True)
    for k, (train_idx, test_idx) in bar:
        seed = cfg.seed + 1000 * k
        fit_idx, dev_idx = dev_split(train_idx, labels, cfg.dev_fraction, seed)
        if x is not None:
            r = fit_linear(x, labels, fit_idx, dev_idx)
            pred = r["model"].predict(x[test_idx])  # [n_test]
            chosen.append(r["c"])
        else:
            if isinstance(features, TrainableELMo):
                features.reset()
            paddle.seed(seed)
            model = BowClassifier(features.dim, cfg.hidden_size, cfg.dropout, features.num_layers,
                                  normalize=cfg.normalize, combine="concat" if cfg.elmo_layers == "concat" else "mix")
            r = fit(model, features, labels, fit_idx, dev_idx, lr=cfg.lr, epochs=cfg.epochs,
                    batch_size=cfg.batch_size, patience=cfg.patience, seed=seed,
                    progress=progress and isinstance(features, TrainableELMo))
            pred = predict_logits(model, features, test_idx).argmax(axis=1)  # [n_test]
            chosen.append(r["best_epoch"])
        predictions[test_idx] = pred
        accs.append(accuracy(pred, labels[test_idx]))
        bar.set_postfix(acc=f"{accs[-1]:.4f}")
    mean, std = mean_std(accs)
    return {"name": name, "encoder": cfg.encoder, **info, "classifier": classifier_settings(cfg),
            "accuracies": accs, "mean": mean, "std": std,
            ("best_c" if cfg.classifier == "linear" else "best_epochs"): chosen, "feature_seconds": t1 - t0, "seconds": time.perf_counter() - t0,
            "predictions": predictions}


def compare(results: list, labels: np.ndarray) -> list:
    """Every pair of encoders: per-fold accuracy difference, McNemar (pooled test items), paired t-test."""
    pairs = []
    for i, a in enumerate(results):
        for b in results[i + 1:]:
            tested = a["predictions"] >= 0  # [N]
            diffs = np.subtract(a["accuracies"], b["accuracies"])  # [K]
            mean, std = mean_std(diffs)
            pairs.append({"a": a["name"], "b": b["name"], "diff_mean": mean, "diff_std": std,
                          "diffs": diffs.tolist(),
                          "mcnemar": mcnemar_exact(a["predictions"][tested] == labels[tested],
                                                   b["predictions"][tested] == labels[tested]),
                          "ttest": paired_ttest(a["accuracies"], b["accuracies"])})
    return pairs


def finetune(cfg: FinetuneConfig, progress: bool = True) -> dict:
    """Run the encoder of `cfg` (or each ``cfg.compare`` spec) on identical splits; returns the report."""
    validate_finetune(cfg)
    specs = [parse_spec(s, cfg) for s in cfg.compare] if cfg.compare else [(default_label(cfg), cfg)]
    names = [n for n, _ in specs]
    if len(set(names)) < len(names):
        raise UserError(f"--compare: two encoders share a label ({', '.join(names)}); add name=LABEL to one")
    sentences, labels, notes = load_polarity(cfg.data_dir, cfg.encoding, cfg.clean)
    splits = make_splits(labels, cfg.folds, cfg.test_fraction, cfg.seed)
    cache: dict = {}  # checkpoint -> (frozen ELMoEmbedder, pooled layers), shared by the specs of this run
    results = [run_encoder(name, c, sentences, labels, splits, progress, cache) for name, c in specs]
    return {"data_dir": cfg.data_dir, "sentences": len(labels), "positive": int(labels.sum()),
            "negative": int(len(labels) - labels.sum()), "folds": cfg.folds, "splits": len(splits),
            "test_fraction": cfg.test_fraction, "seed": cfg.seed, "clean": cfg.clean, "notes": notes,
            "classifier": classifier_settings(cfg),
            "results": results, "comparisons": compare(results, labels)}
