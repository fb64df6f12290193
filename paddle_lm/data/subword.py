"""Subword vocabularies for BERT (WordPiece) and GPT-2 (byte-level BPE), trained with `tokenizers`.

A tokenizer directory holds exactly the files PaddleNLP's slow tokenizers read, so
``paddlenlp.transformers.BertTokenizer.from_pretrained(directory)`` and
``paddlenlp.transformers.GPTTokenizer.from_pretrained(directory)`` load it offline:

- BERT: ``vocab.txt`` (one token per line, line number = id; ``[PAD] [UNK] [CLS] [SEP] [MASK]`` = ids 0-4)
  and ``tokenizer_config.json`` (``do_lower_case``, special tokens).
- GPT-2: ``vocab.json`` (token -> id; ``<|endoftext|>`` = id 0), ``merges.txt`` (``#version`` header line,
  then one merge per line, by rank) and ``tokenizer_config.json`` (special tokens).

Offline loading in paddlenlp 2.8.1: ``from_pretrained`` treats an existing directory as local and reads
``tokenizer_config.json`` from it; it never reaches a hub for a directory. A path that is *not* a directory
is taken as a model name and looked up on a hub, so `load_tokenizer` checks the files first. The
``GPTTokenizer(vocab_file, merges_file)`` constructor also works offline, but it registers no no-split
tokens, so a literal ``<|endoftext|>`` in text is byte-encoded instead of mapping to id 0; use
``from_pretrained(directory)`` (what `load_tokenizer` does), which reads the special tokens from
``tokenizer_config.json``.

Encoding uses the fast Rust ``tokenizers.Tokenizer`` (`fast_tokenizer`), built from the same files with
the same pipeline as PaddleNLP's Python tokenizers: BertNormalizer (clean text, CJK chars split, lowercase;
accents stripped iff lowercasing -- PaddleNLP's ``strip_accents=None`` rule) + BertPreTokenizer +
WordPiece(``##``, 100 chars max per word) for BERT; the GPT-2 regex + byte-to-unicode map without prefix
space for GPT-2. Ids agree with PaddleNLP's tokenizers (tested on accents, CJK, control characters,
emoji, over-long words and special tokens in text). Neither `encode_lines` nor the training adds
``[CLS]``/``[SEP]``/``<|endoftext|>``: the datasets insert them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tqdm import tqdm

from paddle_lm.data.vocab import expand_glob, read_lines
from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_write_text, read_input, read_json

BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
GPT2_EOS = "<|endoftext|>"
KINDS = ("bert", "gpt2")
# Files each kind needs, in the order they enter the identity hash.
VOCAB_FILES = {"bert": ("vocab.txt",), "gpt2": ("vocab.json", "merges.txt")}
CONFIG_FILE = "tokenizer_config.json"
_BATCH = 1000  # lines per batch fed to the trainer / encoder


def _corpus_batches(paths: list[str], progress: bool, counter: list[int]) -> Iterator[list[str]]:
    """Non-empty lines (newline stripped) of `paths` in batches; counter[0] counts the lines seen."""
    batch: list[str] = []
    for path in tqdm(paths, desc="reading shards", unit="file", disable=not progress):
        for _, line in read_lines(path):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            batch.append(line)
            if len(batch) == _BATCH:
                counter[0] += len(batch)
                yield batch
                batch = []
    if batch:
        counter[0] += len(batch)
        yield batch


def _bert_pipeline(tok: Tokenizer, lowercase: bool, strip_accents: bool | None = None,
                   chinese_chars: bool = True) -> Tokenizer:
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=chinese_chars,
                                                strip_accents=strip_accents, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(list(BERT_SPECIALS))
    return tok


def _gpt2_pipeline(tok: Tokenizer) -> Tokenizer:
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([GPT2_EOS])
    return tok


def _write_config(out_dir: str, config: dict[str, Any]) -> None:
    atomic_write_text(os.path.join(out_dir, CONFIG_FILE), json.dumps(config, indent=2) + "\n")


def _train(kind: str, tok: Tokenizer, trainer: Any, pattern: str, out_dir: str, progress: bool,
           config: dict[str, Any]) -> dict[str, Any]:
    paths = expand_glob(pattern, "--train_data_path")
    start, counter = time.perf_counter(), [0]
    tok.train_from_iterator(_corpus_batches(paths, progress, counter), trainer)
    if counter[0] == 0:
        raise UserError(f"--train_data_path: the files matching {pattern!r} hold only blank lines")
    os.makedirs(out_dir, exist_ok=True)
    tok.model.save(out_dir)
    _write_config(out_dir, config)
    return {"kind": kind, "directory": out_dir, "vocab_size": tok.get_vocab_size(), "files": len(paths),
            "lines": counter[0], "identity": tokenizer_identity(out_dir),
            "seconds": round(time.perf_counter() - start, 2)}


def train_wordpiece(pattern: str, out_dir: str, vocab_size: int = 8000, min_frequency: int = 2,
                    lowercase: bool = True, limit_alphabet: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Train a BERT WordPiece vocabulary on the sentence-per-line shards matching `pattern`.

    Writes ``vocab.txt`` and ``tokenizer_config.json`` into `out_dir`; ``[PAD] [UNK] [CLS] [SEP] [MASK]``
    get ids 0-4. `min_frequency` is the minimum count of a pair to be merged; `limit_alphabet` caps the
    single characters kept (the rarest become ``[UNK]``). Returns a summary: kind, directory,
    vocab_size (actual, may be below the request on small corpora), files, lines, identity, seconds.
    """
    if vocab_size <= len(BERT_SPECIALS):
        raise UserError(f"--vocab_size must exceed {len(BERT_SPECIALS)} (the special tokens), got {vocab_size}")
    tok = _bert_pipeline(Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100)),
                         lowercase)
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(BERT_SPECIALS), limit_alphabet=limit_alphabet,
                                        continuing_subword_prefix="##", show_progress=progress)
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": lowercase, "unk_token": "[UNK]",
              "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    return _train("bert", tok, trainer, pattern, out_dir, progress, config)


def train_bpe(pattern: str, out_dir: str, vocab_size: int = 8000, min_frequency: int = 2,
              progress: bool = True) -> dict[str, Any]:
    """Train a GPT-2 byte-level BPE on the sentence-per-line shards matching `pattern`.

    Writes ``vocab.json``, ``merges.txt`` and ``tokenizer_config.json`` into `out_dir`. The vocabulary is
    ``<|endoftext|>`` (id 0), the 256 byte symbols, then merges; every byte string is encodable, so
    decode(encode(text)) == text. Returns the same summary as `train_wordpiece`.
    """
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size <= len(alphabet) + 1:
        raise UserError(f"--vocab_size must exceed {len(alphabet) + 1} (256 bytes + {GPT2_EOS}), "
                        f"got {vocab_size}")
    tok = _gpt2_pipeline(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[GPT2_EOS], initial_alphabet=alphabet,
                                  show_progress=progress)
    config = {"tokenizer_class": "GPTTokenizer", "bos_token": GPT2_EOS, "eos_token": GPT2_EOS,
              "unk_token": GPT2_EOS, "pad_token": GPT2_EOS, "add_prefix_space": False}
    return _train("gpt2", tok, trainer, pattern, out_dir, progress, config)


def detect_kind(directory: str) -> str:
    """'bert' if `directory` holds vocab.txt, 'gpt2' if it holds vocab.json; else a UserError."""
    if os.path.isfile(os.path.join(directory, "vocab.txt")):
        return "bert"
    if os.path.isfile(os.path.join(directory, "vocab.json")):
        return "gpt2"
    raise UserError(f"tokenizer directory {directory!r} holds neither vocab.txt (BERT) nor vocab.json "
                    f"(GPT-2); train one with paddle_lm.data.subword")


def _check_files(kind: str, directory: str) -> list[str]:
    if kind not in KINDS:
        raise UserError(f"tokenizer kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not os.path.isdir(directory):
        raise UserError(f"tokenizer directory {directory!r} does not exist")
    paths = [os.path.join(directory, name) for name in VOCAB_FILES[kind]]
    for path in paths:
        if not os.path.isfile(path):
            raise UserError(f"{kind} tokenizer directory {directory!r} lacks {os.path.basename(path)}; "
                            f"train one with paddle_lm.data.subword")
    return paths


def read_tokenizer_config(directory: str) -> dict[str, Any]:
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        return {}
    return read_json(path)


def tokenizer_identity(directory: str) -> str:
    """sha256 (16 hex chars) of the vocab files and the lowercase flag: equal iff ids are interchangeable."""
    kind = detect_kind(directory)
    h = hashlib.sha256(kind.encode())
    for path in _check_files(kind, directory):
        h.update(os.path.basename(path).encode() + b"\0" + read_input(path))
    if kind == "bert":
        h.update(b"lowercase=%d" % bool(read_tokenizer_config(directory).get("do_lower_case", True)))
    return h.hexdigest()[:16]


def load_tokenizer(kind: str, directory: str) -> Any:
    """PaddleNLP's tokenizer (``BertTokenizer`` / ``GPTTokenizer``) from a local tokenizer directory.

    Checks the vocab files first (a UserError names the missing one), so PaddleNLP never falls back to
    treating `directory` as a hub model name.
    """
    _check_files(kind, directory)
    from paddlenlp.transformers import BertTokenizer, GPTTokenizer  # heavy import: only when needed

    cls = BertTokenizer if kind == "bert" else GPTTokenizer
    try:
        return cls.from_pretrained(os.path.abspath(directory))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise UserError(f"cannot load the {kind} tokenizer in {directory!r}: {e}") from None


def fast_tokenizer(source: Any, kind: str | None = None) -> Tokenizer:
    """The fast ``tokenizers.Tokenizer`` equivalent to a tokenizer directory or a PaddleNLP tokenizer.

    `source` is a directory (kind detected unless given) or a PaddleNLP ``BertTokenizer`` /
    ``GPTTokenizer`` (built from its in-memory vocabulary, so no file is read).
    """
    if isinstance(source, (str, os.PathLike)):
        directory = os.fspath(source)
        kind = kind or detect_kind(directory)
        paths = _check_files(kind, directory)
        if kind == "bert":
            config = read_tokenizer_config(directory)  # a Hugging Face folder's may also set the accents and CJK rules
            model = models.WordPiece.from_file(paths[0], unk_token="[UNK]", max_input_chars_per_word=100)
            return _bert_pipeline(Tokenizer(model), bool(config.get("do_lower_case", True)),
                                  config.get("strip_accents"), bool(config.get("tokenize_chinese_chars", True)))
        return _gpt2_pipeline(Tokenizer(models.BPE.from_file(paths[0], paths[1])))
    name = type(source).__name__
    if name == "BertTokenizer":
        basic = getattr(source, "basic_tokenizer", None)
        if basic is None:
            raise UserError("a BertTokenizer with do_basic_tokenize=False has no fast equivalent")
        vocab = dict(source.vocab.token_to_idx)
        tok = Tokenizer(models.WordPiece(vocab, unk_token=str(source.unk_token), max_input_chars_per_word=100))
        return _bert_pipeline(tok, bool(basic.do_lower_case), basic.strip_accents, basic.tokenize_chinese_chars)
    if name == "GPTTokenizer":
        if source.add_prefix_space:
            raise UserError("GPTTokenizer with add_prefix_space=True has no fast equivalent here")
        merges = [pair for pair, _ in sorted(source.bpe_ranks.items(), key=lambda item: item[1])]
        return _gpt2_pipeline(Tokenizer(models.BPE(dict(source.encoder), merges)))
    if isinstance(source, Tokenizer):
        return source
    raise UserError(f"cannot build a fast tokenizer from {name}; pass a tokenizer directory")


def encode_lines(tokenizer: Any, lines: Sequence[str], progress: bool = False) -> list[list[int]]:
    """Token ids of each line (no special tokens added), with the fast tokenizer.

    `tokenizer` is a ``tokenizers.Tokenizer``, a PaddleNLP BERT/GPT tokenizer or a tokenizer directory.
    Lines are encoded as given: strip newlines first (for GPT-2 a ``\\n`` is a token).
    """
    fast = tokenizer if isinstance(tokenizer, Tokenizer) else fast_tokenizer(tokenizer)
    out: list[list[int]] = []
    for i in tqdm(range(0, len(lines), _BATCH), desc="encoding", unit="batch", disable=not progress):
        out.extend(enc.ids for enc in fast.encode_batch(list(lines[i:i + _BATCH]), add_special_tokens=False))
    return out
