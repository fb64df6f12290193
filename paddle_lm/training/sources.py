"""Where a run's batches come from: one data source per model family, chosen by `make_source`.

- `WordSource` (elmo, lstm): a word vocabulary file; BPTT rows of words (`BPTTStream`) whose recurrent
  state the loop carries from step to step.
- `SubwordSource` (bert, gpt2): a subword tokenizer folder; packed blocks of subword ids, `MaskedBlocks`
  (BERT, dynamic masking) or `CausalBlocks` (GPT-2), without state.

Both are built in two stages: the constructor resolves the vocabulary or tokenizer (it may train one, under a
file lock, before the process group exists), `open(...)` reads the corpus for this rank. ``batch(micro)``
takes the global micro-step (optimizer step x gradient-accumulation steps + k): a batch is a pure function of
it, which is what makes a resumed run see exactly the data it would have seen.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from paddle_lm.config import (
    RESUME_DATA_KEYS,
    TRANSFORMERS,
    DataConfig,
    ModelConfig,
    TrainConfig,
    check_seq_len,
    resume_data,
)
from paddle_lm.data.blocks import BlockBatches, CausalBlocks, MaskedBlocks
from paddle_lm.data.shards import EncodedCorpus, shard_key
from paddle_lm.data.stream import BPTTStream
from paddle_lm.data.subword import (
    CONFIG_FILE,
    VOCAB_FILES,
    detect_kind,
    fast_tokenizer,
    tokenizer_identity,
    train_bpe,
    train_wordpiece,
)
from paddle_lm.data.subword_shards import SubwordCorpus
from paddle_lm.data.vocab import Vocab, expand_glob
from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_copy, atomic_write_text, replace_dir, tmp_name
from paddle_lm.locks import file_lock

TOKENIZER_SUBDIR = "tokenizer"  # the checkpoints' own copy of a subword tokenizer, inside --save_dir
RECIPE_FILE = "trained_on.json"  # what a tokenizer trained by a run was trained on (reused only if the same)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def open_corpus(pattern: str, vocab: Vocab, data: DataConfig, model_cfg: ModelConfig, what: str,
                progress: bool, rank: int = 0, world: int = 1) -> EncodedCorpus:
    """The word-id corpus of `pattern` (with char ids for ELMo); ranks opening it together encode in parallel."""
    chars = data.max_characters_per_token if model_cfg.model == "elmo" else None
    return EncodedCorpus(pattern, vocab, what=what, cache_dir=data.cache_dir, max_chars=chars, progress=progress,
                         rank=rank, world=world)


class WordSource:
    """ELMo / LSTM LM: `--vocab_file` and BPTT rows of ``--unroll_steps`` words."""
    resume_keys = ("batch_size", "unroll_steps", "world_size", "n_tokens")

    def __init__(self, data: DataConfig, cfg: TrainConfig, model: str, resume: str, side: dict | None,
                 progress: bool):
        self.data, self.cfg, self.progress = data, cfg, progress
        self.vocab = Vocab.load(data.vocab_file)
        self.vocab_size = len(self.vocab)
        if side is not None and side["data"].get("vocab_identity") != self.vocab.identity:
            raise UserError(f"--vocab_file does not match checkpoint {resume} (its vocabulary has "
                            f"{side['data'].get('vocab_size')} tokens, identity {side['data'].get('vocab_identity')}; "
                            f"this one {len(self.vocab)} tokens, identity {self.vocab.identity}); pass the vocabulary "
                            f"the run started with")
        if side is not None:
            resume_data(resume, side["data"], data, {k: getattr(data, k) for k in RESUME_DATA_KEYS})

    def open(self, model_cfg: ModelConfig, rank: int, world: int) -> None:
        corpus = open_corpus(self.data.train_data_path, self.vocab, self.data, model_cfg, "--train_data_path",
                             self.progress, rank, world)
        self.stream = BPTTStream(corpus, self.cfg.batch_size, self.cfg.unroll_steps, rank, world)
        self.corpus, self.steps_per_epoch = corpus, self.stream.steps_per_epoch
        self.tokens_per_batch = self.cfg.batch_size * self.cfg.unroll_steps

    def batch(self, micro: int) -> dict[str, np.ndarray]:
        return self.stream.batch(micro % self.steps_per_epoch)

    def sidecar(self) -> dict:
        return {"train_data_path": self.data.train_data_path, "vocab_file": "vocab.txt",
                "vocab_identity": self.vocab.identity, "vocab_size": self.vocab_size,
                "max_characters_per_token": self.data.max_characters_per_token}

    def prepare_save_dir(self, save_dir: str) -> None:
        self.vocab.save(os.path.join(save_dir, "vocab.txt"))


def masked_blocks(corpus, tokenizer_dir: str, max_seq_len: int, *, rank: int = 0, world: int = 1, seed: int = 0,
                  mlm_probability: float = 0.15, whole_word_masking: bool = False) -> MaskedBlocks:
    """BERT blocks over `corpus` with the ids of the tokenizer in `tokenizer_dir` ([UNK] may be masked)."""
    fast = fast_tokenizer(tokenizer_dir, "bert")
    vocab = fast.get_vocab()  # token -> id
    ids = {t: fast.token_to_id(t) for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")}
    missing = [t for t, i in ids.items() if i is None]
    if missing:
        raise UserError(f"BERT tokenizer {tokenizer_dir!r} lacks {', '.join(missing)}")
    starts = None
    if whole_word_masking:  # a piece starts a word unless it continues one ("##...")
        starts = np.ones(fast.get_vocab_size(), dtype=bool)  # [V]
        for token, i in vocab.items():
            starts[i] = not token.startswith("##")
    return MaskedBlocks(corpus, max_seq_len, cls_id=ids["[CLS]"], sep_id=ids["[SEP]"], mask_id=ids["[MASK]"],
                        vocab_size=fast.get_vocab_size(), special_ids=[ids["[PAD]"]], rank=rank, world_size=world,
                        seed=seed, mlm_probability=mlm_probability, word_start_table=starts)


class SubwordSource:
    """BERT / GPT-2: a subword tokenizer and packed fixed-length blocks (see `paddle_lm.data.blocks`)."""

    def __init__(self, data: DataConfig, cfg: TrainConfig, model: str, resume: str, side: dict | None,
                 progress: bool):
        self.data, self.cfg, self.model, self.progress = data, cfg, model, progress
        self.resume_keys = ("batch_size", "seq_len", "world_size", "n_tokens", "seed")
        self.tokenizer_dir = self._resolve(resume, side)
        kind = detect_kind(self.tokenizer_dir)
        if kind != model:
            raise UserError(f"tokenizer {self.tokenizer_dir!r} is a {kind} tokenizer, but --model is {model}")
        self.identity = tokenizer_identity(self.tokenizer_dir)
        self.vocab_size = fast_tokenizer(self.tokenizer_dir, kind).get_vocab_size()
        if side is not None and side["data"].get("tokenizer_identity") != self.identity:
            raise UserError(f"--tokenizer_dir {self.tokenizer_dir!r} does not match checkpoint {resume} (identity "
                            f"{self.identity}; the checkpoint's is {side['data'].get('tokenizer_identity')}); pass "
                            f"the tokenizer the run started with, or leave --tokenizer_dir empty to use the "
                            f"checkpoint's copy")

    def _resolve(self, resume: str, side: dict | None) -> str:
        """--tokenizer_dir, else the resumed checkpoint's copy, else the pretrained folder's, else
        ``{save_dir}/tokenizer`` (trained on --train_data_path the first time, under a file lock)."""
        data, cfg = self.data, self.cfg
        if data.tokenizer_dir:
            tokenizer_identity(data.tokenizer_dir)  # a UserError if it is not a tokenizer folder
            return data.tokenizer_dir
        if side is not None and "tokenizer_dir" in side["data"]:
            return os.path.join(os.path.dirname(resume), side["data"]["tokenizer_dir"])
        if cfg.init_from_pretrained:
            if not any(os.path.isfile(os.path.join(cfg.init_from_pretrained, f)) for f in ("vocab.txt", "vocab.json")):
                raise UserError(f"--init_from_pretrained {cfg.init_from_pretrained!r} holds no tokenizer (vocab.txt "
                                f"or vocab.json); pass its tokenizer folder with --tokenizer_dir")
            return cfg.init_from_pretrained
        out = os.path.join(cfg.save_dir, TOKENIZER_SUBDIR)
        os.makedirs(cfg.save_dir, exist_ok=True)
        recipe = json.dumps({"kind": self.model, "vocab_size": data.subword_vocab_size,
                             "shards": [shard_key(p) for p in expand_glob(data.train_data_path, "--train_data_path")]})
        with file_lock(os.path.join(cfg.save_dir, ".tokenizer.lock")):  # ranks starting together train it once
            if _read(os.path.join(out, RECIPE_FILE)) != recipe:  # absent, or trained on other data / sizes
                tmp = tmp_name(out)
                shutil.rmtree(tmp, ignore_errors=True)
                trainer = train_wordpiece if self.model == "bert" else train_bpe
                trainer(data.train_data_path, tmp, data.subword_vocab_size, progress=self.progress)
                atomic_write_text(os.path.join(tmp, RECIPE_FILE), recipe)
                replace_dir(tmp, out)  # the old tokenizer or the new one, never none
        return out

    def open(self, model_cfg: ModelConfig, rank: int, world: int) -> None:
        seq_len = check_seq_len(model_cfg, self.cfg)
        corpus = SubwordCorpus(self.data.train_data_path, self.tokenizer_dir, what="--train_data_path",
                               cache_dir=self.data.cache_dir, progress=self.progress, rank=rank, world=world)
        if self.model == "bert":
            blocks = masked_blocks(corpus, self.tokenizer_dir, seq_len, rank=rank, world=world, seed=self.cfg.seed,
                                   mlm_probability=self.cfg.mlm_probability,
                                   whole_word_masking=self.cfg.whole_word_masking)
        else:
            blocks = CausalBlocks(corpus, seq_len, rank, world, self.cfg.seed)
        self.stream = BlockBatches(blocks, self.cfg.batch_size)
        self.corpus, self.steps_per_epoch = corpus, self.stream.steps_per_epoch
        self.tokens_per_batch = self.cfg.batch_size * seq_len

    def batch(self, micro: int) -> dict[str, np.ndarray]:
        return self.stream.batch(micro)

    def sidecar(self) -> dict:
        return {"train_data_path": self.data.train_data_path, "tokenizer_dir": TOKENIZER_SUBDIR,
                "tokenizer_identity": self.identity, "vocab_size": self.vocab_size}

    def prepare_save_dir(self, save_dir: str) -> None:
        """Copy the tokenizer into ``{save_dir}/tokenizer`` (the checkpoints' own copy)."""
        copy_tokenizer(self.tokenizer_dir, os.path.join(save_dir, TOKENIZER_SUBDIR))


def copy_tokenizer(src: str, dst: str) -> None:
    """Copy a tokenizer folder's vocab files and config from `src` to `dst` (nothing when they are the same)."""
    if os.path.abspath(dst) == os.path.abspath(src):
        return
    os.makedirs(dst, exist_ok=True)
    for name in (*VOCAB_FILES[detect_kind(src)], CONFIG_FILE):
        if os.path.isfile(os.path.join(src, name)):
            atomic_copy(os.path.join(src, name), os.path.join(dst, name))


def make_source(data: DataConfig, cfg: TrainConfig, model: str, resume: str, side: dict | None,
                progress: bool) -> WordSource | SubwordSource:
    """The data source of `model`'s family (`resume`/`side`: the checkpoint being resumed, if any)."""
    cls = SubwordSource if model in TRANSFORMERS else WordSource
    return cls(data, cfg, model, resume, side, progress)
